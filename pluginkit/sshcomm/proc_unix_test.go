//go:build unix

package sshcomm_test

import "syscall"

// alive reports whether process pid exists (the server is this machine).
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// kill kills process pid.
func kill(pid int) { syscall.Kill(pid, syscall.SIGKILL) }
