package pluginkit_test

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/pluginkit"
)

// helperEnv selects, when set, what the test binary does instead of running
// tests: it becomes a plugin (the helper-process pattern).
const helperEnv = "PLUGINKIT_TEST_HELPER"

// watchdogEnv, when set to a duration, replaces the watchdog's 3 minutes
// (TestNoWatchdogWhileFuzzing shortens it).
const watchdogEnv = "PLUGINKIT_TEST_WATCHDOG"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
	case "plugin":
		obs := newObserved()
		pluginkit.RegisterBuilder("test", &testBuilder{obs: obs})
		pluginkit.RegisterProvisioner("test", &testProvisioner{obs: obs})
		pluginkit.Serve()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", helperEnv, mode)
		os.Exit(2)
	}
	// A watchdog that dumps every goroutine instead of hanging; not
	// while fuzzing, which runs as long as -fuzztime says (and a fuzz
	// worker killed by it would be left behind by its coordinator).
	if !fuzzing() {
		debug.SetTraceback("all")
		after := 3 * time.Minute
		if d, err := time.ParseDuration(os.Getenv(watchdogEnv)); err == nil {
			after = d
		}
		t := time.AfterFunc(after, func() { panic("watchdog: tests hang") })
		defer t.Stop()
	}
	goleak.VerifyTestMain(m)
}

// fuzzing reports whether the test binary runs as a fuzz coordinator
// (-test.fuzz) or as one of its workers (-test.fuzzworker).
func fuzzing() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}
