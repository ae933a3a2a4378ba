package shellscript

import (
	"os"
	"os/exec"
	"sync"
)

// live is what this plugin process started and still has to clean up if it
// is told to stop at once: the process groups of running commands and the
// temporary scripts not yet removed.
var live = struct {
	sync.Mutex
	groups map[int]bool
	files  map[string]bool
}{groups: map[int]bool{}, files: map[string]bool{}}

// Run starts cmd (made by [Command]), records its process group while it
// runs, so that [Cleanup] can kill it, and waits for it.
func Run(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	live.Lock()
	live.groups[pid] = true
	live.Unlock()
	defer func() {
		live.Lock()
		delete(live.groups, pid)
		live.Unlock()
	}()
	return cmd.Wait()
}

// RemoveTemp removes a temporary script written by [WriteTemp].
func RemoveTemp(path string) {
	os.Remove(path)
	live.Lock()
	delete(live.files, path)
	live.Unlock()
}

// Cleanup kills the process group of every command [Run] is running and
// removes every temporary script [WriteTemp] wrote and [RemoveTemp] did not
// remove yet. The plugin calls it when it must stop at once.
func Cleanup() {
	live.Lock()
	defer live.Unlock()
	for pid := range live.groups {
		killTree(pid)
	}
	for path := range live.files {
		os.Remove(path)
	}
}
