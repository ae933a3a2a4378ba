package steps_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/steps"
)

// ui records what is shown and answers questions from a queue; with no
// answer left, Ask fails as a host without a terminal does.
type ui struct {
	mu      sync.Mutex
	lines   []string
	answers []string
}

func (u *ui) add(l string) { u.mu.Lock(); u.lines = append(u.lines, l); u.mu.Unlock() }
func (u *ui) Say(m string) { u.add("say: " + m) }
func (u *ui) Message(m string) {
	u.add("message: " + m)
}
func (u *ui) Error(m string)                                                    { u.add("error: " + m) }
func (u *ui) Machine(string, ...string)                                         {}
func (u *ui) TrackProgress(_ string, _, _ int64, r io.ReadCloser) io.ReadCloser { return r }
func (u *ui) Ask(ctx context.Context, q string) (string, error) {
	u.add("ask: " + q)
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.answers) == 0 {
		return "", errors.New("no terminal")
	}
	a := u.answers[0]
	u.answers = u.answers[1:]
	return a, nil
}

var _ pluginkit.UI = (*ui)(nil)

const askLine = "ask: [c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?"

func TestRun(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		cfg      pluginkit.PackerConfig
		failures int // how many times step b fails before it succeeds
		answers  []string
		wantErr  error
		wantLog  []string // steps' runs and cleanups, in order
		wantUI   []string
	}{
		{
			name:    "success: every cleanup runs, in reverse",
			wantLog: []string{"run a", "run b", "run c", "clean c", "clean a"},
		},
		{
			name:     "failure cleans up by default",
			failures: 1,
			wantErr:  errBoom,
			wantLog:  []string{"run a", "run b", "clean a"},
		},
		{
			name:     "abort leaves everything",
			cfg:      pluginkit.PackerConfig{OnError: "abort"},
			failures: 1,
			wantErr:  errBoom,
			wantLog:  []string{"run a", "run b"},
			wantUI:   []string{`error: Build aborted: leaving what the steps up to "b" made for inspection (-on-error=abort); no cleanup ran.`},
		},
		{
			name:     "run-cleanup-provisioner leaves the builder's work too",
			cfg:      pluginkit.PackerConfig{OnError: "run-cleanup-provisioner"},
			failures: 1,
			wantErr:  errBoom,
			wantLog:  []string{"run a", "run b"},
			wantUI:   []string{`error: Build aborted: leaving what the steps up to "b" made for inspection (-on-error=run-cleanup-provisioner); no cleanup ran.`},
		},
		{
			name:     "ask: retry, then success",
			cfg:      pluginkit.PackerConfig{OnError: "ask"},
			failures: 2,
			answers:  []string{"r", "retry"},
			wantLog:  []string{"run a", "run b", "run b", "run b", "run c", "clean c", "clean a"},
			wantUI:   []string{`say: Step "b" failed`, "error: boom", askLine, `say: Step "b" failed`, "error: boom", askLine},
		},
		{
			name:     "ask: abort",
			cfg:      pluginkit.PackerConfig{OnError: "ask"},
			failures: 1,
			answers:  []string{"x", "A"},
			wantErr:  errBoom,
			wantLog:  []string{"run a", "run b"},
			wantUI: []string{`say: Step "b" failed`, "error: boom", askLine, `say: Incorrect input: "x"`, askLine,
				`error: Build aborted: leaving what the steps up to "b" made for inspection (-on-error=ask, answered abort); no cleanup ran.`},
		},
		{
			name:     "ask with nobody to answer cleans up",
			cfg:      pluginkit.PackerConfig{OnError: "ask"},
			failures: 1,
			wantErr:  errBoom,
			wantLog:  []string{"run a", "run b", "clean a"},
			wantUI:   []string{`say: Step "b" failed`, "error: boom", askLine},
		},
		{
			name:    "debug pauses after each step and before each cleanup",
			cfg:     pluginkit.PackerConfig{Debug: true},
			answers: []string{"", "", "", "", ""},
			wantLog: []string{"run a", "run b", "run c", "clean c", "clean a"},
			wantUI: []string{
				"ask: Pausing after run of step 'a'. Press enter to continue.",
				"ask: Pausing after run of step 'b'. Press enter to continue.",
				"ask: Pausing after run of step 'c'. Press enter to continue.",
				"ask: Pausing before cleanup of step 'c'. Press enter to continue.",
				"ask: Pausing before cleanup of step 'a'. Press enter to continue.",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			failures := tt.failures
			step := func(name string, fail bool, cleanup bool) steps.Step {
				s := steps.Step{Name: name, Run: func(context.Context) error {
					log = append(log, "run "+name)
					if fail && failures > 0 {
						failures--
						return errBoom
					}
					return nil
				}}
				if cleanup {
					s.Cleanup = func(context.Context) error { log = append(log, "clean "+name); return nil }
				}
				return s
			}
			u := &ui{answers: tt.answers}
			err := steps.Run(context.Background(), u, tt.cfg, step("a", false, true), step("b", true, false), step("c", false, true))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Run: %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantLog, log); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantUI, u.lines); diff != "" {
				t.Errorf("ui (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunCancelled: a run cancelled during a step stops there, and the
// cleanups still run, with a context that is not cancelled.
func TestRunCancelled(t *testing.T) {
	for _, onError := range []string{steps.OnErrorCleanup, steps.OnErrorAbort, steps.OnErrorRunCleanupProvisioner} {
		t.Run(onError, func(t *testing.T) { // -on-error is about failures: a cancelled run is cleaned up
			ctx, cancel := context.WithCancel(context.Background())
			var log []string
			err := steps.Run(ctx, &ui{}, pluginkit.PackerConfig{OnError: onError},
				steps.Step{Name: "a", Run: func(context.Context) error { log = append(log, "run a"); return nil },
					Cleanup: func(c context.Context) error {
						log = append(log, fmt.Sprintf("clean a (ctx err %v)", c.Err()))
						return nil
					}},
				steps.Step{Name: "b", Run: func(c context.Context) error { cancel(); <-c.Done(); log = append(log, "run b"); return c.Err() }},
				steps.Step{Name: "c", Run: func(context.Context) error { log = append(log, "run c"); return nil }},
			)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v, want context.Canceled", err)
			}
			if diff := cmp.Diff([]string{"run a", "run b", "clean a (ctx err <nil>)"}, log); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunCleanupErrors: a cleanup's error is shown and returned with the
// step's.
func TestRunCleanupErrors(t *testing.T) {
	u := &ui{}
	err := steps.Run(context.Background(), u, pluginkit.PackerConfig{},
		steps.Step{Name: "a", Run: func(context.Context) error { return nil }, Cleanup: func(context.Context) error { return errors.New("disk busy") }},
		steps.Step{Name: "b", Run: func(context.Context) error { return errors.New("boom") }},
	)
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "cleaning up after a: disk busy") {
		t.Errorf("Run: %v", err)
	}
	if diff := cmp.Diff([]string{"error: cleaning up after a: disk busy"}, u.lines); diff != "" {
		t.Errorf("ui (-want +got):\n%s", diff)
	}
}
