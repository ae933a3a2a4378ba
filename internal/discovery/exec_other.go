//go:build !linux

package discovery

import "os"

// fdPath returns path: only Linux can execute an open file by name.
func fdPath(_ *os.File, path string) string { return path }
