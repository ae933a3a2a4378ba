package ui_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/ui"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// pluginEnv makes the test binary a plugin whose builder starts this many
// progress bars and never finishes them.
const pluginEnv = "UI_TEST_PROGRESS_BARS"

type barsBuilder struct{ n int }

func (b *barsBuilder) Config() any                { return &struct{}{} }
func (b *barsBuilder) Prepare() ([]string, error) { return nil, nil }
func (b *barsBuilder) Run(ctx context.Context, u pluginkit.UI, _ pluginkit.Hook) (pluginkit.Artifact, error) {
	for i := range b.n {
		u.TrackProgress("file"+strconv.Itoa(i)+"\x1b]0;title\x07", 0, 1<<30, io.NopCloser(strings.NewReader("")))
	}
	u.Say("started every transfer")
	return nil, nil
}

func servePlugin() {
	n, _ := strconv.Atoi(os.Getenv(pluginEnv))
	pluginkit.RegisterBuilder("bars", &barsBuilder{n: n})
	pluginkit.Serve()
}

// syncBuffer collects what the bars draw.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressBarFlood: a plugin process that starts 5,000 transfers and
// finishes none gets at most MaxBars bars at once, and one line for the
// rest; the goroutines that redraw bars stay as few, and the build's UI
// closes them all (issue 11 item 2: before, 5,000 live bars kept packer
// from exiting).
func TestProgressBarFlood(t *testing.T) {
	const bars = 5000
	var stdout, stderr syncBuffer
	c := ui.New(ui.Options{Stdout: &stdout, Stderr: &stderr, Progress: true})
	defer c.Close()
	u := c.Build("flood")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), pluginEnv+"="+strconv.Itoa(bars), "GORACE=atexit_sleep_ms=0")
	p, err := host.Start(t.Context(), cmd, host.Options{UI: u, Capabilities: protocol.HostCapabilities{Progress: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "bars")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	if _, err := inst.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Every ui/progress was handled before the answer to builder/run
	// (SPEC §10): all 5,000 transfers are "live" now.
	live := runtime.NumGoroutine() - before
	t.Logf("%d unfinished transfers: %d more goroutines, %d bytes on stderr", bars, live, len(stderr.String()))
	if live > 2*ui.MaxBars {
		t.Errorf("%d more goroutines with %d unfinished transfers; want at most %d", live, bars, 2*ui.MaxBars)
	}
	u.Close()
	if got := strings.Count(stderr.String(), "the others are not shown as progress bars"); got != 1 {
		t.Errorf("the line about too many transfers was shown %d times; want once", got)
	}
	if strings.Contains(stderr.String(), "\x1b]0;") {
		t.Errorf("a transfer's label set the terminal title: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "started every transfer") {
		t.Errorf("stdout = %q; want the builder's last line", stdout.String())
	}
}
