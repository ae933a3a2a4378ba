package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// init, when packer runs as a builtin plugin ("packer plugin NAME"), turns
// the SIGKILL the host set as the plugin's parent-death signal into
// SIGTERM, which the builtins handle by killing their scripts' process
// groups and removing their temporary scripts before they exit. The
// signal is a property of the thread the host started, the main thread,
// and only package initialisation is sure to run on it.
func init() {
	if len(os.Args) > 2 && os.Args[1] == "plugin" {
		unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0) //nolint:errcheck // SIGKILL stays: scripts may survive
		// The parent may have died before the call: then nobody sends it.
		if os.Getppid() == 1 {
			os.Exit(1)
		}
	}
}
