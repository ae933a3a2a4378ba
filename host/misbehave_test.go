//go:build linux

package host_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// liveGroupMembers returns the pids of the processes in group pgid that are
// not zombies (a zombie holds no resources; its reaping is up to its parent).
func liveGroupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		rest := b[bytes.LastIndexByte(b, ')')+2:]
		f := strings.Fields(string(rest))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) || f[0] == "Z" || f[0] == "X" {
			continue
		}
		live = append(live, pid)
	}
	return live
}

// assertGroupGone checks that no live process is left in the plugin's
// process group. A process killed a moment ago may still be on its way out,
// so it polls, giving up after a generous bound (a process the host killed
// dies within milliseconds; one it forgot lives on).
func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := liveGroupMembers(t, pgid)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process group %d still has live processes %v", pgid, live)
			for _, pid := range live {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type wantErr struct {
	op   string
	is   []error
	exit string // "" means not checked
	tail string // a substring of some stderr tail line
}

func checkPluginError(t *testing.T, name string, err error, want wantErr) {
	t.Helper()
	var pe *host.PluginError
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T), want a *host.PluginError", err, err)
	}
	if pe.Plugin != name || !strings.Contains(pe.Error(), name) {
		t.Errorf("error does not name plugin %q: %v", name, pe)
	}
	if want.op != "" && pe.Op != want.op {
		t.Errorf("Op = %q, want %q", pe.Op, want.op)
	}
	for _, target := range want.is {
		if !errors.Is(err, target) {
			t.Errorf("error %v is not %v", err, target)
		}
	}
	if want.exit == "any" {
		if pe.Exit == "" {
			t.Errorf("Exit is empty, want how the process ended (error: %v)", err)
		}
	} else if want.exit != "" && pe.Exit != want.exit {
		t.Errorf("Exit = %q, want %q (error: %v)", pe.Exit, want.exit, err)
	}
	if want.tail != "" && !slicesContainsSubstring(pe.StderrTail, want.tail) {
		t.Errorf("StderrTail %q has no line containing %q", pe.StderrTail, want.tail)
	}
}

func slicesContainsSubstring(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func fastOptions(name string) host.Options {
	return host.Options{
		Name:             name,
		HandshakeTimeout: 5 * time.Second,
		CancelGrace:      200 * time.Millisecond,
		ShutdownGrace:    5 * time.Second, // only TestCloseEscalates waits it out
		KillGrace:        300 * time.Millisecond,
	}
}

// TestStartFailures covers plugins that never complete the handshake.
func TestStartFailures(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		opts   func(*host.Options)
		want   wantErr
		reason string
	}{
		{name: "crash before handshake", mode: "crash-before-handshake",
			want: wantErr{op: "initialize", is: []error{host.ErrExited}, exit: "exit status 3", tail: "crashing on purpose"}},
		{name: "never answers the handshake", mode: "no-handshake",
			opts: func(o *host.Options) { o.HandshakeTimeout = 300 * time.Millisecond },
			want: wantErr{op: "initialize", is: []error{host.ErrTimeout}, exit: "signal: killed", tail: "starting"}},
		{name: "plugin speaks another version", mode: "version-mismatch",
			want: wantErr{op: "initialize", is: []error{protocol.ErrUnsupportedVersion}}},
		{name: "host offers a version the plugin lacks", mode: "ok",
			opts: func(o *host.Options) { o.ProtocolVersions = []int{2} },
			want: wantErr{op: "initialize", is: []error{protocol.ErrUnsupportedVersion}}},
		{name: "invalid answer", mode: "bad-handshake",
			want:   wantErr{op: "initialize", is: []error{host.ErrBadHandshake}, exit: "signal: killed"},
			reason: "a version that was not offered and a duplicate component are refused, and the plugin is killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions("helper-" + tt.mode)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			cmd := helperCmd(tt.mode)
			p, err := host.Start(t.Context(), cmd, opts)
			if err == nil {
				p.Close()
				t.Fatalf("Start succeeded, want an error (%s)", tt.reason)
			}
			checkPluginError(t, opts.Name, err, tt.want)
			assertGroupGone(t, cmd.Process.Pid)
		})
	}
}

func TestVersionMismatchSaysWhoSpeaksWhat(t *testing.T) {
	tests := []struct {
		name         string
		mode         string
		offer        []int
		wantPlugin   []int
		wantHost     []int
		wantFragment string
	}{
		{name: "plugin too new", mode: "version-mismatch", wantPlugin: []int{3}, wantHost: []int{2, 1},
			wantFragment: "speaks protocol versions [3], this host speaks [2 1]"},
		{name: "host too new", mode: "ok", offer: []int{2}, wantPlugin: []int{1}, wantHost: []int{2},
			wantFragment: "speaks protocol versions [1], this host speaks [2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions("helper-" + tt.mode)
			opts.ProtocolVersions = tt.offer
			_, err := host.Start(t.Context(), helperCmd(tt.mode), opts)
			var ve *host.VersionError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *host.VersionError", err)
			}
			if diff := cmp.Diff([2][]int{tt.wantPlugin, tt.wantHost}, [2][]int{ve.PluginVersions, ve.HostVersions}); diff != "" {
				t.Errorf("versions [plugin, host] (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), tt.wantFragment) {
				t.Errorf("error %q does not say %q", err, tt.wantFragment)
			}
		})
	}
}

// TestCallFailures covers plugins that break during builder/run. Each call
// must return promptly with an error that says what happened, and Close must
// leave no process behind.
func TestCallFailures(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		cancel  bool // run with a cancelled context
		want    wantErr
		noIs    error  // the error must not match this
		closeOK bool   // Close returns nil afterwards
		quote   string // the bad line the error must quote
		reason  string
	}{
		{name: "panic during run", mode: "panic-run",
			want: wantErr{op: "builder/run", is: []error{host.ErrExited}, exit: "exit status 2", tail: "panic: helper panics during run"}},
		{name: "SIGKILL itself during run", mode: "sigkill-run",
			want: wantErr{op: "builder/run", is: []error{host.ErrExited}, exit: "signal: killed"}},
		{name: "exit during run", mode: "exit-run",
			want: wantErr{op: "builder/run", is: []error{host.ErrExited}, exit: "exit status 3", tail: "exiting mid-call"}},
		{name: "garbage on stdout", mode: "garbage-run",
			want: wantErr{op: "builder/run", is: []error{host.ErrProtocolViolation, protocol.ErrParse}, exit: "any"}, quote: "this is not json",
			reason: "the plugin is killed, or it sees EOF on stdin and exits first"},
		{name: "grandchild keeps stdout open", mode: "grandchild",
			want:   wantErr{op: "builder/run", is: []error{host.ErrExited}, exit: "exit status 4", tail: "keeps stdout open"},
			reason: "the exit of the plugin, not EOF on stdout, ends the call; the grandchild is killed with the group"},
		{name: "answer with unknown id", mode: "unknown-id",
			want: wantErr{op: "builder/run", is: []error{host.ErrProtocolViolation, protocol.ErrInvalidRequest}, exit: "any"}},
		{name: "result and error together", mode: "result-and-error",
			want: wantErr{op: "builder/run", is: []error{host.ErrProtocolViolation, protocol.ErrInvalidRequest}, exit: "any"}},
		{name: "ignores cancel", mode: "ignore-cancel", cancel: true,
			want: wantErr{op: "builder/run", is: []error{context.Canceled}}, noIs: protocol.ErrCancelled, closeOK: true,
			reason: "the call gives up after CancelGrace; the plugin still shuts down cleanly"},
		{name: "answers after the host gave up", mode: "late-answer", cancel: true,
			want: wantErr{op: "builder/run", is: []error{context.Canceled}}, noIs: protocol.ErrCancelled, closeOK: true,
			reason: "the call gives up after CancelGrace; its answer, read while closing, is late, not a violation (SPEC §8)"},
		{name: "honours cancel", mode: "cancellable", cancel: true,
			want: wantErr{op: "builder/run", is: []error{protocol.ErrCancelled}}, closeOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions("helper-" + tt.mode)
			cmd := helperCmd(tt.mode)
			p, err := host.Start(t.Context(), cmd, opts)
			if err != nil {
				t.Fatal(err)
			}
			inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x", map[string]any{})
			if err != nil {
				p.Close()
				t.Fatal(err)
			}
			ctx := t.Context()
			if tt.cancel {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			_, err = inst.Run(ctx)
			if err == nil {
				t.Errorf("Run succeeded, want an error (%s)", tt.reason)
			} else {
				checkPluginError(t, opts.Name, err, tt.want)
				var ve *protocol.ViolationError
				if tt.quote != "" && (!errors.As(err, &ve) || string(ve.Line) != tt.quote) {
					t.Errorf("error %v does not quote the line %q", err, tt.quote)
				}
				if tt.noIs != nil && errors.Is(err, tt.noIs) {
					t.Errorf("error %v should not be %v", err, tt.noIs)
				}
			}
			cerr := p.Close()
			if tt.closeOK && cerr != nil {
				t.Errorf("Close: %v", cerr)
			}
			if !tt.closeOK && cerr == nil {
				t.Errorf("Close returned nil after the plugin broke")
			}
			select {
			case <-p.Exited():
			default:
				t.Errorf("Exited not closed after Close")
			}
			assertGroupGone(t, cmd.Process.Pid)
		})
	}
}

// TestCloseWhileCallHangs: a call in flight when Close runs returns
// ErrClosed; the plugin answers shutdown and exits 0.
func TestCloseWhileCallHangs(t *testing.T) {
	opts := fastOptions("helper-hang")
	p, inst, pid := startPrepared(t, "hang", opts)
	done := make(chan error, 1)
	go func() {
		_, err := inst.Run(context.Background())
		done <- err
	}()
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	checkPluginError(t, opts.Name, <-done, wantErr{op: "builder/run", is: []error{host.ErrClosed}})
	if _, err := inst.Run(t.Context()); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v, want the same nil", err)
	}
	assertGroupGone(t, pid)
}

// TestCloseEscalates: a plugin that ignores shutdown, stdin EOF and SIGTERM
// is killed after KillGrace.
func TestCloseEscalates(t *testing.T) {
	opts := fastOptions("helper-ignore-term")
	opts.ShutdownGrace = 300 * time.Millisecond
	cmd := helperCmd("ignore-term")
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Close()
	checkPluginError(t, opts.Name, err, wantErr{op: "close", is: []error{host.ErrTimeout}, exit: "signal: killed"})
	assertGroupGone(t, cmd.Process.Pid)
}

// TestKill: Kill ends a running call at once.
func TestKill(t *testing.T) {
	opts := fastOptions("helper-hang")
	p, inst, pid := startPrepared(t, "hang", opts)
	done := make(chan error, 1)
	go func() {
		_, err := inst.Run(context.Background())
		done <- err
	}()
	p.Kill()
	<-p.Exited()
	checkPluginError(t, opts.Name, <-done, wantErr{op: "builder/run", is: []error{host.ErrKilled}, exit: "signal: killed"})
	checkPluginError(t, opts.Name, p.Close(), wantErr{op: "close", is: []error{host.ErrKilled}})
	assertGroupGone(t, pid)
}

// startPrepared starts the helper plugin in mode, prepares its builder and
// returns the plugin, the instance and the process id (for
// assertGroupGone). The plugin is closed if prepare fails.
func startPrepared(t *testing.T, mode string, opts host.Options) (*host.Plugin, *host.Instance, int) {
	t.Helper()
	cmd := helperCmd(mode)
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x")
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	return p, inst, cmd.Process.Pid
}
