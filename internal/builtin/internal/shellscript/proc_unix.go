//go:build unix

package shellscript

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// killGroup makes cmd the leader of a new process group and, when its
// context is done, kills the whole group, so that children the command
// started die with it. On Linux the command also gets SIGKILL when the
// plugin running it dies (a parent-death signal).
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// killTree kills the process group led by pid.
func killTree(pid int) { syscall.Kill(-pid, syscall.SIGKILL) } //nolint:errcheck // it may be gone

// StopWithParent makes the plugin process stop its scripts when it gets
// SIGTERM: it kills the process group of every running script and removes
// the temporary scripts ([Cleanup]); pluginkit, which takes SIGTERM as the
// end of the session (SPEC §9.3), then answers what was running and exits
// 0. The host
// sends SIGTERM when it stops a plugin that does not answer; packer's
// builtins also ask for it, instead of SIGKILL, as their parent-death
// signal (on Linux; see cmd/packer), so that a packer killed with SIGKILL
// does not leave their scripts' process groups running. Call it once,
// before serving.
func StopWithParent() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		<-ch
		Cleanup()
	}()
}
