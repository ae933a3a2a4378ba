package bttest

import (
	"testing"
	"time"
)

// WaitGone waits until process pid no longer runs (it does not exist or
// is a zombie), failing the test if it still runs after a minute. It must
// be called on the test goroutine.
func WaitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if gone(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
