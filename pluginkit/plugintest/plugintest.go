// Package plugintest runs a plugin's components in the test process, served
// by pluginkit over in-memory pipes and driven by the real host library, so
// that a plugin author can test components through the protocol without
// building a binary.
//
//	func TestBuilder(t *testing.T) {
//		srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-mine", Version: "test"})
//		srv.RegisterBuilder("mine", new(Builder))
//		ui := &plugintest.UI{}
//		p := plugintest.New(t, srv, host.Options{UI: ui})
//		b, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "mine", map[string]any{...})
//		...
//		if diff := cmp.Diff([]string{"..."}, ui.Says()); diff != "" { ... }
//	}
package plugintest

import (
	"context"
	"errors"
	"io"
	"log"
	"strings"
	"sync"
	"testing"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// New serves srv over a pair of in-memory pipes and connects a host to it
// with [host.Connect] and opts (Name defaults to "plugintest"; when opts.UI
// is a *[UI], the host declares the ask and progress capabilities). It must be
// called from the test goroutine: it fails the test when the handshake
// fails. The test's cleanup closes the host side (shutdown, then closing the
// pipes), waits for srv.ServeConn to return and reports its error. The
// server's diagnostics go to t.Log while the test runs.
func New(t testing.TB, srv *pluginkit.Server, opts host.Options) *host.Plugin {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "plugintest"
	}
	if _, ok := opts.UI.(*UI); ok {
		opts.Capabilities.Ask = true
		opts.Capabilities.Progress = true
	}
	hostR, pluginW := io.Pipe()
	pluginR, hostW := io.Pipe()
	logw := &testLog{t: t}
	served := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		served <- srv.ServeConn(ctx, pluginR, pluginW, pipeCloser{pluginR, pluginW}, log.New(logw, opts.Name+": ", 0))
	}()
	finish := func() error {
		hostR.Close()
		hostW.Close()
		err := <-served
		cancel()
		logw.stop()
		return err
	}
	p, err := host.Connect(t.Context(), hostR, hostW, pipeCloser{hostR, hostW}, opts)
	if err != nil {
		finish()
		t.Fatalf("plugintest: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("plugintest: closing the plugin: %v", err)
		}
		if err := finish(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("plugintest: ServeConn: %v", err)
		}
	})
	return p
}

type pipeCloser struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (c pipeCloser) Close() error {
	c.r.Close()
	return c.w.Close()
}

// testLog writes to t.Log until the test is over.
type testLog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// ErrNoAnswer is returned by [UI.Ask] when no answer is queued.
var ErrNoAnswer = errors.New("plugintest: no answer queued for ui/ask")

// Line is one line a plugin showed.
type Line struct {
	Kind string // "say", "message" or "error"
	Text string
}

// UI is a [host.UI] that records what plugins show, for tests to assert on,
// and answers Ask from a queue. The zero value is ready to use; it is safe
// for concurrent use.
type UI struct {
	mu       sync.Mutex
	lines    []Line
	machine  [][]string
	progress []protocol.UIProgressParams
	answers  []string
	asked    []string
}

var _ host.UI = (*UI)(nil)

// Answer queues answers for later Ask calls, in order.
func (u *UI) Answer(answers ...string) {
	u.mu.Lock()
	u.answers = append(u.answers, answers...)
	u.mu.Unlock()
}

func (u *UI) add(kind, text string) {
	u.mu.Lock()
	u.lines = append(u.lines, Line{Kind: kind, Text: text})
	u.mu.Unlock()
}

// Say records a "say" line.
func (u *UI) Say(msg string) { u.add("say", msg) }

// Message records a "message" line.
func (u *UI) Message(msg string) { u.add("message", msg) }

// Error records an "error" line.
func (u *UI) Error(msg string) { u.add("error", msg) }

// Machine records machine-readable output as [typ, data...].
func (u *UI) Machine(typ string, data ...string) {
	u.mu.Lock()
	u.machine = append(u.machine, append([]string{typ}, data...))
	u.mu.Unlock()
}

// Progress records a progress report.
func (u *UI) Progress(p protocol.UIProgressParams) {
	u.mu.Lock()
	u.progress = append(u.progress, p)
	u.mu.Unlock()
}

// Ask records the query and returns the next queued answer, or
// [ErrNoAnswer] when the queue is empty.
func (u *UI) Ask(_ context.Context, query string) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.asked = append(u.asked, query)
	if len(u.answers) == 0 {
		return "", ErrNoAnswer
	}
	a := u.answers[0]
	u.answers = u.answers[1:]
	return a, nil
}

// Lines returns every say, message and error line, in order.
func (u *UI) Lines() []Line {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Line(nil), u.lines...)
}

func (u *UI) kind(k string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, l := range u.lines {
		if l.Kind == k {
			out = append(out, l.Text)
		}
	}
	return out
}

// Says returns the say lines, in order.
func (u *UI) Says() []string { return u.kind("say") }

// Messages returns the message lines, in order.
func (u *UI) Messages() []string { return u.kind("message") }

// Errors returns the error lines, in order.
func (u *UI) Errors() []string { return u.kind("error") }

// MachineLines returns the machine-readable outputs, each as [type, data...].
func (u *UI) MachineLines() [][]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]string(nil), u.machine...)
}

// ProgressReports returns the progress reports, in order.
func (u *UI) ProgressReports() []protocol.UIProgressParams {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]protocol.UIProgressParams(nil), u.progress...)
}

// Asked returns the queries asked, in order.
func (u *UI) Asked() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.asked...)
}

// Provisioner is a provisioner for [RunBuild]: the name it is registered
// under on the same server as the builder, and its configuration.
type Provisioner struct {
	Name   string
	Config map[string]any
}

// RunBuild runs a build as packer would, in a few lines: it serves srv (see
// [New]) with ui as the plugin's UI, prepares the builder registered as
// builder with config, and runs it. When the builder calls the provisioning
// hook ([protocol.HookProvision]), each provisioner is prepared on the same
// server and run in order on the builder's communicator, with the data the
// builder passed; the first failure ends the hook with that error. Other
// hooks do nothing. It returns the builder's artifact, or the error of the
// preparation or of the run. ui may be nil. It must be called from the
// test goroutine.
//
//	art, err := plugintest.RunBuild(t, newServer(), ui, "dir", map[string]any{"output": dir},
//		plugintest.Provisioner{Name: "write", Config: map[string]any{"file": "a.txt", "text": "hi"}})
func RunBuild(t testing.TB, srv *pluginkit.Server, ui host.UI, builder string, config map[string]any, provisioners ...Provisioner) (*protocol.Artifact, error) {
	t.Helper()
	var p *host.Plugin
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		if name != protocol.HookProvision {
			return nil
		}
		for _, pr := range provisioners {
			inst, _, err := p.Prepare(ctx, protocol.TypeProvisioner, pr.Name, pr.Config)
			if err != nil {
				return err
			}
			if err := inst.Provision(ctx, comm, data); err != nil {
				return err
			}
		}
		return nil
	})
	p = New(t, srv, host.Options{UI: ui, Hook: hook})
	b, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, builder, config)
	if err != nil {
		return nil, err
	}
	return b.Run(t.Context())
}
