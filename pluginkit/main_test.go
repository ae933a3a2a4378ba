package pluginkit_test

import (
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
	// A watchdog that dumps every goroutine instead of hanging.
	debug.SetTraceback("all")
	t := time.AfterFunc(3*time.Minute, func() { panic("watchdog: tests hang") })
	defer t.Stop()
	goleak.VerifyTestMain(m)
}
