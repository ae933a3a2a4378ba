package shellscript

import "syscall"

// setDeathSignal has the kernel SIGKILL the command when the thread that
// started it dies.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
