package discovery

import (
	"fmt"
	"os"
	"path/filepath"
)

// Executable is a plugin binary opened for running. For a versioned
// install, [Open] has checked the open file against its SHA256SUM file,
// and Path runs that same file where the OS allows it (see [Open]).
type Executable struct {
	// Path is what to execute: "/proc/self/fd/N" of the verified file on
	// Linux, the binary's path elsewhere and for binaries without a
	// SHA256SUM file. Exec it with the binary's own path as argv[0].
	Path string
	f    *os.File
}

// Close closes the file; Path can no longer be executed on Linux.
func (x *Executable) Close() error {
	if x.f == nil {
		return nil
	}
	return x.f.Close()
}

// Open prepares e's binary for running. A versioned install (e.SumFile
// set) is opened through an [os.Root] of its plugins directory (so a
// symbolic link cannot lead out of it), hashed, and compared with its
// SHA256SUM file: a mismatch is an error wrapping [ErrChecksum], a
// missing or malformed SHA256SUM file one wrapping [ErrUnverified].
// Nothing is executed.
//
// On Linux the returned Path is /proc/self/fd/N of the file that was
// hashed, so a binary renamed over the install after the check is never
// run: the kernel executes the verified file. A rewrite of that same file
// in place, by someone allowed to write it, is not caught (see the
// writable-plugin warnings). A script ("#!") is run by its path even on
// Linux, because its interpreter opens it again by name. On other systems
// Path is the binary's path, and a swap between the check and the exec is
// not detected.
//
// The caller keeps the Executable open for as long as it starts
// processes from Path, and closes it.
func Open(e *Entry) (*Executable, error) {
	if e.SumFile == "" {
		return &Executable{Path: e.Path}, nil
	}
	// NAME/VERSION/binary under the plugins directory e.Dir.
	rel, err := filepath.Rel(e.Dir, e.Path)
	if err != nil || e.Dir == "" {
		return nil, fmt.Errorf("%w: %s is not under a plugins directory", ErrUnverified, e.Path)
	}
	root, err := os.OpenRoot(e.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("opening plugin %s: %w", e.Path, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", e.Path)
	}
	if err == nil {
		sumRel, _ := filepath.Rel(e.Dir, e.SumFile)
		err = verifyFile(e, f, root, sumRel)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	path := e.Path
	var magic [2]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != "#!" {
		// A script's interpreter opens the script again by name, after
		// the exec closed the descriptor: only a binary can be run
		// from it.
		path = fdPath(f, e.Path)
	}
	return &Executable{Path: path, f: f}, nil
}
