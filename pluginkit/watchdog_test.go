package pluginkit_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoWatchdogWhileFuzzing runs this test binary as a fuzz coordinator
// for longer than its watchdog: the run must end when -fuzztime says, not
// with the watchdog's panic (which would also orphan the fuzz workers).
func TestNoWatchdogWhileFuzzing(t *testing.T) {
	if testing.Short() {
		t.Skip("fuzzes for 3 s")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.fuzz=^FuzzServerDispatch$",
		"-test.fuzztime=3s", "-test.parallel=1", "-test.fuzzcachedir="+t.TempDir())
	cmd.Dir = t.TempDir() // new inputs go to testdata/fuzz here, not in the source tree
	cmd.Env = append(os.Environ(), watchdogEnv+"=1s", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "watchdog") {
		t.Fatalf("fuzzing for 3 s under a 1 s watchdog: %v\n%s", err, out)
	}
}
