//go:build unix

package pluginkit

import (
	"os"
	"syscall"
)

// takeStdout duplicates the standard output descriptor for the protocol and
// points os.Stdout at stderr.
func takeStdout() (*os.File, error) {
	fd, err := syscall.Dup(int(os.Stdout.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "protocol-stdout")
	os.Stdout = os.Stderr
	return f, nil
}
