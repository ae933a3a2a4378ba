// Package python_test proves that SPEC.md and schema/ are enough to write a plugin and a host in another
// language: it runs plugin-conformance against packer-plugin-pyexample (a Python plugin written from the
// spec alone) and runs pyhost.py (a Python host written from the spec alone) against the Go example plugin
// and against the Python plugin, with real processes and real pipes. The tests are skipped only when
// python3 is not installed.
package python_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

	// relayed is the case of the Python provisioner's streams relayed by pyhost to the Python builder, with
	// the builder's plugin offered builderVersions and the provisioner's provVersions: every mix of the
	// versions the two connections use goes through a different path of the relay (SPEC §7.7 step 4).
	relayed := func(builderVersions, provVersions string, bv, pv int) pyhostCase {
		m := fmt.Sprintf("mix-b%d-p%d", bv, pv)
		machine, back := filepath.Join(dir, m), filepath.Join(dir, m+"-back")
		return pyhostCase{
			name: fmt.Sprintf("python provisioner on version %d relayed to the python builder on version %d", pv, bv),
			args: []string{
				"--builder", "pyfile", "--versions", builderVersions, "--provisioner-versions", provVersions,
				"--config", js(map[string]any{"output": filepath.Join(machine, "hello.txt"), "content": "hi\n"}),
				"--cancel-config", js(map[string]any{"output": filepath.Join(dir, m+"-c", "x.txt"), "sleep": 60}),
				"--provisioner", "pyupload",
				"--provisioner-config", js(map[string]any{
					"destination": "up.txt", "content": "b\na\n", "command": "sort up.txt", "fetch": "up.txt",
					"dir_upload": src, "dir_upload_to": "www", "dir_download": "www", "dir_download_to": back,
				}),
				pyPlugin,
			},
			want: []string{
				fmt.Sprintf("plugin packer-plugin-pyexample 0.1.0 speaks protocol %d", bv),
				fmt.Sprintf("provisioner plugin packer-plugin-pyexample speaks protocol %d (builder: %d)", pv, bv),
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
					for _, got := range []string{filepath.Join(machine, "www", name), filepath.Join(back, name)} {
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
		}
	}

	tests := []pyhostCase{
		{
			name: "go plugin with relayed go provisioner",
			args: []string{
				"--provisioner", "example-shell",
				"--provisioner-config", js(map[string]any{"inline": []string{"echo relayed-by-pyhost", "cat artifact.txt"}}),
				"--post-processor", "example-checksum",
				goBin,
			},
			want: []string{
				// The version is "(devel)" or a pseudo-version, by how the
				// checkout was built.
				"plugin packer-plugin-example * speaks protocol 2",
				"  component builder         example",
				"hook/run packer_provision (communicator 'c1'",
				"provisioner plugin packer-plugin-example speaks protocol 2 (builder: 2)",
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
				"plugin packer-plugin-pyexample 0.1.0 speaks protocol 2",
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
		relayed("2,1", "2,1", 2, 2),
		relayed("1", "2,1", 1, 2),
		relayed("2,1", "1", 2, 1),
		relayed("1", "1", 1, 1),
		{
			name: "go provisioner on version 1 relayed to the python builder on version 2",
			args: []string{
				"--builder", "pyfile", "--provisioner-versions", "1",
				"--config", js(map[string]any{"output": filepath.Join(dir, "m4", "hello.txt"), "content": "hi from python\n"}),
				"--cancel-config", js(map[string]any{"output": filepath.Join(dir, "c4", "x.txt"), "sleep": 60}),
				"--provisioner", "example-shell", "--provisioner-plugin", goBin,
				"--provisioner-config", js(map[string]any{"inline": []string{"cat hello.txt", "echo to-stderr >&2"}}),
				pyPlugin,
			},
			want: []string{
				"plugin packer-plugin-pyexample 0.1.0 speaks protocol 2",
				"provisioner plugin packer-plugin-example speaks protocol 1 (builder: 2)",
				"provisioner     hi from python",
				"provisioner !!  to-stderr",
				"OK",
			},
			reason: "pyhost relays a version 1 connection's stream requests to a version 2 builder's streams",
		},
		{
			name:     "a plugin that speaks none of the versions offered",
			args:     []string{"--builder", "pyfile", "--versions", "3", pyPlugin},
			wantExit: 1,
			want: []string{
				"FAIL: the builder plugin speaks protocol versions [2, 1], this host offers [3]",
				"FAILED",
			},
			reason: "the plugin answers -32002 with the versions it speaks, and pyhost says so in words (SPEC §5.2)",
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
	if _, err := os.Stat("/dev/full"); err == nil {
		// Over two windows of 1 MiB: the builder cannot have sent it all when the first write fails.
		large := filepath.Join(dir, "large.bin")
		if err := os.WriteFile(large, bytes.Repeat([]byte("x"), 2<<20+1), 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, pyhostCase{
			name: "a sink whose local file fills is cancelled with the reason",
			args: []string{
				"--builder", "pyfile",
				"--config", js(map[string]any{"output": filepath.Join(dir, "m5", "hello.txt"), "content": "hi\n"}),
				"--provisioner", "pyupload",
				"--provisioner-config", js(map[string]any{"destination": "up.bin", "source_file": large, "fetch": "up.bin", "fetch_to": "/dev/full"}),
				pyPlugin,
			},
			wantExit: 1,
			want: []string{
				"provisioner plugin packer-plugin-pyexample speaks protocol 2 (builder: 2)",
				"FAIL: builder/run: -32007 component failed: provisioning: component failed: communicator/download: " +
					"component failed: writing sink stream: [Errno 28] No space left on device",
				"FAILED",
			},
			reason: "the provisioner's sink fails to write and cancels the stream with -32007 (SPEC §7.5.2); pyhost " +
				"forwards the cancel to the builder, whose download fails with that reason",
		})
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

// pyhostCase is a run of pyhost.py and what it must print.
type pyhostCase struct {
	name     string
	args     []string
	wantExit int
	want     []string // lines that must appear in stdout, in this order
	check    func(t *testing.T)
	reason   string
}

// linePrefix matches lines that start with w, in which "*" stands for any
// text.
func linePrefix(w string) *regexp.Regexp {
	return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(w), `\*`, ".*"))
}

// inOrder returns the prefixes of want that begin lines of out, in order: each is looked for after the line
// that matched the previous one. It equals want when every wanted line is there in that order.
func inOrder(out string, want []string) []string {
	lines := strings.Split(out, "\n")
	var got []string
	i := 0
	for _, w := range want {
		for j := i; j < len(lines); j++ {
			if linePrefix(w).MatchString(lines[j]) {
				got = append(got, w)
				i = j + 1
				break
			}
		}
	}
	return got
}

var (
	packerOnce sync.Once
	packerBin  string
	packerErr  error
	packerOut  []byte
)

// buildPacker builds cmd/packer once per test binary.
func buildPacker(t *testing.T) string {
	t.Helper()
	packerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pyexample-packer-")
		if err != nil {
			packerErr = err
			return
		}
		packerBin = filepath.Join(dir, "packer")
		packerOut, packerErr = exec.Command("go", "build", "-o", packerBin, "../../cmd/packer").CombinedOutput()
	})
	if packerErr != nil {
		t.Fatalf("go build of packer: %v\n%s", packerErr, packerOut)
	}
	return packerBin
}

// TestPackerHost has packer, which offers protocol versions [2, 1], build with the Python builder and run
// the Python provisioner on its communicator, moving tens of MiB each way: a file uploaded and fetched
// back, and a directory uploaded and downloaded as tar streams. packer relays the provisioner's streams
// to the builder (SPEC §7.7), so every byte passes two version 2 connections under flow control. The
// checksums must match, and packer's protocol trace must show version 2 streams and no version 1
// request.
func TestPackerHost(t *testing.T) {
	py := python3(t)
	if testing.Short() {
		t.Skip("builds packer and moves tens of MiB")
	}
	packer := buildPacker(t)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(packer)) })
	dir := t.TempDir()
	script, err := os.ReadFile(pluginScript(t))
	if err != nil {
		t.Fatal(err)
	}
	// packer finds packer-plugin-pyexample in its working directory; the copy runs the python3 found above.
	plugin := filepath.Join(dir, "packer-plugin-pyexample")
	script = append([]byte("#!"+py+"\n"), script[bytes.IndexByte(script, '\n')+1:]...)
	if err := os.WriteFile(plugin, script, 0o755); err != nil {
		t.Fatal(err)
	}
	random := func(name string, size int) {
		t.Helper()
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7919 + i>>13)
		}
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(dir, "big.bin")
	random(big, 24<<20+12345) // not a multiple of a chunk
	src := filepath.Join(dir, "src")
	random(filepath.Join(src, "sub", "dir.bin"), 8<<20)
	random(filepath.Join(src, "a.txt"), 3)
	machine := filepath.Join(dir, "machine")
	template := map[string]any{
		"builders": []any{map[string]any{"type": "pyexample-pyfile", "output": filepath.Join(machine, "hello.txt"), "content": "hi\n"}},
		"provisioners": []any{map[string]any{
			"type": "pyexample-pyupload", "destination": "big.bin", "source_file": big, "command": "wc -c < big.bin",
			"fetch": "big.bin", "fetch_to": filepath.Join(dir, "back.bin"),
			"dir_upload": src, "dir_upload_to": "www", "dir_download": "www", "dir_download_to": filepath.Join(dir, "back"),
		}},
	}
	raw, err := json.Marshal(template)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "template.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(dir, "trace.jsonl")
	cmd := exec.Command(packer, "build", "template.json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "PACKER_PLUGIN_PATH=", "PACKER_CONFIG=", "PACKER_LOG=", "PACKER_LOG_PATH=",
		"PACKER_RPC_TRACE="+trace, "PACKER_RPC_TRACE_DATA=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, out)
	}
	for _, pair := range [][2]string{
		{big, filepath.Join(machine, "big.bin")},
		{big, filepath.Join(dir, "back.bin")},
		{filepath.Join(src, "sub", "dir.bin"), filepath.Join(machine, "www", "sub", "dir.bin")},
		{filepath.Join(src, "sub", "dir.bin"), filepath.Join(dir, "back", "sub", "dir.bin")},
		{filepath.Join(src, "a.txt"), filepath.Join(dir, "back", "a.txt")},
	} {
		if diff := cmp.Diff(sha256File(t, pair[0]), sha256File(t, pair[1])); diff != "" {
			t.Errorf("%s differs from %s (-want +got):\n%s", pair[1], pair[0], diff)
		}
	}
	if want := fmt.Sprintf("%d", 24<<20+12345); !strings.Contains(string(out), want) {
		t.Errorf("the command's output lacks the size %s:\n%s", want, out)
	}
	// Count the stream methods packer sent and received, on both plugin connections.
	got := map[string]int{}
	tr, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(tr)), "\n") {
		var rec struct {
			Dir string `json:"dir"`
			Msg struct {
				Method string `json:"method"`
			} `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("trace line %q: %v", line, err)
		}
		if strings.HasPrefix(rec.Msg.Method, "stream/") {
			got[rec.Dir+" "+rec.Msg.Method]++
		}
	}
	// Every chunk packer receives it sends on (a relay), and the bytes moved need at least one chunk per
	// 256 KiB each way.
	minChunks := 2 * (24<<20 + 8<<20) / (256 << 10)
	if got["recv stream/data"] < minChunks || got["send stream/data"] != got["recv stream/data"] {
		t.Errorf("stream/data: received %d, sent %d; want at least %d, and as many sent as received",
			got["recv stream/data"], got["send stream/data"], minChunks)
	}
	for _, m := range []string{"stream/credit", "stream/end"} {
		if got["recv "+m] == 0 || got["send "+m] == 0 {
			t.Errorf("%s: received %d, sent %d; want both", m, got["recv "+m], got["send "+m])
		}
	}
	for _, m := range []string{"stream/read", "stream/write", "stream/close"} {
		if n := got["send "+m] + got["recv "+m]; n != 0 {
			t.Errorf("%d %s messages in a version 2 session", n, m)
		}
	}
	t.Logf("stream messages packer sent and received: %v", got)
}

func sha256File(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rawSession is a version 2 session with the Python plugin driven line by line, for rules that no host
// run exercises deterministically.
type rawSession struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

func (s *rawSession) send(msg map[string]any) {
	s.t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.in.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("writing to the plugin: %v", err)
	}
}

// next returns the next message that is not a ui/* notification.
func (s *rawSession) next() map[string]any {
	s.t.Helper()
	for s.out.Scan() {
		var m map[string]any
		if err := json.Unmarshal(s.out.Bytes(), &m); err != nil {
			s.t.Fatalf("the plugin wrote %q: %v", s.out.Bytes(), err)
		}
		if method, _ := m["method"].(string); strings.HasPrefix(method, "ui/") {
			continue
		}
		return m
	}
	s.t.Fatalf("the plugin's stdout ended: %v", s.out.Err())
	return nil
}

// TestVersion2SourceUnderCredit runs the provisioner in a version 2 session and reads the source the
// plugin offers in communicator/upload the way a host does, granting credit 100000 bytes at a time: no
// chunk may exceed the credit left (SPEC §7.5.2 rule 2), and the bytes must arrive whole, then
// stream/end. A version 1 stream/read naming that source gets -32005 (rule 7).
func TestVersion2SourceUnderCredit(t *testing.T) {
	py := python3(t)
	content := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\n", 16000) // 592000 bytes
	cmd := exec.Command(py, pluginScript(t))
	cmd.Env = append(os.Environ(), "PACKER_PLUGIN_MAGIC_COOKIE=d7a0b3c1e6f54c2a9b8e1f0a3c5d7e9f-stdio-jsonrpc")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A plugin that stops talking is killed, which ends the reads below, instead of hanging the test.
	stuck := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer func() {
		stuck.Stop()
		in.Close()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	s := &rawSession{t: t, in: in, out: sc}

	s.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{
		"protocol_versions": []int{2, 1}, "host": map[string]any{"name": "test", "version": "0"},
		"limits": map[string]any{"max_message_size": 4194304}, "capabilities": map[string]any{"ask": false, "progress": false},
	}})
	if got := s.next(); got["result"].(map[string]any)["protocol_version"] != 2.0 {
		t.Fatalf("initialize offering [2, 1] answered %v, want protocol_version 2", got)
	}
	s.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "component/prepare", "params": map[string]any{
		"type": "provisioner", "name": "pyupload", "configs": []any{map[string]any{"destination": "up.txt", "content": content}},
	}})
	inst := s.next()["result"].(map[string]any)["instance"]
	s.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "provisioner/provision", "params": map[string]any{
		"instance": inst, "communicator": "c1", "data": map[string]any{},
	}})
	up := s.next()
	if up["method"] != "communicator/upload" {
		t.Fatalf("got %v, want the communicator/upload request", up)
	}
	source := up["params"].(map[string]any)["source"].(string)

	s.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "stream/read", "params": map[string]any{"stream": source, "max": 10}})
	if got := s.next(); got["id"] != 4.0 || got["error"].(map[string]any)["code"] != -32005.0 {
		t.Errorf("stream/read of a version 2 source answered %v, want -32005", got)
	}

	const grant = 100000
	var data bytes.Buffer
	granted := 0
	credit := func() {
		granted += grant
		s.send(map[string]any{"jsonrpc": "2.0", "method": "stream/credit", "params": map[string]any{"source": source, "bytes": grant}})
	}
	credit()
	for {
		m := s.next()
		params, _ := m["params"].(map[string]any)
		if m["method"] == "stream/end" && params["source"] == source {
			if params["error"] != nil {
				t.Fatalf("the source was aborted: %v", params["error"])
			}
			break
		}
		if m["method"] != "stream/data" || params["source"] != source {
			t.Fatalf("got %v while reading the source", m)
		}
		chunk, err := base64.StdEncoding.DecodeString(params["data"].(string))
		if err != nil {
			t.Fatal(err)
		}
		data.Write(chunk)
		if data.Len() > granted {
			t.Fatalf("received %d bytes with %d granted: a chunk of %d bytes exceeded the credit left", data.Len(), granted, len(chunk))
		}
		if data.Len() == granted {
			credit()
		}
	}
	if diff := cmp.Diff(content, data.String()); diff != "" {
		t.Errorf("the uploaded bytes differ (-want +got):\n%s", diff)
	}
	s.send(map[string]any{"jsonrpc": "2.0", "id": up["id"], "result": nil})
	if got := s.next(); got["id"] != 3.0 || got["error"] != nil {
		t.Errorf("provisioner/provision answered %v, want a result", got)
	}
}
