//go:build windows

package host

import (
	"os/exec"
	"syscall"
)

// setGroup starts the child in a new process group, so that a Ctrl-C sent
// to the host's console is not delivered to it directly.
func setGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP
}

// terminateGroup kills the process: Windows has no SIGTERM for a child
// without a console.
func terminateGroup(cmd *exec.Cmd) { killGroup(cmd) }

// killGroup kills the process. Its own children are not reached without a
// job object.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
