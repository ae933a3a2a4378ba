package host_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// recUI records what plugins say, and signals when a Say contains a given text.
type recUI struct {
	mu       sync.Mutex
	lines    []string // "say: ...", "message: ...", "error: ..."
	waitFor  string
	seen     chan struct{}
	seenOnce sync.Once
}

func newRecUI(waitFor string) *recUI { return &recUI{waitFor: waitFor, seen: make(chan struct{})} }

func (u *recUI) add(kind, msg string) {
	u.mu.Lock()
	u.lines = append(u.lines, kind+": "+msg)
	u.mu.Unlock()
	if u.waitFor != "" && strings.Contains(msg, u.waitFor) {
		u.seenOnce.Do(func() { close(u.seen) })
	}
}
func (u *recUI) Say(msg string)                     { u.add("say", msg) }
func (u *recUI) Message(msg string)                 { u.add("message", msg) }
func (u *recUI) Error(msg string)                   { u.add("error", msg) }
func (u *recUI) Machine(typ string, data ...string) { u.add("machine", typ) }
func (u *recUI) Progress(protocol.UIProgressParams) {}
func (u *recUI) Ask(context.Context, string) (string, error) {
	return "", protocol.ErrUnsupported
}

func (u *recUI) has(line string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.lines, line)
}

func (u *recUI) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.lines)
}

func startExample(t *testing.T, name string, opts host.Options) *host.Plugin {
	t.Helper()
	if exampleBuildErr != nil {
		t.Fatal(exampleBuildErr)
	}
	opts.Name = name
	p, err := host.Start(t.Context(), exec.Command(examplePlugin), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExamplePlugin drives the real example plugin through every host
// feature: handshake, schemas, prepare (good and bad), run with UI
// callbacks, the hook relay into a provisioner in a second process,
// post-processing, destroy, cancel, close and the trace.
func TestExamplePlugin(t *testing.T) {
	var trace bytes.Buffer
	var traceMu sync.Mutex
	tracer := protocol.NewTracer(lockedWriter{&traceMu, &trace})
	var stderr bytes.Buffer
	var stderrMu sync.Mutex

	provUI := newRecUI("")
	prov := startExample(t, "provisioner-plugin", host.Options{UI: provUI, Tracer: tracer, Stderr: lockedWriter{&stderrMu, &stderr}})
	defer prov.Close()

	out := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 80<<10) // 1.25 MiB: several stream chunks
	var hookMu sync.Mutex
	var hookErrs []error
	hookErr := func(err error) {
		hookMu.Lock()
		hookErrs = append(hookErrs, err)
		hookMu.Unlock()
	}
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		if name != protocol.HookProvision || comm == nil {
			hookErr(errors.New("hook: unexpected name or nil communicator"))
			return nil
		}
		// The host itself uses the builder's communicator...
		if err := comm.Upload(ctx, "big.bin", bytes.NewReader(big), 0o600, int64(len(big))); err != nil {
			return err
		}
		var back bytes.Buffer
		if err := comm.Download(ctx, "big.bin", &back); err != nil {
			return err
		}
		if !bytes.Equal(back.Bytes(), big) {
			hookErr(errors.New("hook: downloaded bytes differ from the uploaded ones"))
		}
		// ... and relays it to a provisioner in another process.
		inst, _, err := prov.Prepare(ctx, protocol.TypeProvisioner, "example-shell", map[string]any{
			"inline":           []string{"echo hello from $WHO", "cat artifact.txt", "echo made > made.txt"},
			"environment_vars": []string{"WHO=the-provisioner"},
		})
		if err != nil {
			return err
		}
		return inst.Provision(ctx, comm, data)
	})
	ui := newRecUI("Waiting")
	p := startExample(t, "builder-plugin", host.Options{UI: ui, Hook: hook, Tracer: tracer, Stderr: lockedWriter{&stderrMu, &stderr}})
	defer p.Close()

	// Handshake and components.
	var names []string
	for _, c := range p.Components() {
		names = append(names, c.Type+"/"+c.Name)
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(c.ConfigSchema, &schema); err != nil || len(schema.Properties) == 0 {
			t.Errorf("%s/%s: config schema without properties: %s", c.Type, c.Name, c.ConfigSchema)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"builder/example", "post-processor/example-checksum", "provisioner/example-shell"}, names); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	if got := p.Info().ProtocolVersion; got != protocol.Version {
		t.Errorf("protocol version %d, want %d", got, protocol.Version)
	}

	// A bad configuration: the errors carry JSON-pointer paths.
	_, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "example", map[string]any{"output": "", "wait": "soon"})
	if !errors.Is(err, protocol.ErrConfigInvalid) {
		t.Fatalf("bad config: got %v, want ErrConfigInvalid", err)
	}
	var paths []string
	for _, ce := range host.ConfigErrors(err) {
		paths = append(paths, ce.Path)
	}
	slices.Sort(paths)
	if diff := cmp.Diff([]string{"/output", "/wait"}, paths); diff != "" {
		t.Errorf("config error paths (-want +got):\n%s", diff)
	}
	if _, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "nope"); !errors.Is(err, protocol.ErrUnknownComponent) {
		t.Errorf("unknown component: got %v, want ErrUnknownComponent", err)
	}

	// A good one, in two objects merged by the plugin.
	b, warnings, err := p.Prepare(t.Context(), protocol.TypeBuilder, "example",
		map[string]any{"output": "overridden", "content": "built by the test"},
		json.RawMessage(`{"output":`+strconvQuote(out)+`}`))
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if warnings == nil {
		t.Errorf("warnings is nil, want an empty list")
	}
	art, err := b.Run(t.Context())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	hookMu.Lock()
	for _, e := range hookErrs {
		t.Error(e)
	}
	hookMu.Unlock()
	if art == nil || art.Handle == "" || art.ID != out {
		t.Fatalf("artifact %+v, want one with a handle and id %s", art, out)
	}
	if !ui.has("say: Writing artifact.txt into " + out) {
		t.Errorf("builder UI lines %q lack the Say", ui.all())
	}
	for _, want := range []string{"message: hello from the-provisioner", "message: built by the test"} {
		if !provUI.has(want) {
			t.Errorf("provisioner output did not arrive: UI lines %q lack %q", provUI.all(), want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(out, "made.txt")); err != nil || string(b) != "made\n" {
		t.Errorf("made.txt: %q, %v: the provisioner's command did not run in the builder's directory", b, err)
	}

	// Post-process the artifact: checksums of its files.
	pp, _, err := p.Prepare(t.Context(), protocol.TypePostProcessor, "example-checksum", map[string]any{})
	if err != nil {
		t.Fatalf("prepare checksum: %v", err)
	}
	sumArt, keep, _, err := pp.PostProcess(t.Context(), *art)
	if err != nil {
		t.Fatalf("postprocess: %v", err)
	}
	if !keep || sumArt == nil || len(sumArt.Files) != 1 {
		t.Fatalf("postprocess gave %+v keep=%v, want one file and keep", sumArt, keep)
	}
	sums, err := os.ReadFile(sumArt.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("built by the test"))
	if want := hex.EncodeToString(h[:]) + "  " + filepath.Join(out, "artifact.txt"); !strings.Contains(string(sums), want) {
		t.Errorf("CHECKSUM %q lacks %q", sums, want)
	}

	// Destroy the builder's artifact: its files go.
	if err := p.DestroyArtifact(t.Context(), art); err != nil {
		t.Errorf("destroy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "artifact.txt")); !os.IsNotExist(err) {
		t.Errorf("artifact.txt still there after destroy: %v", err)
	}

	// Cancel a run while the builder waits: the plugin sees the cancel.
	slow, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "example", map[string]any{"output": t.TempDir(), "wait": "1m"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		select {
		case <-ui.seen:
		case <-ctx.Done():
		}
		cancel()
	}()
	_, err = slow.Run(ctx)
	cancel()
	if !errors.Is(err, protocol.ErrCancelled) {
		t.Errorf("cancelled run: got %v, want ErrCancelled", err)
	}
	if !ui.has("error: Cancelled while waiting") {
		t.Errorf("the plugin did not observe the cancel: UI lines %q", ui.all())
	}

	if err := p.Close(); err != nil {
		t.Errorf("close builder plugin: %v", err)
	}
	if err := prov.Close(); err != nil {
		t.Errorf("close provisioner plugin: %v", err)
	}

	// The trace holds both directions for both plugins.
	traceMu.Lock()
	defer traceMu.Unlock()
	seen := map[string]bool{}
	sc := bufio.NewScanner(&trace)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var rec struct{ Peer, Dir string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		seen[rec.Peer+" "+rec.Dir] = true
	}
	for _, want := range []string{"builder-plugin send", "builder-plugin recv", "provisioner-plugin send", "provisioner-plugin recv"} {
		if !seen[want] {
			t.Errorf("trace has no %q record (has %v)", want, seen)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
