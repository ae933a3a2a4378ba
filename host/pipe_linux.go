package host

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked for the plugin's stdin and stdout pipes:
// with Linux's default of 64 KiB, a stream chunk's line (about 350 KB)
// makes writer and reader take turns some six times; with 1 MiB it passes
// in one. It is the default /proc/sys/fs/pipe-max-size.
const pipeSize = 1 << 20

// growPipe enlarges the pipe f is an end of to pipeSize. It is best
// effort: a pipe keeps its size when the system refuses (pipe-max-size
// lowered, or the user's pipe-user-pages-soft quota reached).
// It goes through SyscallConn, since File.Fd would switch the file to
// blocking mode.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { //nolint:errcheck // best effort, see above
		unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) //nolint:errcheck // as above
	})
}
