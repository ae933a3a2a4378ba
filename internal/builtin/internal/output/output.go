// Package output is how builtins put a file they produced in place, with
// Packer's -force rule: an existing output is an error unless packer runs
// with -force, which replaces it. Whatever -force says, an output path
// that exists and is not a regular file (a device, a FIFO, a directory, a
// symbolic link) is refused, so that a template cannot make a builtin
// replace /dev/full or write through a link.
package output

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrExists is returned when the output exists and -force is not set.
var ErrExists = errors.New("output already exists")

// ErrNotRegular is returned when the output exists and is not a regular
// file.
var ErrNotRegular = errors.New("output is not a regular file")

// Check returns nil when path may be written: it does not exist, or it is
// a regular file and force is set. Otherwise the error wraps [ErrExists]
// or [ErrNotRegular] and says what to do.
func Check(path string, force bool) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is %s; refusing to replace it: choose another output path", ErrNotRegular, path, kind(fi.Mode()))
	case !force:
		return fmt.Errorf("%w: %s; run packer build with -force to replace it, or remove it", ErrExists, path)
	}
	return nil
}

// Place moves the finished temporary file tmp (in path's directory) to
// path. Without force it never replaces anything: it links tmp to path,
// which fails if path appeared since [Check], and removes tmp. With force
// it renames tmp over path after checking again that path is not
// something other than a regular file. tmp is removed on failure.
func Place(tmp, path string, force bool) error {
	err := Check(path, force)
	if err == nil {
		if force {
			err = os.Rename(tmp, path)
		} else if err = os.Link(tmp, path); err == nil {
			os.Remove(tmp)
		} else if errors.Is(err, fs.ErrExist) {
			err = Check(path, false)
		} else if fallbackRename(err) {
			// The file system has no hard links: check and rename.
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// fallbackRename reports whether a failed link means the file system
// cannot link, rather than that something is in the way.
func fallbackRename(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || isNoLink(err)
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}
