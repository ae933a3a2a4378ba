//go:build !unix

package conformance_test

import (
	"os/exec"
	"syscall"
)

// signalGroup sends sig to cmd's process; without process groups, only
// its own. (Host mode, which uses it, runs on Unix only.)
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) { cmd.Process.Signal(sig) }

// newGroup does nothing where there are no process groups.
func newGroup(*exec.Cmd) {}
