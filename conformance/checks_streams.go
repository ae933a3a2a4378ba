package conformance

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// streamChecks enforce the byte streams of protocol version 2 (SPEC
// §7.5.2) on a plugin that chose it when offered [2, 1]; one that chose
// version 1 has no such streams, and they skip. The runner is the other end
// of every stream, through its engine (stream2.go), which records each rule
// the plugin breaks with the line that broke it; each check provokes the
// situation its rule is about and judges that rule only. Streams move in
// two places:
//
//   - the provisioners call the runner's local communicator (the plugin
//     offers sources it sends and sinks it receives);
//   - a builder's hook/run offers a communicator, which the runner calls
//     (the runner offers the streams: the plugin sends to the runner's
//     sinks and reads the runner's sources).
//
// A check whose rule is about streams the plugin never had (no provisioner
// offered a source, say) passes with a note in its transcript, as the data
// source checks do for a plugin without data sources; one that needs the
// builder's communicator to provoke its case skips without it.
var streamChecks = []Check{
	{
		ID: "streams/credit-respected", Section: "§7.5.2", Level: Must,
		Title: "never sends a chunk larger than the credit left, with small windows granted chunk by chunk (8 bytes for its own sources, the implicit 262144 for the runner's sinks)",
		run:   checkCreditRespected,
	},
	{
		ID: "streams/end-once", Section: "§7.5.2", Level: Must,
		Title: "ends every stream it sends with exactly one stream/end, and sends nothing for it after that",
		run:   checkEndOnce,
	},
	{
		ID: "streams/finished-before-answer", Section: "§7.5.2", Level: Must,
		Title: "answers a communicator request only after stream/end of every sink it writes and the end (or its cancel) of every source it reads",
		run:   checkFinishedBeforeAnswer,
	},
	{
		ID: "streams/chunk-size", Section: "§7.5.2", Level: Must,
		Title: "every stream/data it sends carries 1 to 262144 bytes",
		run:   checkChunkSize,
	},
	{
		ID: "streams/canonical-form", Section: "§7.5.2", Level: Should,
		Title: "writes stream/data in the canonical form: members in order, no whitespace, payload last and unescaped",
		run:   checkCanonicalForm,
	},
	{
		ID: "streams/source-waits-for-credit", Section: "§7.5.2", Level: Must,
		Title: "sends nothing for a source it offered before the runner's first stream/credit (held back 1s for its first source)",
		run:   checkSourceWaitsForCredit,
	},
	{
		ID: "streams/sink-credit-after-data", Section: "§7.5.2", Level: Must,
		Title: "sends no stream/credit for a sink it offered before that sink's first stream/data",
		run:   checkSinkCreditAfterData,
	},
	{
		ID: "streams/over-credit-cancelled", Section: "§7.5.2", Level: Must,
		Title: "a first chunk of 262145 bytes to a sink it offered (more than the implicit credit) gets stream/cancel with -32602",
		run:   checkOverCreditCancelled,
	},
	{
		ID: "streams/non-canonical-accepted", Section: "§7.5.2", Level: Must,
		Title: "accepts stream/data in other valid spellings (member order, \\/ in the payload, whitespace): an upload so sent downloads back intact",
		run:   checkNonCanonicalAccepted,
	},
	{
		ID: "streams/credit-returned", Section: "§7.5.2", Level: Must,
		Title: "returns credit as it consumes: an upload of 3 MiB, more than a window, completes",
		run:   checkCreditReturned,
	},
	{
		ID: "streams/stops-after-cancel", Section: "§7.5.2", Level: Must,
		Title: "stops sending a sink the runner cancelled and answers its request: communicator/start of a 4 MB output whose stdout is cancelled after one chunk",
		run:   checkStopsAfterCancel,
	},
}

// streamRun says what a stream check does with the plugin.
type streamRun struct {
	plan streamPlan
	// provision runs every provisioner that prepares through the runner's
	// local communicator.
	provision bool
	// use, when not nil, is what the runner does with the communicator of
	// the first builder that prepares and offers one in hook/run.
	use func(ctx context.Context, s *session, comm string) error
}

// streamOutcome is what a streamRun saw.
type streamOutcome struct {
	s *session
	// usedComm says a builder offered a communicator and use ran on it;
	// useErr is what use returned.
	usedComm bool
	useErr   error
}

// readyV2 launches the plugin and completes the handshake; it skips when
// the plugin chose another version than 2.
func (c *checkCtx) readyV2() (*session, *protocol.InitializeResult, error) {
	s, res, err := c.ready()
	if err != nil {
		return nil, nil, err
	}
	if res.ProtocolVersion != 2 {
		return nil, nil, skipf("the plugin chose protocol version %d when offered %s: the rules of version 2 streams (§7.5.2) do not apply", res.ProtocolVersion, strings.ReplaceAll(fmt.Sprint(offeredVersions), " ", ", "))
	}
	return s, res, nil
}

// runStreams does what r says on a fresh session. Failures of the runs
// themselves are noted, not returned: run/provisioner and
// hook/communicator judge those.
func (c *checkCtx) runStreams(r streamRun) (*streamOutcome, error) {
	s, res, err := c.readyV2()
	if err != nil {
		return nil, err
	}
	s.host.setPlan(r.plan)
	out := &streamOutcome{s: s}
	if r.provision {
		for _, comp := range res.Components {
			if comp.Type != protocol.TypeProvisioner {
				continue
			}
			instance, err := c.prepare(s, comp)
			if err != nil {
				c.tr.notef("provisioner %s not run: %v", comp.Name, err)
				continue
			}
			if err := c.runComponent(s, comp, instance); err != nil {
				c.tr.notef("%v (run/provisioner judges the run)", err)
			}
		}
	}
	if r.use == nil {
		return out, nil
	}
	for _, comp := range res.Components {
		if comp.Type != protocol.TypeBuilder {
			continue
		}
		instance, err := c.prepare(s, comp)
		if err != nil {
			c.tr.notef("builder %s not run: %v", comp.Name, err)
			continue
		}
		s.host.mu.Lock()
		s.host.hook = hookComm
		s.host.commUse = func(ctx context.Context, s *session, comm string) error {
			out.usedComm = true
			out.useErr = r.use(ctx, s, comm)
			return out.useErr
		}
		s.host.mu.Unlock()
		m, err := s.call(c.ctx, protocol.MethodBuilderRun, protocol.InstanceParams{Instance: instance})
		switch {
		case err != nil:
			return nil, failf("builder %s: builder/run: %v", comp.Name, err)
		case out.usedComm:
			c.tr.notef("builder/run answered %s", m.describe())
			return out, nil
		}
		c.tr.notef("builder %s offered no communicator in hook/run", comp.Name)
	}
	return out, nil
}

// judge fails with the first violation of one of rules the engine
// recorded, and says how many there were.
func (o *streamOutcome) judge(rules ...rule2) error {
	var found []violation2
	for _, v := range o.s.host.flow.violations2() {
		if slices.Contains(rules, v.Rule) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return nil
	case 1:
		return failf("%s", found[0])
	}
	return failf("%s (and %d more)", found[0], len(found)-1)
}

// needComm skips when no builder offered a communicator.
func (o *streamOutcome) needComm() error {
	if !o.usedComm {
		return skipf("no builder that prepares (without -config) offered a communicator in hook/run")
	}
	return nil
}

// noteVacuous notes, when the plugin had none of the streams a rule is
// about, that the check passed without them.
func (c *checkCtx) noteVacuous(what string, n int) {
	if n == 0 {
		c.tr.notef("the plugin %s: nothing to judge", what)
	}
}

// streamContent returns n bytes whose base64 holds '/' and '+', so that a
// payload spelt with "\/" differs from the canonical one.
func streamContent(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		switch i % 7 {
		case 0, 1, 2:
			b[i] = 0xff
		case 3:
			b[i] = 0xfb
		default:
			b[i] = byte(i)
		}
	}
	return b
}

// roundTrip uploads n bytes to the builder's communicator and downloads
// them back, comparing.
func roundTrip(n int) func(ctx context.Context, s *session, comm string) error {
	return func(ctx context.Context, s *session, comm string) error {
		content := streamContent(n)
		o := s.host.newOffers(ctx, s)
		m, err := o.call(protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: "conformance-streams.bin", Source: o.source(bytes.NewReader(content)), Size: int64(n)})
		if err != nil {
			return fmt.Errorf("communicator/upload of %d bytes: %w", n, err)
		}
		if m.wireErr() != nil {
			return fmt.Errorf("communicator/upload of %d bytes answered %s", n, m.describe())
		}
		var back bytes.Buffer
		o = s.host.newOffers(ctx, s)
		m, err = o.call(protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: comm, Path: "conformance-streams.bin", Sink: o.sink(&back)})
		if err != nil {
			return fmt.Errorf("communicator/download of %d bytes: %w", n, err)
		}
		if m.wireErr() != nil {
			return fmt.Errorf("communicator/download of %d bytes answered %s", n, m.describe())
		}
		if !bytes.Equal(back.Bytes(), content) {
			return fmt.Errorf("an upload of %d bytes downloaded back as %d bytes that differ", n, back.Len())
		}
		return nil
	}
}

// judgedRun returns a check that runs run and fails on the first violation
// of rule the runner saw.
func judgedRun(run streamRun, rule rule2) func(*checkCtx) error {
	return func(c *checkCtx) error {
		o, err := c.runStreams(run)
		if err != nil {
			return err
		}
		return o.judge(rule)
	}
}

// checkCreditRespected holds the first credit back as source-waits-for-credit
// does: data sent before it is that check's failure, and its credit is then
// not judged here.
var checkCreditRespected = judgedRun(streamRun{
	plan:      streamPlan{sourceWindow: 8, sinkWindow: protocol.InitialSinkWindow, holdCredit: time.Second},
	provision: true,
	use:       roundTrip(512 << 10),
}, v2OverCredit)

var checkEndOnce = judgedRun(streamRun{provision: true, use: roundTrip(300 << 10)}, v2AfterEnd)

func checkFinishedBeforeAnswer(c *checkCtx) error {
	o, err := c.runStreams(streamRun{use: roundTrip(300 << 10)})
	if err != nil {
		return err
	}
	if err := o.judge(v2Unfinished); err != nil {
		return err
	}
	return o.needComm()
}

var checkChunkSize = judgedRun(streamRun{provision: true, use: roundTrip(600 << 10)}, v2ChunkSize)

var checkCanonicalForm = judgedRun(streamRun{provision: true, use: roundTrip(300 << 10)}, v2NotCanonical)

func checkSourceWaitsForCredit(c *checkCtx) error {
	o, err := c.runStreams(streamRun{plan: streamPlan{holdCredit: time.Second}, provision: true})
	if err != nil {
		return err
	}
	if err := o.judge(v2SpeaksFirst); err != nil {
		return err
	}
	o.s.host.mu.Lock()
	n := o.s.host.pluginSources
	o.s.host.mu.Unlock()
	c.noteVacuous("offered no source stream in a communicator request", n)
	return nil
}

func checkSinkCreditAfterData(c *checkCtx) error {
	o, err := c.runStreams(streamRun{provision: true})
	if err != nil {
		return err
	}
	if err := o.judge(v2SinkCreditEarly); err != nil {
		return err
	}
	o.s.host.mu.Lock()
	n := o.s.host.pluginSinks
	o.s.host.mu.Unlock()
	c.noteVacuous("offered no sink stream in a communicator request", n)
	return nil
}

// patience returns how long a stream check waits for something SPEC
// requires without a time limit (a stream/cancel, more credit, the answer
// to a request whose stream it cancelled) before it calls it missing: until
// shortly before the check's own deadline, so that a slow but correct plugin
// is given the whole -timeout, and a missing message is reported as such
// rather than as a timeout. It is never less than minPatience.
func (c *checkCtx) patience() time.Duration {
	d, ok := c.ctx.Deadline()
	if !ok {
		return defaultPatience
	}
	return max(time.Until(d)-patienceMargin, minPatience)
}

const (
	// patienceMargin is what patience leaves of the check's time for the
	// report.
	patienceMargin = time.Second
	// minPatience is the least patience, whatever the deadline.
	minPatience = time.Second
	// defaultPatience is the patience of a check without a deadline.
	defaultPatience = 8 * time.Second
)

func checkOverCreditCancelled(c *checkCtx) error {
	o, err := c.runStreams(streamRun{plan: streamPlan{oversize: true}, provision: true})
	if err != nil {
		return err
	}
	n := 0
	for {
		var out *outbound2
		select {
		case out = <-o.s.host.oversized:
		default:
		}
		if out == nil {
			break
		}
		n++
		wait := c.patience()
		deadline := time.Now().Add(wait)
		for {
			_, _, cancelled, werr := out.stats()
			if cancelled {
				if werr == nil || werr.Code != protocol.CodeInvalidParams {
					return failf("%s: chunk of %d bytes with a credit of %d: stream/cancel came with %s, want error -32602", out.ref, protocol.MaxChunkSize+1, protocol.InitialSinkWindow, describeCancel(werr))
				}
				break
			}
			if time.Now().After(deadline) {
				return failf("%s: chunk of %d bytes with a credit of %d: no stream/cancel within %v (the plugin took the chunk)", out.ref, protocol.MaxChunkSize+1, protocol.InitialSinkWindow, wait.Round(time.Millisecond))
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
	}
	c.noteVacuous("offered no sink stream in a communicator request", n)
	return nil
}

func describeCancel(werr *wireError) string {
	if werr == nil {
		return "no error"
	}
	return fmt.Sprintf("error %d %q", werr.Code, werr.Message)
}

// nonCanonical returns a Spell that writes stream/data in valid spellings
// other than the canonical one, a different one for each chunk (see
// spellNonCanonical).
func nonCanonical() func(r ref2, data []byte) []byte {
	var n atomic.Int64
	return func(r ref2, data []byte) []byte {
		member := "source"
		if r.sink {
			member = "sink"
		}
		return spellNonCanonical(int(n.Add(1)-1), member, r.handle, data)
	}
}

func checkNonCanonicalAccepted(c *checkCtx) error {
	o, err := c.runStreams(streamRun{plan: streamPlan{spell: nonCanonical(), chunk: 16 << 10}, use: roundTrip(64 << 10)})
	if err != nil {
		return err
	}
	if err := o.needComm(); err != nil {
		return err
	}
	if o.useErr != nil {
		return failf("with the upload's chunks spelt in other valid ways: %v", o.useErr)
	}
	return nil
}

func checkCreditReturned(c *checkCtx) error {
	const size = 3 << 20
	o, err := c.runStreams(streamRun{use: func(ctx context.Context, s *session, comm string) error {
		content := streamContent(size)
		of := s.host.newOffers(ctx, s)
		h := of.source(bytes.NewReader(content))
		src := of.outs[0]
		type answer struct {
			m   *message
			err error
		}
		done := make(chan answer, 1)
		go func() {
			m, err := of.call(protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: "conformance-credit.bin", Source: h, Size: size})
			done <- answer{m, err}
		}()
		lastGranted, since := int64(-1), time.Now()
		stall := time.Now().Add(c.patience())
		for {
			select {
			case a := <-done:
				if a.err != nil {
					return fmt.Errorf("communicator/upload of %d bytes: %w", size, a.err)
				}
				if a.m.wireErr() != nil {
					return fmt.Errorf("communicator/upload of %d bytes answered %s", size, a.m.describe())
				}
				return nil
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			sent, granted, _, _ := src.stats()
			if granted != lastGranted || sent < granted {
				lastGranted, since = granted, time.Now()
				continue
			}
			// Without new credit the upload cannot progress; a slow
			// consumer is given until shortly before the check's
			// deadline (patience), not a fixed time.
			if time.Now().After(stall) && time.Since(since) >= minPatience {
				src.release() // unblocks the upload's stream; the answer no longer matters
				return fmt.Errorf("stalled: the plugin granted %d bytes of credit for the runner's source %s, the runner sent them all, and no more credit came in the %v that followed (the upload is %d bytes; §7.5.2 rule 2: the receiver returns credit as it consumes bytes)", granted, h, time.Since(since).Round(time.Millisecond), size)
			}
		}
	}})
	if err != nil {
		return err
	}
	if err := o.needComm(); err != nil {
		return err
	}
	if o.useErr != nil {
		return failf("%v", o.useErr)
	}
	return nil
}

func checkStopsAfterCancel(c *checkCtx) error {
	const size = 4000000
	o, err := c.runStreams(streamRun{use: func(ctx context.Context, s *session, comm string) error {
		of := s.host.newOffers(ctx, s)
		h, in := of.sinkCancelling()
		done := make(chan error, 1)
		go func() {
			_, err := of.call(protocol.MethodCommStart, protocol.CommStartParams{Communicator: comm, Command: fmt.Sprintf("head -c %d /dev/zero", size), Stdout: h})
			done <- err
		}()
		wait := c.patience()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case err := <-done:
			received, granted, after := in.stats()
			s.tr.notef("the plugin sent %d bytes of stdout, %d of them after the runner's stream/cancel", received+after, after)
			if err != nil {
				return err
			}
			// Chunks written before the cancel arrived may still come
			// (they crossed it), but never more than the credit the
			// runner had granted when it cancelled: the runner grants
			// none after. More means the plugin went on sending.
			if received+after > granted {
				return fmt.Errorf("the plugin sent %d bytes of stdout %s after the runner's stream/cancel, %d more than the credit it had been granted (%d): it did not stop (§7.5.2 rule 4: after stream/cancel the sender sends no more stream/data except lines already written)", after, h, received+after-granted, granted)
			}
			return nil
		case <-t.C:
			received, _, after := in.stats()
			in.release()
			return fmt.Errorf("communicator/start of `head -c %d /dev/zero` not answered within %v; the runner cancelled its stdout %s after %d bytes and got %d more (§7.5.2 rule 4: after stream/cancel the sender stops)", size, wait.Round(time.Millisecond), h, received, after)
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	if err != nil {
		return err
	}
	if err := o.needComm(); err != nil {
		return err
	}
	if o.useErr != nil {
		return failf("%v", o.useErr)
	}
	return nil
}
