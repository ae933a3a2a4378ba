package template

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unicode/utf8"
)

// Bounds on what a template, or a value rendered from one, may weigh. A
// template is read whole and every variable is kept rendered in memory, so
// without them a careless or hostile input (a template that is /dev/zero,
// variables that double each other forty times) takes all the memory there
// is.
const (
	// MaxInputSize is the largest template or variable file read, in
	// bytes.
	MaxInputSize = 16 << 20
	// MaxRenderedSize is the largest string one interpolation may
	// produce, in bytes.
	MaxRenderedSize = 16 << 20
	// MaxRenderedTotal bounds the bytes rendered for all user variables of
	// a run together, and for all strings of one configuration together.
	MaxRenderedTotal = 64 << 20
)

// ErrTooLarge is the kind of the error for an input larger than
// [MaxInputSize], and is wrapped by a rendering error ([ErrRender]) over
// [MaxRenderedSize] or [MaxRenderedTotal].
var ErrTooLarge = errors.New("too large")

// readInput reads all of r, at most MaxInputSize bytes; what names the input
// ("template", "variable file") in errors.
func readInput(r io.Reader, path, what string, kind error) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, &Error{File: path, Kind: kind, Msg: "reading " + what, Err: err}
	}
	if len(data) > MaxInputSize {
		return nil, &Error{File: path, Kind: ErrTooLarge, Msg: fmt.Sprintf("%s is larger than %d MiB", what, MaxInputSize>>20)}
	}
	return data, nil
}

// openRegular opens the file at path for reading and refuses anything but a
// regular file (after following symbolic links): a device such as /dev/zero
// would be read without end and a FIFO could block forever. On Unix the
// file is opened without blocking (see openFlags) and checked again once
// open, so that a file swapped for a FIFO between the two checks does not
// block either.
func openRegular(path, what string, kind error) (*os.File, error) {
	notRegular := func(fi fs.FileInfo) error {
		if fi.Mode().IsRegular() {
			return nil
		}
		hint := "; give the path of a file"
		if what == "template" {
			hint += ", or - for standard input"
		}
		return &Error{File: path, Kind: kind,
			Msg: fmt.Sprintf("%s is not a regular file (it is a %s)%s", what, fileKind(fi.Mode()), hint)}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{File: path, Kind: kind, Msg: "reading " + what, Err: err}
	}
	if err := notRegular(fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, &Error{File: path, Kind: kind, Msg: "reading " + what, Err: err}
	}
	fi, err = f.Stat()
	if err == nil {
		err = notRegular(fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// readFile reads the regular file at path, at most MaxInputSize bytes.
func readFile(path, what string, kind error) ([]byte, error) {
	f, err := openRegular(path, what, kind)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readInput(f, path, what, kind)
}

// checkUTF8 reports the first byte of data that is not valid UTF-8, with
// its position. encoding/json would silently replace it with U+FFFD.
func (s *source) checkUTF8() error {
	if utf8.Valid(s.data) {
		return nil
	}
	for off := 0; off < len(s.data); {
		r, size := utf8.DecodeRune(s.data[off:])
		if r == utf8.RuneError && size == 1 {
			return s.errorf(off, ErrSyntax, "invalid UTF-8 (byte 0x%02x); save the file as UTF-8", s.data[off])
		}
		off += size
	}
	return nil
}
