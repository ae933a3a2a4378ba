//go:build !unix

package pluginkit

import "errors"

// mkfifo fails: debug pipes are FIFOs, which only Unix has. Windows named
// pipes need a server created with CreateNamedPipe, outside package os.
func mkfifo(string) error { return errors.New("debug pipes are Unix-only") }
