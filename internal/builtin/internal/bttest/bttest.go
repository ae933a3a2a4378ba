// Package bttest runs builtin components in-process for their tests: a
// pluginkit server and a host connected over in-memory pipes, and a UI that
// records what the components say.
package bttest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// Start serves the components register adds on a pluginkit server and
// connects a host to it with opts. When opts has a UI and no
// capabilities, the host says it can ask and shows progress. Cleanup closes
// the host side and waits for the server to return. It must be called on
// the test goroutine.
func Start(t testing.TB, register func(*pluginkit.Server), opts host.Options) *host.Plugin {
	t.Helper()
	if opts.UI != nil && opts.Capabilities == (protocol.HostCapabilities{}) {
		opts.Capabilities = protocol.HostCapabilities{Ask: true, Progress: true}
	}
	srv := pluginkit.NewServer(protocol.Peer{Name: "bttest", Version: "test"})
	register(srv)
	hostR, plugW := io.Pipe()
	plugR, hostW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- srv.ServeConn(context.Background(), plugR, plugW, closers{plugR, plugW}, nil)
	}()
	p, err := host.Connect(context.Background(), hostR, hostW, closers{hostR, hostW}, opts)
	if err != nil {
		hostW.Close()
		hostR.Close()
		<-done
		t.Fatalf("connecting to the in-process plugin: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		hostW.Close()
		hostR.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	})
	return p
}

type closers []io.Closer

func (cs closers) Close() error {
	for _, c := range cs {
		c.Close()
	}
	return nil
}

// UI is a host.UI that records every line as "say: MSG", "message: MSG",
// "error: MSG", "machine: TYPE DATA..." or "ask: QUERY", and answers Ask
// with the next value sent on Answers (or fails when ctx is done first).
type UI struct {
	// Answers feeds Ask.
	Answers chan string
	// Asked, if not nil, receives each query when Ask starts waiting.
	Asked chan string

	mu       sync.Mutex
	lines    []string
	progress []protocol.UIProgressParams
	changed  chan struct{} // closed and replaced when a line is added
}

var _ host.UI = (*UI)(nil)

// NewUI returns a UI with an unbuffered Answers channel and a buffered Asked.
func NewUI() *UI {
	return &UI{Answers: make(chan string), Asked: make(chan string, 16)}
}

func (u *UI) add(kind, msg string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lines = append(u.lines, kind+": "+msg)
	if u.changed != nil {
		close(u.changed)
		u.changed = nil
	}
}

// WaitFor blocks until a line equal to line ("KIND: MSG") has been
// recorded, or ctx is done.
func (u *UI) WaitFor(ctx context.Context, line string) error {
	return u.WaitMatch(ctx, func(lines []string) bool { return contains(lines, line) })
}

// WaitMatch blocks until match, called with every line recorded so far
// (and again after each new one), returns true, or ctx is done.
func (u *UI) WaitMatch(ctx context.Context, match func(lines []string) bool) error {
	for {
		u.mu.Lock()
		if match(append([]string(nil), u.lines...)) {
			u.mu.Unlock()
			return nil
		}
		if u.changed == nil {
			u.changed = make(chan struct{})
		}
		ch := u.changed
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a UI line: %w", ctx.Err())
		}
	}
}

// Say records a say line.
func (u *UI) Say(msg string) { u.add("say", msg) }

// Message records a message line.
func (u *UI) Message(msg string) { u.add("message", msg) }

// Error records an error line.
func (u *UI) Error(msg string) { u.add("error", msg) }

// Machine records a machine line.
func (u *UI) Machine(typ string, data ...string) {
	u.add("machine", strings.Join(append([]string{typ}, data...), " "))
}

// Ask records the query and waits for an answer.
func (u *UI) Ask(ctx context.Context, query string) (string, error) {
	u.add("ask", query)
	if u.Asked != nil {
		select {
		case u.Asked <- query:
		default:
		}
	}
	select {
	case a := <-u.Answers:
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Progress records a progress notification.
func (u *UI) Progress(p protocol.UIProgressParams) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.progress = append(u.progress, p)
}

// Lines returns the recorded lines whose kind is one of kinds (all lines
// when kinds is empty).
func (u *UI) Lines(kinds ...string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, l := range u.lines {
		kind, _, _ := strings.Cut(l, ": ")
		if len(kinds) == 0 || contains(kinds, kind) {
			out = append(out, l)
		}
	}
	return out
}

// ProgressStates returns the state of each progress notification, in order,
// labelled: "LABEL start", "LABEL done"; updates are left out.
func (u *UI) ProgressStates() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	labels := map[string]string{}
	for _, p := range u.progress {
		if p.Label != "" {
			labels[p.ID] = p.Label
		}
		if p.State != protocol.ProgressUpdate {
			out = append(out, labels[p.ID]+" "+p.State)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PackerKeys returns the packer_* keys a host sends in the last config
// object, for a build named name with builder type builderType.
func PackerKeys(name, builderType string) map[string]any {
	return map[string]any{"packer_build_name": name, "packer_builder_type": builderType}
}

// ConfigErrors returns the configuration errors of a failed prepare as
// "PATH: MESSAGE" strings, or nil when err carries none.
func ConfigErrors(err error) []string {
	var out []string
	for _, ce := range host.ConfigErrors(err) {
		out = append(out, ce.Path+": "+ce.Message)
	}
	return out
}
