// Package python_test proves that SPEC.md and schema/ are enough to write a plugin and a host in another
// language: it runs plugin-conformance against packer-plugin-pyexample (a Python plugin written from the
// spec alone) and runs pyhost.py (a Python host written from the spec alone) against the Go example plugin
// and against the Python plugin, with real processes and real pipes. The tests are skipped only when
// python3 is not installed.
package python_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/conformance"
)

func TestMain(m *testing.M) {
	// A watchdog that dumps every stack instead of letting a stuck plugin hang the run.
	watchdog := time.AfterFunc(6*time.Minute, func() {
		debug.SetTraceback("all")
		panic("examples/python tests did not finish in 6 minutes")
	})
	defer watchdog.Stop()
	goleak.VerifyTestMain(m)
}

// python3 returns the path of python3, or skips the test when there is none.
func python3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	return py
}

// pluginScript returns the absolute path of the Python plugin.
func pluginScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("packer-plugin-pyexample")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConformance runs every conformance check against the Python plugin and wants every one of them to
// pass: no MUST failure, no SHOULD failure and, since configurations are given for the components that need
// one, no skip either.
func TestConformance(t *testing.T) {
	py := python3(t)
	dir := t.TempDir()
	configs := map[string]any{
		"pyfile":     map[string]any{"output": filepath.Join(dir, "machine", "hello.txt"), "content": "hello from python\n"},
		"pyupload":   map[string]any{"destination": "pyupload.txt", "content": "uploaded\n", "command": "cat pyupload.txt", "fetch": "pyupload.txt"},
		"pysha256":   map[string]any{},
		"pyfileinfo": map[string]any{"path": filepath.Join(dir, "info.json")},
	}
	if err := os.WriteFile(filepath.Join(dir, "info.json"), []byte(`{"answer": 42}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := conformance.Config{
		Command: []string{py, pluginScript(t)},
		Configs: map[string]json.RawMessage{},
	}
	for name, c := range configs {
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Configs[name] = raw
	}
	// A broken plugin makes checks wait for their timeout; bound the whole run so that the test reports
	// the failures (the checks left are skipped, and a skip fails this test) instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	report, err := conformance.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("conformance.Run: %v", err)
	}
	if got, want := len(report.Results), len(conformance.Catalogue()); got != want {
		t.Errorf("conformance ran %d checks, the catalogue has %d", got, want)
	}
	for _, r := range report.Results {
		if r.Status == conformance.Pass {
			continue
		}
		var transcript strings.Builder
		for _, e := range r.Transcript {
			transcript.WriteString("    " + e.String() + "\n")
		}
		t.Errorf("%s (%s %s): %s: %s\n%s", r.ID, r.Level, r.Section, r.Status, r.Reason, transcript.String())
	}
	if report.MustFailed() {
		t.Errorf("a MUST check failed")
	}
}

var (
	goPluginOnce sync.Once
	goPlugin     string
	goPluginErr  error
	goPluginOut  []byte
)

// buildGoPlugin builds examples/plugins/packer-plugin-example once per test binary.
func buildGoPlugin(t *testing.T) string {
	t.Helper()
	goPluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pyhost-goplugin-")
		if err != nil {
			goPluginErr = err
			return
		}
		goPlugin = filepath.Join(dir, "packer-plugin-example")
		cmd := exec.Command("go", "build", "-o", goPlugin, "../plugins/packer-plugin-example")
		goPluginOut, goPluginErr = cmd.CombinedOutput()
	})
	if goPluginErr != nil {
		t.Fatalf("go build of the example plugin: %v\n%s", goPluginErr, goPluginOut)
	}
	return goPlugin
}

// TestPyHost runs pyhost.py, the Python host, against real plugin processes and checks its exit status
// and the lines that show each step of the protocol happened.
func TestPyHost(t *testing.T) {
	py := python3(t)
	goBin := buildGoPlugin(t)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(goBin)) })
	pyPlugin := pluginScript(t)
	dir := t.TempDir()
	// A directory to send up and fetch back: one file spans several 256 KiB stream chunks.
	src := filepath.Join(dir, "src")
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640000 bytes
	for name, data := range map[string][]byte{"a.txt": []byte("one\n"), "sub/b.txt": []byte("two\n"), "big.bin": big} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	tests := []struct {
		name     string
		args     []string
		wantExit int
		want     []string // lines that must appear in stdout, in this order
		check    func(t *testing.T)
		reason   string
	}{
		{
			name: "go plugin with relayed go provisioner",
			args: []string{
				"--provisioner", "example-shell",
				"--provisioner-config", js(map[string]any{"inline": []string{"echo relayed-by-pyhost", "cat artifact.txt"}}),
				"--post-processor", "example-checksum",
				goBin,
			},
			want: []string{
				"  component builder         example",
				"hook/run packer_provision (communicator 'c1'",
				"provisioner     relayed-by-pyhost",
				"provisioner     hello from pyhost",
				"provisioner: shutdown answered null, stdin closed; exit status 0",
				"second destroy of a2: -32005 (handle released)",
				"cancelled run answered -32006: request cancelled",
				"builder: shutdown answered null, stdin closed; exit status 0",
				"OK",
			},
			reason: "the Python host drives the Go plugin through a build, relays a second Go process's communicator calls, cancels and shuts down",
		},
		{
			name: "python plugin with relayed go provisioner",
			args: []string{
				"--builder", "pyfile",
				"--config", js(map[string]any{"output": filepath.Join(dir, "m1", "hello.txt"), "content": "hi from python\n"}),
				"--cancel-config", js(map[string]any{"output": filepath.Join(dir, "c1", "x.txt"), "sleep": 60}),
				"--provisioner", "example-shell", "--provisioner-plugin", goBin,
				"--provisioner-config", js(map[string]any{"inline": []string{"cat hello.txt", "echo to-stderr >&2"}}),
				"--post-processor", "pysha256",
				"--datasource", "pyfileinfo", "--datasource-config", js(map[string]any{"path": filepath.Join(src, "a.txt")}),
				pyPlugin,
			},
			want: []string{
				"plugin packer-plugin-pyexample 0.1.0 speaks protocol 1",
				"  component datasource      pyfileinfo",
				`datasource pyfileinfo: output {"path":"` + filepath.Join(src, "a.txt") + `","size":4,"sha256":"2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806","json":null}`,
				"provisioner     hi from python",
				"provisioner !!  to-stderr",
				"post-processed: Checksums in " + filepath.Join(dir, "m1", "SHA256SUMS"),
				"cancelled run answered -32006: request cancelled",
				"builder: shutdown answered null, stdin closed; exit status 0",
				"OK",
			},
			reason: "a Go provisioner runs commands on the Python builder's communicator through the Python host",
		},
		{
			name: "python plugin with relayed python provisioner",
			args: []string{
				"--builder", "pyfile",
				"--config", js(map[string]any{"output": filepath.Join(dir, "m2", "hello.txt"), "content": "hi\n"}),
				"--cancel-config", js(map[string]any{"output": filepath.Join(dir, "c2", "x.txt"), "sleep": 60}),
				"--provisioner", "pyupload",
				"--provisioner-config", js(map[string]any{
					"destination": "up.txt", "content": "b\na\n", "command": "sort up.txt", "fetch": "up.txt",
					"dir_upload": src, "dir_upload_to": "www", "dir_download": "www", "dir_download_to": filepath.Join(dir, "back"),
				}),
				pyPlugin,
			},
			want: []string{
				"provisioner ==> pyupload: uploading 4 bytes to up.txt",
				"provisioner     a",
				"provisioner     b",
				"provisioner ==> pyupload: fetched up.txt (4 bytes,",
				"provisioner ==> pyupload: uploaded directory " + src + " to www",
				"provisioner ==> pyupload: downloaded directory www: a.txt big.bin sub/b.txt",
				"cancelled run answered -32006: request cancelled",
				"OK",
			},
			check: func(t *testing.T) {
				for _, name := range []string{"a.txt", "sub/b.txt", "big.bin"} {
					want, err := os.ReadFile(filepath.Join(src, name))
					if err != nil {
						t.Fatal(err)
					}
					for _, got := range []string{filepath.Join(dir, "m2", "www", name), filepath.Join(dir, "back", name)} {
						data, err := os.ReadFile(got)
						if err != nil {
							t.Errorf("reading what came through the relay: %v", err)
						} else if !bytes.Equal(data, want) {
							t.Errorf("%s: %d bytes differ from the %d bytes of %s", got, len(data), len(want), name)
						}
					}
				}
			},
			reason: "upload, start, download, uploadDir and downloadDir streams relayed between two Python processes",
		},
		{
			name: "a run that cannot be cancelled is a surprise",
			args: []string{
				"--builder", "pyfile",
				"--config", js(map[string]any{"output": filepath.Join(dir, "m3", "hello.txt"), "content": "hi\n"}),
				"--cancel-config", js(map[string]any{"output": filepath.Join(dir, "c3", "x.txt")}),
				pyPlugin,
			},
			wantExit: 1,
			want: []string{
				"FAIL: the run to cancel finished before it was cancelled",
				"builder: shutdown answered null, stdin closed; exit status 0",
				"FAILED",
			},
			reason: "pyhost exits non-zero when the protocol does not go as expected, so the cases above can fail",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(py, append([]string{"pyhost.py"}, tc.args...)...)
			cmd.Dir = "."
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			if ee, ok := err.(*exec.ExitError); ok {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("running pyhost.py: %v", err)
			}
			if exit != tc.wantExit {
				t.Errorf("pyhost.py exit status %d, want %d (%s)", exit, tc.wantExit, tc.reason)
			}
			if diff := cmp.Diff(tc.want, inOrder(stdout.String(), tc.want)); diff != "" {
				t.Errorf("pyhost.py output lacks lines (-want +got) (%s):\n%s\nstdout:\n%s\nstderr:\n%s",
					tc.reason, diff, stdout.String(), stderr.String())
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// inOrder returns the prefixes of want that begin lines of out, in order: each is looked for after the line
// that matched the previous one. It equals want when every wanted line is there in that order.
func inOrder(out string, want []string) []string {
	lines := strings.Split(out, "\n")
	var got []string
	i := 0
	for _, w := range want {
		for j := i; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], w) {
				got = append(got, w)
				i = j + 1
				break
			}
		}
	}
	return got
}
