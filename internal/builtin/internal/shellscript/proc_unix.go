//go:build unix

package shellscript

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd the leader of a new process group and, when its
// context is done, kills the whole group, so that children the command
// started die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
