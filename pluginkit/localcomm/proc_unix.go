//go:build unix

package localcomm

import (
	"os/exec"
	"syscall"
)

func shell(command string) (string, []string) { return "/bin/sh", []string{"-c", command} }

// ownGroup runs cmd in a process group of its own and makes cancelling kill
// the whole group, so that processes the command started die with it.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
