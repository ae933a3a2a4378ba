//go:build unix

package conformance

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes the plugin the leader of a new process group, so
// that killGroup also ends the processes it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to the plugin's process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// alive reports whether process pid still exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// killPID sends SIGKILL to process pid and its process group.
func killPID(pid int) {
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
}
