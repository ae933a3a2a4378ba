package discovery

import (
	"os"
	"strconv"
)

// fdPath returns /proc/self/fd/N for f, which execve resolves to the very
// file f has open (the way fexecve works), or path when /proc is not
// mounted.
func fdPath(f *os.File, path string) string {
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if _, err := os.Stat(p); err != nil {
		return path
	}
	return p
}
