//go:build unix

package output

import (
	"errors"
	"syscall"
)

// isNoLink reports whether a link failed because the file system does not
// support hard links (EPERM on some, such as FAT or some FUSE mounts).
func isNoLink(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV)
}
