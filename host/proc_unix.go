//go:build unix

package host

import (
	"errors"
	"os/exec"
	"syscall"
)

// setGroup makes the child the leader of a new process group, so that the
// host can signal it together with everything it started.
func setGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pgid = 0
	setDeathSignal(cmd.SysProcAttr)
}

// terminateGroup asks the process group to stop (SIGTERM).
func terminateGroup(cmd *exec.Cmd) { signalGroup(cmd, syscall.SIGTERM) }

// killGroup kills the process group (SIGKILL). It is harmless when the group
// is already gone.
func killGroup(cmd *exec.Cmd) { signalGroup(cmd, syscall.SIGKILL) }

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group may be gone while the leader is not reaped yet; fall
		// back to the leader itself.
		_ = cmd.Process.Signal(sig)
	}
}
