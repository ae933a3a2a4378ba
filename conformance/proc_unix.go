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
