//go:build windows

package localcomm

import (
	"os/exec"
	"syscall"
)

func shell(command string) (string, []string) { return "cmd", []string{"/C", command} }

// ownGroup runs cmd in a new process group; cancelling kills the process.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
