package host

import "syscall"

// setDeathSignal has the kernel SIGKILL the plugin when the host's thread
// that started it dies, so that a crashed host leaves no plugin behind.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
