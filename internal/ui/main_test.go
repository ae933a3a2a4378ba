package ui_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, or, when pluginEnv is set, makes the test binary
// the plugin of progress_test.go (the helper-process pattern). Ask reads its
// answer on a goroutine and progress bars redraw on goroutines; none may
// outlive the tests.
func TestMain(m *testing.M) {
	if os.Getenv(pluginEnv) != "" {
		servePlugin() // never returns
	}
	goleak.VerifyTestMain(m)
}
