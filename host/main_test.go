package host_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperModeEnv selects the way the helper process (helper_test.go)
// misbehaves.
const helperModeEnv = "HOST_TEST_MODE"

// TestMain runs the tests under a watchdog that dumps every goroutine's
// stack instead of letting a hung test sit until the go test timeout, and
// checks that no goroutine outlives the tests.
func TestMain(m *testing.M) {
	if os.Getenv(helperModeEnv) != "" {
		goleak.VerifyTestMain(m)
		return
	}
	dir, err := os.MkdirTemp("", "host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	examplePlugin, exampleBuildErr = buildExample(dir)
	watchdog := time.AfterFunc(4*time.Minute, func() {
		debug.SetTraceback("all")
		panic("host tests: watchdog expired; stacks follow")
	})
	// Not deferred: VerifyTestMain exits, which skips deferred calls (and
	// left the example plugin's build behind after every run).
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		watchdog.Stop()
		os.RemoveAll(dir)
	}))
}

// examplePlugin is the path of the example plugin binary, built once.
var (
	examplePlugin   string
	exampleBuildErr error
)

func buildExample(dir string) (string, error) {
	bin := filepath.Join(dir, "packer-plugin-example")
	cmd := exec.Command("go", "build", "-o", bin, "../examples/plugins/packer-plugin-example")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the example plugin: %v\n%s", err, out)
	}
	return bin, nil
}
