//go:build !unix

package bttest

import "os"

// gone says whether process pid no longer runs. Without Unix's signal 0 and
// /proc, a process is gone when it can no longer be opened.
func gone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	p.Release()
	return false
}
