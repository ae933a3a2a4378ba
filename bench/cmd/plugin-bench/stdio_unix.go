//go:build unix

package main

import (
	"os"
	"syscall"
)

// pollableStdio returns the standard input and output as pluginkit.Serve
// serves the protocol on them: duplicates that the Go runtime's poller
// serves, when they are pipes (see pluginkit's dupPollable), so that the
// protocol.Conn child of scenarios 2 and 3 runs as a plugin does.
func pollableStdio() (in, out *os.File) {
	return dupPollable(0, "stdin"), dupPollable(1, "stdout")
}

func dupPollable(fd int, name string) *os.File {
	nfd, err := syscall.Dup(fd)
	check(err)
	syscall.CloseOnExec(nfd)
	var st syscall.Stat_t
	if syscall.Fstat(nfd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
		check(syscall.SetNonblock(nfd, true))
	}
	return os.NewFile(uintptr(nfd), name)
}
