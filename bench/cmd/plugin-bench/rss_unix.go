//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// maxRSS returns the peak resident set size of a finished command, in KiB
// (Linux) or bytes (macOS), as getrusage reports it.
func maxRSS(c *exec.Cmd) int64 {
	if c == nil || c.ProcessState == nil {
		return 0
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}
