//go:build linux

package host_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// TestHookRunsOneAtATime: a builder that sends 200 hook/run at once does
// not get the build's provisioners run in parallel (SPEC §6: one instance
// never runs twice at once): the host runs its hooks one at a time, and
// refuses those over its callback bound with -32012 (issue 11 item 8).
func TestHookRunsOneAtATime(t *testing.T) {
	const hooks = 200
	var active, most, ran atomic.Int64
	opts := fastOptions("helper-hook-flood")
	opts.Hook = host.HookFunc(func(ctx context.Context, name string, _ host.Communicator, _ map[string]any) error {
		n := active.Add(1)
		defer active.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		ran.Add(1)
		time.Sleep(time.Millisecond) // a provisioner takes time; widen any overlap
		return nil
	})
	cmd := helperCmd("hook-flood")
	cmd.Env = append(cmd.Env, hooksEnv+"="+strconv.Itoa(hooks))
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x")
	if err != nil {
		t.Fatal(err)
	}
	a, err := inst.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ok, busy, other int
	if _, err := fmt.Sscanf(a.String, "ok=%d busy=%d other=%d", &ok, &busy, &other); err != nil {
		t.Fatalf("artifact %q: %v", a.String, err)
	}
	t.Logf("%d hook/run at once: %d ran, %d refused with -32012, %d other answers; at most %d at a time", hooks, ok, busy, other, most.Load())
	if most.Load() != 1 {
		t.Errorf("up to %d hooks ran at once; want 1", most.Load())
	}
	if ok != int(ran.Load()) || other != 0 || ok+busy != hooks {
		t.Errorf("answers ok=%d busy=%d other=%d for %d hooks run; want every hook run answered ok and the rest refused", ok, busy, other, ran.Load())
	}
}

// TestHookRunOutsideBuilderRun: hook/run before the builder's builder/run,
// or after it was answered, belongs to no build: -32005, and no
// provisioner runs (issue 11 item 8).
func TestHookRunOutsideBuilderRun(t *testing.T) {
	ui := newRecordingUI()
	var ran atomic.Int64
	opts := fastOptions("helper-late-hook")
	opts.UI = ui
	opts.Hook = host.HookFunc(func(context.Context, string, host.Communicator, map[string]any) error {
		ran.Add(1)
		return nil
	})
	p, err := host.Start(t.Context(), helperCmd("late-hook"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := ui.next(t, p); s != fmt.Sprintf("hook/run before builder/run: %d", protocol.CodeUnknownHandle) {
		t.Errorf("plugin says %q; want -32005 for a hook/run before builder/run", s)
	}
	if _, err := inst.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The next request lets the plugin call back after its run was answered.
	if _, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x"); err != nil {
		t.Fatal(err)
	}
	if s, _ := ui.next(t, p); s != fmt.Sprintf("hook/run after builder/run: %d", protocol.CodeUnknownHandle) {
		t.Errorf("plugin says %q; want -32005 for a hook/run after builder/run was answered", s)
	}
	if ran.Load() != 0 {
		t.Errorf("the hook ran %d times outside builder/run", ran.Load())
	}
}

// blockingUI holds every question until it is cancelled, and samples the
// host when the plugin says it has sent them all.
type blockingUI struct {
	mu         sync.Mutex
	asks       int
	goroutines int
	said       string
}

func (u *blockingUI) Say(msg string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.said = msg
	u.goroutines = runtime.NumGoroutine()
}
func (u *blockingUI) Message(string)                     {}
func (u *blockingUI) Error(string)                       {}
func (u *blockingUI) Machine(string, ...string)          {}
func (u *blockingUI) Progress(protocol.UIProgressParams) {}
func (u *blockingUI) Ask(ctx context.Context, _ string) (string, error) {
	u.mu.Lock()
	u.asks++
	u.mu.Unlock()
	<-ctx.Done()
	return "", ctx.Err()
}

// TestCallbackFlood: 20,000 ui/ask at once (100,000 with HOST_TEST_BIG=1)
// from a plugin. The host handles DefaultMaxCallbacks of them and answers
// the rest at once with -32012; its goroutines and heap stay bounded
// whatever the number (issue 11 item 9: before, 100,000 took 804 MB).
func TestCallbackFlood(t *testing.T) {
	asks := 20_000
	if big() {
		asks = 100_000
	}
	u := &blockingUI{}
	opts := fastOptions("helper-ask-flood")
	opts.UI = u
	cmd := helperCmd("ask-flood")
	cmd.Env = append(cmd.Env, asksEnv+"="+strconv.Itoa(asks), "HOST_TEST_MAX_CALLBACKS="+strconv.Itoa(host.DefaultMaxCallbacks))
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x")
	if err != nil {
		t.Fatal(err)
	}
	// A generous bound that turns a host holding every question (the
	// plugin then waits for answers that never come) into a failure.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	goroutinesBefore := runtime.NumGoroutine()
	hw := watchHeap()
	a, err := inst.Run(ctx)
	growth, allocated := hw.finish()
	if err != nil {
		t.Fatal(err)
	}
	var busy, cancelled, other int
	if _, err := fmt.Sscanf(a.String, "busy=%d cancelled=%d other=%d", &busy, &cancelled, &other); err != nil {
		t.Fatalf("artifact %q: %v", a.String, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t.Logf("%d ui/ask at once: %d held, %d refused with -32012, then %d cancelled; %d goroutines more while held; heap in use +%.1f MB at its peak, %.0f MB allocated",
		asks, u.asks, busy, cancelled, u.goroutines-goroutinesBefore, float64(growth)/mb, float64(allocated)/mb)
	if u.said != fmt.Sprintf("holding %d", host.DefaultMaxCallbacks) || u.asks != host.DefaultMaxCallbacks {
		t.Errorf("the plugin said %q and the UI was asked %d times; want %d held", u.said, u.asks, host.DefaultMaxCallbacks)
	}
	if busy != asks-host.DefaultMaxCallbacks || cancelled != host.DefaultMaxCallbacks || other != 0 {
		t.Errorf("answers: %d -32012, %d cancelled, %d other; want %d, %d, 0", busy, cancelled, other, asks-host.DefaultMaxCallbacks, host.DefaultMaxCallbacks)
	}
	if extra := u.goroutines - goroutinesBefore; extra > host.DefaultMaxCallbacks+16 {
		t.Errorf("%d more goroutines while %d questions were held; want at most %d", extra, host.DefaultMaxCallbacks, host.DefaultMaxCallbacks+16)
	}
	if growth > 16*mb {
		t.Errorf("heap in use grew by %.1f MB; want it bounded (at most 16 MB) whatever the number of requests", float64(growth)/mb)
	}
}

// TestPrepareTimeout: a plugin that never answers component/prepare does
// not hold validate or build forever: after PrepareTimeout the call is
// cancelled and fails with ErrTimeout, naming the plugin and the method
// (issue 11 item 18).
func TestPrepareTimeout(t *testing.T) {
	opts := fastOptions("helper-hang-prepare")
	opts.PrepareTimeout = 200 * time.Millisecond
	cmd := helperCmd("hang-prepare")
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Prepare(t.Context(), protocol.TypeBuilder, "x")
	checkPluginError(t, opts.Name, err, wantErr{op: protocol.MethodPrepare, is: []error{host.ErrTimeout}})
	if err != nil && !strings.Contains(err.Error(), "no answer to component/prepare within 200ms; the plugin was killed") {
		t.Errorf("error %q does not say what timed out", err)
	}
	p.Close()
	assertGroupGone(t, cmd.Process.Pid)
}
