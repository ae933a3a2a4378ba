// Package steps runs a builder's work as a sequence of named steps, with
// what packer build's -debug and -on-error flags ask of a builder: with
// -debug it pauses after each step and before each cleanup until the
// person presses Enter; when a step fails it cleans up (the default),
// leaves everything as it is (-on-error=abort and run-cleanup-provisioner),
// or asks what to do (-on-error=ask: clean up, abort, or retry the step).
// Packer's SDK builders get the same from its multistep runner; this is that
// behaviour for pluginkit builders, with plain functions for steps.
//
//	err := steps.Run(ctx, ui, b.config.PackerConfig,
//		steps.Step{Name: "create the machine", Run: b.create, Cleanup: b.destroy},
//		steps.Step{Name: "provision", Run: func(ctx context.Context) error {
//			return hook.Run(ctx, protocol.HookProvision, comm, data)
//		}},
//	)
package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// Step is one step of a run.
type Step struct {
	// Name names the step in pauses and questions ("Step \"create the
	// machine\" failed").
	Name string
	// Run does the step's work. It must return when ctx is done.
	Run func(ctx context.Context) error
	// Cleanup, if not nil, undoes what Run did. It runs, in reverse
	// order, for every step whose Run was called, whether it failed or
	// not, unless the run is aborted. Its context is not cancelled when
	// the run's is, so that cleanup can finish after Ctrl-C.
	Cleanup func(ctx context.Context) error
}

// The -on-error values of [pluginkit.PackerConfig.OnError].
const (
	OnErrorCleanup               = "cleanup"
	OnErrorAbort                 = "abort"
	OnErrorAsk                   = "ask"
	OnErrorRunCleanupProvisioner = "run-cleanup-provisioner"
)

// Run runs steps in order with cfg's -debug and -on-error settings (the
// packer_* keys of the component's configuration) and returns the first
// step's error, or ctx's error when ctx is done between steps, joined with
// the errors of the cleanups that ran (each also shown with ui.Error).
//
// After a failure, with OnError "cleanup" or empty the cleanups run; with
// "abort" or "run-cleanup-provisioner" none runs and ui says so; with "ask"
// ui asks "[c] Clean up and exit, [a] abort without cleanup, or [r] retry
// step", and "r" runs the failed step again. A question that cannot be
// asked (the host has no terminal) or is cancelled counts as "clean up".
// A cancelled run (ctx done) is always cleaned up, whatever OnError says:
// -on-error is about failures, and Ctrl-C asks packer to stop and tidy up.
// With cfg.Debug, Run pauses after each step and before each cleanup.
func Run(ctx context.Context, ui pluginkit.UI, cfg pluginkit.PackerConfig, steps ...Step) error {
	var ran []Step
	var failure error
	aborted := false
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			failure = err
			break
		}
		ran = append(ran, s)
		err := runStep(ctx, ui, cfg.OnError, s, &aborted)
		if err != nil {
			failure = err
			break
		}
		if cfg.Debug {
			pause(ctx, ui, "after run of", s.Name)
		}
	}
	if failure != nil && ctx.Err() == nil && (aborted || cfg.OnError == OnErrorAbort || cfg.OnError == OnErrorRunCleanupProvisioner) {
		ui.Error(fmt.Sprintf("Build aborted: leaving what %s made for inspection (-on-error=%s); no cleanup ran.", describe(ran), abortFlag(aborted, cfg.OnError)))
		return failure
	}
	// Cleanups run after a success too, as with Packer's runner: a step's
	// cleanup undoes what must not outlive the build (a temporary key, a
	// container whose image was committed).
	var errs []error
	if failure != nil {
		errs = append(errs, failure)
	}
	cleanCtx := context.WithoutCancel(ctx)
	for i := len(ran) - 1; i >= 0; i-- {
		s := ran[i]
		if s.Cleanup == nil {
			continue
		}
		if cfg.Debug {
			pause(ctx, ui, "before cleanup of", s.Name)
		}
		if err := s.Cleanup(cleanCtx); err != nil {
			err = fmt.Errorf("cleaning up after %s: %w", s.Name, err)
			ui.Error(err.Error())
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runStep runs s, asking what to do when it fails and onError is "ask".
func runStep(ctx context.Context, ui pluginkit.UI, onError string, s Step, aborted *bool) error {
	for {
		err := s.Run(ctx)
		if err == nil || onError != OnErrorAsk || ctx.Err() != nil {
			return err
		}
		ui.Say(fmt.Sprintf("Step %q failed", s.Name))
		ui.Error(err.Error())
		switch askWhat(ctx, ui) {
		case 'r':
			continue
		case 'a':
			*aborted = true
		}
		return err
	}
}

// askWhat asks until the answer is c, a or r (an empty answer is c).
func askWhat(ctx context.Context, ui pluginkit.UI) byte {
	for {
		line, err := ui.Ask(ctx, "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?")
		if err != nil {
			return 'c'
		}
		switch c := (strings.ToLower(strings.TrimSpace(line)) + "c")[0]; c {
		case 'c', 'a', 'r':
			return c
		}
		ui.Say(fmt.Sprintf("Incorrect input: %q", line))
	}
}

// pause waits for Enter in debug mode; a question that cannot be asked or
// is cancelled does not stop the run (cancellation is seen by the next step).
func pause(ctx context.Context, ui pluginkit.UI, where, name string) {
	ui.Ask(ctx, fmt.Sprintf("Pausing %s step '%s'. Press enter to continue.", where, name)) //nolint:errcheck // see above
}

func describe(ran []Step) string {
	if len(ran) == 0 {
		return "the build"
	}
	return "the steps up to " + fmt.Sprintf("%q", ran[len(ran)-1].Name)
}

func abortFlag(asked bool, onError string) string {
	if asked {
		return "ask, answered abort"
	}
	return onError
}
