package sshcomm_test

import (
	"os"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// A hung test dumps every goroutine instead of waiting for go test's
	// own timeout.
	watchdog := time.AfterFunc(5*time.Minute, func() {
		debug.SetTraceback("all")
		panic("sshcomm tests: watchdog expired")
	})
	code := m.Run()
	watchdog.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
