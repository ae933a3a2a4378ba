package pluginkit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-stdio/packer/protocol"
)

// TestExampleRunByHand builds the example plugin and runs it without the
// magic cookie: it must explain itself on stderr and exit 1 without
// waiting for stdin (which the test keeps open).
func TestExampleRunByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "packer-plugin-example")
	// The version is stamped as the guide and release.sh say: pluginkit.Version.
	build := exec.Command("go", "build", "-ldflags", "-X github.com/packer-stdio/packer/pluginkit.Version=9.8.7", "-o", bin, "../examples/plugins/packer-plugin-example")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = withoutCookie(os.Environ())
	stdin, err := cmd.StdinPipe() // never written, never closed until the end
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: got %q, want nothing", stdout.String())
	}
	for _, want := range []string{"Packer plugin", "not meant to be run by hand", "builder", "example", "provisioner", "example-shell", "post-processor", "example-checksum",
		"(packer-plugin-example 9.8.7)", "packer plugins install --path " + bin} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func withoutCookie(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, protocol.EnvMagicCookie+"=") && !strings.HasPrefix(kv, helperEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestServeKeepsStdoutPure runs the test binary as a plugin (TestMain's
// helper mode) whose builder prints to os.Stdout: the prints must land on
// stderr and every stdout line must be a protocol message. The process must
// exit 0 after shutdown and the host closing stdin.
func TestServeKeepsStdoutPure(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(withoutCookie(os.Environ()), protocol.EnvMagicCookie+"="+protocol.MagicCookieValue, helperEnv+"=plugin")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdoutPipe)
	var lines []string
	call := func(line string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatalf("writing: %v (stderr: %s)", err, stderr.String())
		}
		for {
			b, err := out.ReadBytes('\n')
			if err != nil {
				t.Fatalf("reading: %v (stderr: %s)", err, stderr.String())
			}
			lines = append(lines, string(b))
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("stdout line is not JSON: %q", b)
			}
			if _, ok := m["id"]; ok {
				return m
			}
		}
	}
	call(initLine)
	res := call(req("1", "component/prepare", prepMode("stray")))
	inst, _ := res["result"].(map[string]any)["instance"].(string)
	if res := call(req("2", "builder/run", `{"instance":"`+inst+`"}`)); res["error"] != nil {
		t.Errorf("run: %v", res["error"])
	}
	if res := call(req("3", "shutdown", "{}")); res["error"] != nil {
		t.Errorf("shutdown: %v", res["error"])
	}
	stdin.Close()
	rest, _ := io.ReadAll(out)
	if len(rest) > 0 {
		t.Errorf("stdout after shutdown: %q", rest)
	}
	err = cmd.Wait()
	if err != nil {
		t.Errorf("plugin exit: %v, want exit status 0 (stderr: %s)", err, stderr.String())
	}
	for _, want := range []string{"stray line on stdout\n", "another stray line\n"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "stray") {
			t.Errorf("stray output on stdout: %q", l)
		}
	}
}
