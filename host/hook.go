package host

import (
	"context"
	"sync"

	"github.com/packer-stdio/packer/protocol"
)

// hookState enforces SPEC §7.3's rules for hook/run on one connection:
// hooks run one at a time, since they run the same provisioner instances,
// which must never run twice at once (SPEC §6); and only while a
// builder/run is in flight, since the build they belong to is over once it
// is answered.
type hookState struct {
	mu   sync.Mutex
	runs int      // builder/run calls in flight
	gen  *runSpan // while runs > 0
	// one is held by the hook that runs; others wait for it.
	one chan struct{}
}

// runSpan is a stretch of time during which at least one builder/run is in
// flight. Hooks started in it are cancelled, and waited for, when it ends.
type runSpan struct {
	ctx    context.Context
	cancel context.CancelFunc
	hooks  sync.WaitGroup
}

// beginRun records a builder/run call going out; the returned func records
// its answer. When the last run in flight is answered, hooks still running
// are cancelled and waited for, so none outlives the build.
func (h *hookState) beginRun() (end func()) {
	h.mu.Lock()
	if h.runs == 0 {
		ctx, cancel := context.WithCancel(context.Background())
		h.gen = &runSpan{ctx: ctx, cancel: cancel}
	}
	h.runs++
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		h.runs--
		var span *runSpan
		if h.runs == 0 {
			span, h.gen = h.gen, nil
		}
		h.mu.Unlock()
		if span != nil {
			span.cancel()
			span.hooks.Wait()
		}
	}
}

// enter admits one hook/run: it fails with -32005 when no builder/run is in
// flight, waits for the hook running before it, and returns a context that
// is also cancelled when the last builder/run is answered. leave must be
// called when the hook is done.
func (h *hookState) enter(ctx context.Context) (hctx context.Context, leave func(), err error) {
	h.mu.Lock()
	span := h.gen
	if span == nil {
		h.mu.Unlock()
		return nil, nil, errNoRun
	}
	span.hooks.Add(1)
	if h.one == nil {
		h.one = make(chan struct{}, 1)
	}
	one := h.one
	h.mu.Unlock()

	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(span.ctx, cancel)
	done := func() {
		stop()
		cancel()
		span.hooks.Done()
	}
	select {
	case one <- struct{}{}:
	case <-hctx.Done():
		done()
		if ctx.Err() == nil {
			return nil, nil, errNoRun // the run was answered while this one waited
		}
		return nil, nil, ctx.Err()
	}
	return hctx, func() { <-one; done() }, nil
}

// errNoRun answers a hook/run that belongs to no build.
var errNoRun = protocol.ErrUnknownHandle.WithMessage("%s: no builder/run of this plugin is in flight (before it, or after it was answered); hooks run only while it is (SPEC §7.3)", protocol.MethodHookRun)
