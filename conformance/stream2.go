package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/packer-stdio/packer/protocol"
)

// The runner's own engine for the byte streams of protocol version 2
// (SPEC §7.5.2). It works on raw lines, as the rest of the runner does: it
// parses every stream notification with encoding/json, so that any valid
// spelling is accepted, and compares stream/data lines with the canonical
// form byte for byte to report the ones that are not. It plays either side
// of a stream and records every rule the peer breaks, with the line that
// broke it, in a list the checks read (violations2). It is used by the
// plugin-mode session (the runner is the host) and by the host-mode
// scripted plugin (the runner is the plugin): each gives it a function that
// writes one line to the peer and hands it every stream notification the
// peer sends (receive).
//
// Names: the streams whose bytes this side receives are inbound (the
// peer's sources it reads, the sinks it offered); those whose bytes it
// sends are outbound (the sources it offered, the peer's sinks it writes).

// ref2 names a stream in a version 2 notification: a source or a sink
// handle (the member says whose handle it is).
type ref2 struct {
	sink   bool
	handle string
}

func (r ref2) String() string {
	if r.sink {
		return "sink " + r.handle
	}
	return "source " + r.handle
}

func (r ref2) wire() protocol.StreamRef {
	if r.sink {
		return protocol.StreamRef{Sink: r.handle}
	}
	return protocol.StreamRef{Source: r.handle}
}

// rule2 is a kind of violation of §7.5.2 that the engine detects.
type rule2 string

// The violations the engine records.
const (
	// v2SpeaksFirst: the offerer of a source sent stream/data or
	// stream/end before the reader's first stream/credit (rule 1).
	v2SpeaksFirst rule2 = "data-before-credit"
	// v2SinkCreditEarly: the offerer of a sink sent stream/credit for it
	// before its first stream/data arrived (rule 1).
	v2SinkCreditEarly rule2 = "sink-credit-before-data"
	// v2OverCredit: a chunk larger than the credit left (rule 2).
	v2OverCredit rule2 = "over-credit"
	// v2ChunkSize: a chunk of 0 bytes or more than MaxChunkSize.
	v2ChunkSize rule2 = "chunk-size"
	// v2AfterEnd: stream/data or another stream/end after stream/end
	// (rule 3).
	v2AfterEnd rule2 = "after-end"
	// v2Unknown: a notification for a stream no request offered, which
	// is not one of the crossings rule 3 allows.
	v2Unknown rule2 = "unknown-stream"
	// v2Malformed: params that are not those of the method (both or
	// neither of source and sink, a payload that is not base64, bytes out
	// of range).
	v2Malformed rule2 = "malformed"
	// v2NotCanonical: a stream/data line that is valid but not in the
	// canonical form (a SHOULD).
	v2NotCanonical rule2 = "not-canonical"
	// v2Unfinished: a communicator request was answered before its
	// streams were finished (rule 5). The engine does not know requests;
	// its user records this one with note2.
	v2Unfinished rule2 = "unfinished-before-answer"
)

// violation2 is one broken rule, with the line that broke it (nil when the
// violation is something missing, not a line).
type violation2 struct {
	Rule   rule2
	Stream ref2
	Detail string
	Line   []byte
}

// spec names the sentence of SPEC §7.5.2 a rule comes from, for the
// messages an outside author reads.
func (r rule2) spec() string {
	switch r {
	case v2SpeaksFirst, v2SinkCreditEarly:
		return "§7.5.2 rule 1"
	case v2OverCredit:
		return "§7.5.2 rule 2"
	case v2AfterEnd, v2Unknown:
		return "§7.5.2 rule 3"
	case v2Unfinished:
		return "§7.5.2 rule 5"
	case v2ChunkSize:
		return "§7.5.2 stream/data: 1 to 262144 bytes"
	case v2NotCanonical:
		return "§7.5.2 canonical form"
	}
	return "§7.5.2 and the method's schema"
}

func (v violation2) String() string {
	s := fmt.Sprintf("%s: %s (%s)", v.Stream, v.Detail, v.Rule.spec())
	if v.Line != nil {
		s += ": " + printable(v.Line)
	}
	return s
}

// errCancelled2 is returned by the writes of a stream the receiver
// cancelled; the cancel's error, if any, is wrapped in it.
var errCancelled2 = errors.New("stream cancelled by the receiver")

// errReleased2 is returned by reads and writes that wait on a stream after
// it was released: the request that carried it was answered.
var errReleased2 = errors.New("stream released: its request was answered")

// errAborted2 is returned by reads of a stream whose sender ended it with
// an error.
var errAborted2 = errors.New("stream aborted by the sender")

// flow2 is the engine of one connection. Its methods may be called from
// any goroutine.
type flow2 struct {
	send func(line []byte) error // writes one line, without the newline

	mu         sync.Mutex
	outbox     [][]byte // credits and cancels decided under mu, sent by flush
	in         map[ref2]*inbound2
	out        map[ref2]*outbound2
	violations []violation2
}

// newFlow2 returns an engine that writes its lines with send.
func newFlow2(send func(line []byte) error) *flow2 {
	return &flow2{send: send, in: map[ref2]*inbound2{}, out: map[ref2]*outbound2{}}
}

// violations2 returns what the engine recorded so far, in order.
func (f *flow2) violations2() []violation2 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]violation2(nil), f.violations...)
}

// note2 records a violation the engine's user found (rule 5).
func (f *flow2) note2(v violation2) {
	f.mu.Lock()
	f.violations = append(f.violations, v)
	f.mu.Unlock()
}

func (f *flow2) violate(rule rule2, r ref2, line []byte, format string, args ...any) {
	f.violations = append(f.violations, violation2{Rule: rule, Stream: r, Detail: fmt.Sprintf(format, args...), Line: append([]byte(nil), line...)})
}

// encode2 encodes a notification of the engine's own.
func encode2(method string, params any) []byte {
	b, err := json.Marshal(request{JSONRPC: "2.0", Method: method, Params: params})
	if err != nil {
		panic(err) // the engine's own params always encode
	}
	return b
}

// queueLocked adds a notification to the outbox; f.mu is held. Lines are
// never written under f.mu: a write that blocks on a full pipe must not
// stop the reader from taking lines off the other one.
func (f *flow2) queueLocked(method string, params any) {
	f.outbox = append(f.outbox, encode2(method, params))
}

// flush writes the outbox, in order. Called without f.mu.
func (f *flow2) flush() {
	f.mu.Lock()
	lines := f.outbox
	f.outbox = nil
	f.mu.Unlock()
	for _, l := range lines {
		f.send(l)
	}
}

// canonicalData returns the canonical spelling of a stream/data line.
func canonicalData(r ref2, data []byte) []byte {
	member := "source"
	if r.sink {
		member = "sink"
	}
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","method":"stream/data","params":{"` + member + `":`)
	b.Write(quoteHandle(r.handle))
	b.WriteString(`,"data":"`)
	b.WriteString(base64.StdEncoding.EncodeToString(data))
	b.WriteString(`"}}`)
	return b.Bytes()
}

// notCanonical says how a valid stream/data line differs from the
// canonical form of §7.5.2, or returns "" when it is canonical, so that an
// author knows what to change.
func notCanonical(line []byte, r ref2, data []byte) string {
	canon := canonicalData(r, data)
	switch {
	case !canonicalHandle(r.handle):
		return `the handle is not printable ASCII without '"' and '\'`
	case bytes.Equal(line, canon):
		return ""
	}
	var compact bytes.Buffer
	if json.Compact(&compact, line) == nil && bytes.Equal(compact.Bytes(), canon) {
		return "whitespace between the tokens"
	}
	member := "source"
	if r.sink {
		member = "sink"
	}
	head := canon[:bytes.LastIndex(canon, []byte(`"data":"`))+len(`"data":"`)]
	if !bytes.HasPrefix(compact.Bytes(), head) {
		if bytes.HasPrefix(compact.Bytes(), []byte(`{"jsonrpc":"2.0","method":"stream/data","params":{"`+member+`":"`)) {
			return "an escape in the handle"
		}
		return fmt.Sprintf(`the members are not jsonrpc, method, then params with %s then data, and nothing else`, member)
	}
	if bytes.IndexByte(compact.Bytes()[len(head):], '\\') >= 0 {
		return "an escape in the payload"
	}
	return "something follows the payload"
}

// canonicalHandle reports whether h may appear in the canonical form:
// printable ASCII without '"' and '\'.
func canonicalHandle(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// quoteHandle returns h as a JSON string: as it is between quotes when
// it is printable ASCII without '"' and '\' (the canonical form), escaped
// otherwise.
func quoteHandle(h string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(h)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// isStream2 reports whether method is one of the notifications of §7.5.2.
func isStream2(method string) bool {
	switch method {
	case protocol.MethodStreamData, protocol.MethodStreamCredit, protocol.MethodStreamEnd, protocol.MethodStreamCancel:
		return true
	}
	return false
}

// receive handles one line from the peer. It returns false, doing
// nothing, when the line is not a §7.5.2 notification; otherwise it
// updates the stream it names and records any rule the line breaks. It
// must be called in the order the lines arrived, from one goroutine.
func (f *flow2) receive(line []byte) bool {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil || m.ID != nil || !isStream2(m.Method) {
		return false
	}
	var p struct {
		Source *string          `json:"source"`
		Sink   *string          `json:"sink"`
		Data   *string          `json:"data"`
		Bytes  *int64           `json:"bytes"`
		Error  *json.RawMessage `json:"error"`
	}
	f.mu.Lock()
	defer f.flush()
	defer f.mu.Unlock()
	if err := json.Unmarshal(m.Params, &p); err != nil {
		f.violate(v2Malformed, ref2{}, line, "%s params: %v", m.Method, err)
		return true
	}
	var r ref2
	switch {
	case p.Source != nil && p.Sink == nil && *p.Source != "":
		r = ref2{handle: *p.Source}
	case p.Sink != nil && p.Source == nil && *p.Sink != "":
		r = ref2{sink: true, handle: *p.Sink}
	default:
		f.violate(v2Malformed, ref2{}, line, "%s names its stream with neither or both of source and sink", m.Method)
		return true
	}
	switch m.Method {
	case protocol.MethodStreamData:
		if p.Data == nil {
			f.violate(v2Malformed, r, line, "stream/data without data")
			return true
		}
		data, err := base64.StdEncoding.Strict().DecodeString(*p.Data)
		if err != nil {
			f.violate(v2Malformed, r, line, "stream/data payload is not padded standard base64: %v", err)
			return true
		}
		if why := notCanonical(line, r, data); why != "" {
			f.violate(v2NotCanonical, r, line, "stream/data not in the canonical form: %s", why)
		}
		f.data(r, data, line)
	case protocol.MethodStreamEnd:
		var werr *wireError
		if p.Error != nil {
			werr = &wireError{}
			if json.Unmarshal(*p.Error, werr) != nil {
				f.violate(v2Malformed, r, line, "stream/end error is not an error object")
			}
		}
		f.end(r, werr, line)
	case protocol.MethodStreamCredit:
		if p.Bytes == nil || *p.Bytes < 1 || *p.Bytes > 1<<30 {
			f.violate(v2Malformed, r, line, "stream/credit bytes missing or not from 1 to 2^30")
			return true
		}
		f.credit(r, *p.Bytes, line)
	case protocol.MethodStreamCancel:
		var werr *wireError
		if p.Error != nil {
			werr = &wireError{}
			if json.Unmarshal(*p.Error, werr) != nil {
				f.violate(v2Malformed, r, line, "stream/cancel error is not an error object")
			}
		}
		f.cancelled(r, werr, line)
	}
	return true
}

// data handles a chunk; f.mu is held.
func (f *flow2) data(r ref2, data []byte, line []byte) {
	in := f.in[r]
	if in == nil {
		if !r.sink {
			f.violate(v2SpeaksFirst, r, line, "stream/data for a source this side has not started with stream/credit")
		} else {
			f.violate(v2Unknown, r, line, "stream/data for a sink this side did not offer")
		}
		return
	}
	switch {
	case in.ended:
		f.violate(v2AfterEnd, r, line, "stream/data after stream/end")
		return
	case in.cancelled:
		in.afterCancel += int64(len(data))
		return
	case in.released:
		return // its request was answered: rule 5 judges that
	case !r.sink && in.granted == 0:
		f.violate(v2SpeaksFirst, r, line, "stream/data before the reader's first stream/credit")
		// The sender's idea of its credit is unknown from here on: the
		// stream's credit is not judged (only rule 1 is broken), and
		// the first credit is not sent.
		in.granted = 1 << 62
	}
	if len(data) == 0 || len(data) > protocol.MaxChunkSize {
		f.violate(v2ChunkSize, r, line, "chunk of %d bytes; a chunk holds 1 to %d", len(data), protocol.MaxChunkSize)
		if len(data) > protocol.MaxChunkSize {
			f.cancelLocked(in, errorOf(protocol.CodeInvalidParams, "invalid params: chunk of %d bytes is larger than %d", len(data), protocol.MaxChunkSize))
			return
		}
	}
	if left := in.granted - in.received; int64(len(data)) > left {
		f.violate(v2OverCredit, r, line, "chunk of %d bytes with %d bytes of credit left (granted %d, received %d)", len(data), left, in.granted, in.received)
		f.cancelLocked(in, errorOf(protocol.CodeInvalidParams, "invalid params: chunk of %d bytes is larger than the credit left (%d)", len(data), left))
		return
	}
	in.received += int64(len(data))
	in.chunks++
	if len(data) > 0 {
		in.queue = append(in.queue, data)
	}
	in.signal()
	// A sink's offerer may enlarge the window once data has arrived.
	if r.sink && in.chunks == 1 && in.opts.Window > protocol.InitialSinkWindow {
		in.grantLocked(in.opts.Window - protocol.InitialSinkWindow)
	}
}

func (f *flow2) end(r ref2, werr *wireError, line []byte) {
	in := f.in[r]
	if in == nil {
		if !r.sink {
			f.violate(v2SpeaksFirst, r, line, "stream/end for a source this side has not started with stream/credit")
		} else {
			f.violate(v2Unknown, r, line, "stream/end for a sink this side did not offer")
		}
		return
	}
	switch {
	case in.ended:
		f.violate(v2AfterEnd, r, line, "a second stream/end")
		return
	case in.released:
		return
	case !r.sink && in.granted == 0 && !in.cancelled:
		f.violate(v2SpeaksFirst, r, line, "stream/end before the reader's first stream/credit")
	}
	in.ended = true
	in.endErr = werr
	in.signal()
}

func (f *flow2) credit(r ref2, n int64, line []byte) {
	out := f.out[r]
	if out == nil {
		if r.sink {
			f.violate(v2SinkCreditEarly, r, line, "stream/credit for a sink this side has not written yet")
		} else {
			f.violate(v2Unknown, r, line, "stream/credit for a source this side did not offer")
		}
		return
	}
	if r.sink && out.sent == 0 && !out.ended {
		f.violate(v2SinkCreditEarly, r, line, "stream/credit for a sink before its first stream/data")
	}
	if out.ended || out.released {
		return // crossed our stream/end: ignored
	}
	out.granted += n
	out.credits++
	out.signal()
}

func (f *flow2) cancelled(r ref2, werr *wireError, line []byte) {
	out := f.out[r]
	if out == nil {
		f.violate(v2Unknown, r, line, "stream/cancel for a stream this side does not send")
		return
	}
	if !out.cancelSeen {
		out.cancelSeen, out.cancelSeenErr = true, werr
	}
	if out.ended || out.cancelled || out.released {
		return // crossed our stream/end: ignored
	}
	out.cancelled = true
	out.cancelErr = werr
	out.signal()
}

// cancelLocked queues stream/cancel for in; f.mu is held.
func (f *flow2) cancelLocked(in *inbound2, werr *wireError) {
	if in.cancelled || in.ended {
		return
	}
	in.cancelled = true
	in.cancelErr = werr
	in.signal()
	f.queueLocked(protocol.MethodStreamCancel, struct {
		protocol.StreamRef
		Error *wireError `json:"error,omitempty"`
	}{in.ref.wire(), werr})
}

// recvOptions say how this side receives a stream.
type recvOptions struct {
	// Window is the credit in flight at most: a source's first credit,
	// and a sink's window once its first chunk arrived (never less than
	// the implicit InitialSinkWindow). Zero means DefaultStreamWindow.
	Window int64
	// Hold, when not nil, is waited on before the first credit of a
	// source is sent: a check holds it to see whether the offerer sends
	// data before it.
	Hold <-chan struct{}
}

// inbound2 is a stream whose bytes this side receives. Read returns them
// in order and returns each chunk's bytes as credit once it has been read.
type inbound2 struct {
	f    *flow2
	ref  ref2
	opts recvOptions
	ctx  context.Context

	// Guarded by f.mu.
	granted, received int64
	chunks            int
	queue             [][]byte
	ended, cancelled  bool
	endErr, cancelErr *wireError
	afterCancel       int64 // bytes that arrived after our cancel
	released          bool
	wake              chan struct{}
}

func (in *inbound2) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// grantLocked queues stream/credit; f.mu is held.
func (in *inbound2) grantLocked(n int64) {
	if n <= 0 || in.ended || in.cancelled {
		return
	}
	in.granted += n
	in.f.queueLocked(protocol.MethodStreamCredit, protocol.StreamCreditParams{StreamRef: in.ref.wire(), Bytes: n})
}

func (f *flow2) newInbound(ctx context.Context, r ref2, o recvOptions) *inbound2 {
	if o.Window <= 0 {
		o.Window = protocol.DefaultStreamWindow
	}
	in := &inbound2{f: f, ref: r, opts: o, ctx: ctx, wake: make(chan struct{}, 1)}
	f.mu.Lock()
	f.in[r] = in
	f.mu.Unlock()
	return in
}

// readSource starts reading the peer's source handle: it registers it and
// sends the first stream/credit of o.Window bytes (after o.Hold, if set).
// It does not block unless o.Hold does.
func (f *flow2) readSource(ctx context.Context, handle string, o recvOptions) *inbound2 {
	in := f.registerSource(ctx, handle, o)
	in.start()
	return in
}

// registerSource registers the peer's source handle without granting
// credit: a line that names it is then known, and data that arrives before
// start is a broken rule 1 (counted against the window start would
// grant, so that the bytes still arrive).
func (f *flow2) registerSource(ctx context.Context, handle string, o recvOptions) *inbound2 {
	return f.newInbound(ctx, ref2{handle: handle}, o)
}

// start sends the first stream/credit of a source registered with
// registerSource, after its opts.Hold; it does nothing when data already
// arrived without it, or after the first call.
func (in *inbound2) start() {
	if in.opts.Hold != nil {
		select {
		case <-in.opts.Hold:
		case <-in.ctx.Done():
		}
	}
	f := in.f
	f.mu.Lock()
	if in.granted == 0 {
		in.grantLocked(in.opts.Window)
	}
	f.mu.Unlock()
	f.flush()
}

// offerSink registers a sink this side offers under handle, before the
// request that carries it is sent. The writer has the implicit credit of
// InitialSinkWindow; more is granted after the first chunk, up to
// o.Window, and as chunks are read.
func (f *flow2) offerSink(ctx context.Context, handle string, o recvOptions) *inbound2 {
	in := f.newInbound(ctx, ref2{sink: true, handle: handle}, o)
	f.mu.Lock()
	in.granted = protocol.InitialSinkWindow
	f.mu.Unlock()
	return in
}

// Read returns the stream's bytes in order. It blocks until a chunk, the
// end or the cancellation of in's context; it returns io.EOF after a
// stream/end without error, an error wrapping errAborted2 after one with
// an error, and errCancelled2 after this side cancelled it.
func (in *inbound2) Read(p []byte) (int, error) {
	f := in.f
	for {
		f.mu.Lock()
		if in.cancelled {
			f.mu.Unlock()
			return 0, errCancelled2
		}
		if len(in.queue) > 0 {
			n := copy(p, in.queue[0])
			if n == len(in.queue[0]) {
				in.queue = in.queue[1:]
			} else {
				in.queue[0] = in.queue[0][n:]
			}
			// Return the bytes as credit once consumed: the window
			// stays at most opts.Window (a sink's implicit window
			// counts too).
			in.grantLocked(int64(n))
			f.mu.Unlock()
			f.flush()
			return n, nil
		}
		switch {
		case in.ended && in.endErr != nil:
			err := fmt.Errorf("%w: error %d: %s", errAborted2, in.endErr.Code, in.endErr.Message)
			f.mu.Unlock()
			return 0, err
		case in.ended:
			f.mu.Unlock()
			return 0, io.EOF
		case in.released:
			f.mu.Unlock()
			return 0, errReleased2
		}
		f.mu.Unlock()
		select {
		case <-in.wake:
		case <-in.ctx.Done():
			return 0, in.ctx.Err()
		}
	}
}

// cancel sends stream/cancel (with werr, if not nil) unless the stream
// has ended or was cancelled.
func (in *inbound2) cancel(werr *wireError) {
	in.f.mu.Lock()
	in.f.cancelLocked(in, werr)
	in.f.mu.Unlock()
	in.f.flush()
}

// settled reports whether the stream is finished for rule 5: its end
// arrived or this side cancelled it.
func (in *inbound2) settled() bool {
	in.f.mu.Lock()
	defer in.f.mu.Unlock()
	return in.ended || in.cancelled
}

// stats returns the bytes received and granted, and those that arrived
// after this side's cancel.
func (in *inbound2) stats() (received, granted, afterCancel int64) {
	in.f.mu.Lock()
	defer in.f.mu.Unlock()
	return in.received, in.granted, in.afterCancel
}

// release ends the stream's life, as the offerer does when the request
// that carried it is answered: lines that still name it are then ignored
// (but data or a second end after its end are still violations), and a
// Read waiting for more returns errReleased2 (what was received is still
// returned first).
func (in *inbound2) release() {
	in.f.mu.Lock()
	in.released = true
	in.signal()
	in.f.mu.Unlock()
}

// sendOptions say how this side sends a stream.
type sendOptions struct {
	// Chunk is the largest chunk sent; zero means MaxChunkSize.
	Chunk int
	// Spell, when not nil, writes a stream/data line instead of the
	// canonical form: the checks use it to send other valid spellings.
	Spell func(r ref2, data []byte) []byte
}

// outbound2 is a stream whose bytes this side sends: Write sends chunks
// within the receiver's credit, waiting for more when none is left; Close
// sends stream/end.
type outbound2 struct {
	f    *flow2
	ref  ref2
	opts sendOptions
	ctx  context.Context

	wmu sync.Mutex // one Write or Close at a time

	// Guarded by f.mu.
	granted, sent    int64
	chunks, credits  int
	ended, cancelled bool
	cancelErr        *wireError
	released         bool
	// cancelSeen is set by the first stream/cancel, even one that
	// crossed this side's end: the checks look at it.
	cancelSeen    bool
	cancelSeenErr *wireError
	wake          chan struct{}
}

func (out *outbound2) signal() {
	select {
	case out.wake <- struct{}{}:
	default:
	}
}

func (f *flow2) newOutbound(ctx context.Context, r ref2, granted int64, o sendOptions) *outbound2 {
	if o.Chunk <= 0 || o.Chunk > protocol.MaxChunkSize {
		o.Chunk = protocol.MaxChunkSize
	}
	out := &outbound2{f: f, ref: r, opts: o, ctx: ctx, granted: granted, wake: make(chan struct{}, 1)}
	f.mu.Lock()
	f.out[r] = out
	f.mu.Unlock()
	return out
}

// writeSink starts writing the peer's sink handle, with the implicit
// credit of InitialSinkWindow. It sends nothing until Write or Close.
func (f *flow2) writeSink(ctx context.Context, handle string, o sendOptions) *outbound2 {
	return f.newOutbound(ctx, ref2{sink: true, handle: handle}, protocol.InitialSinkWindow, o)
}

// offerSource registers a source this side offers under handle, before
// the request that carries it is sent, and copies src to it in a
// goroutine once the reader's credit arrives; it ends the stream at EOF,
// or aborts it (-32007) when src fails. The returned channel receives the
// copy's error (nil when the stream ended).
func (f *flow2) offerSource(ctx context.Context, handle string, src io.Reader, o sendOptions) (*outbound2, <-chan error) {
	out := f.newOutbound(ctx, ref2{handle: handle}, 0, o)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, src)
		switch {
		case errors.Is(err, errCancelled2):
			done <- err
		case err != nil:
			out.abort(errorOf(protocol.CodeComponentFailed, "component failed: reading source stream: %v", err))
			done <- err
		default:
			done <- out.Close()
		}
	}()
	return out, done
}

// Write sends p in chunks of at most opts.Chunk bytes, each within the
// credit left; it blocks for credit. It fails with errCancelled2 once the
// receiver cancelled, or with the context's error.
func (out *outbound2) Write(p []byte) (int, error) {
	out.wmu.Lock()
	defer out.wmu.Unlock()
	n := 0
	for len(p) > 0 {
		size, err := out.waitCredit()
		if err != nil {
			return n, err
		}
		size = min(size, len(p), out.opts.Chunk)
		if err := out.sendChunk(p[:size]); err != nil {
			return n, err
		}
		n += size
		p = p[size:]
	}
	return n, nil
}

// cancelledErr is what writes fail with once the receiver cancelled:
// errCancelled2, with the receiver's error when it gave one. f.mu is held.
func (out *outbound2) cancelledErr() error {
	if werr := out.cancelErr; werr != nil {
		return fmt.Errorf("%w: error %d: %s", errCancelled2, werr.Code, werr.Message)
	}
	return errCancelled2
}

// waitCredit blocks until some credit is left and returns it.
func (out *outbound2) waitCredit() (int, error) {
	f := out.f
	for {
		f.mu.Lock()
		switch {
		case out.cancelled:
			err := out.cancelledErr()
			f.mu.Unlock()
			return 0, err
		case out.ended:
			f.mu.Unlock()
			return 0, errors.New("write after stream/end")
		case out.released:
			f.mu.Unlock()
			return 0, errReleased2
		case out.granted > out.sent:
			left := out.granted - out.sent
			f.mu.Unlock()
			return int(min(left, int64(protocol.MaxChunkSize))), nil
		}
		f.mu.Unlock()
		select {
		case <-out.wake:
		case <-out.ctx.Done():
			return 0, out.ctx.Err()
		}
	}
}

// sendChunk writes one stream/data line for data, counting it against
// the credit; the caller saw the credit.
func (out *outbound2) sendChunk(data []byte) error {
	line := canonicalData(out.ref, data)
	if out.opts.Spell != nil {
		line = out.opts.Spell(out.ref, data)
	}
	return out.sendRawChunk(data, line)
}

// sendRawChunk writes line, a stream/data line carrying data, counting
// data against the credit whatever is left: checks use it to send a chunk
// that breaks the rules on purpose.
func (out *outbound2) sendRawChunk(data []byte, line []byte) error {
	f := out.f
	f.mu.Lock()
	if out.cancelled {
		err := out.cancelledErr()
		f.mu.Unlock()
		return err
	}
	out.sent += int64(len(data))
	out.chunks++
	f.mu.Unlock()
	return f.send(line)
}

// Close sends stream/end (once), unless the receiver cancelled.
func (out *outbound2) Close() error {
	out.wmu.Lock()
	defer out.wmu.Unlock()
	return out.endWith(nil)
}

// abort sends stream/end with werr: the data is incomplete.
func (out *outbound2) abort(werr *wireError) error {
	out.wmu.Lock()
	defer out.wmu.Unlock()
	return out.endWith(werr)
}

func (out *outbound2) endWith(werr *wireError) error {
	f := out.f
	f.mu.Lock()
	if out.ended || out.cancelled {
		f.mu.Unlock()
		return nil
	}
	out.ended = true
	out.signal()
	f.mu.Unlock()
	return f.send(encode2(protocol.MethodStreamEnd, struct {
		protocol.StreamRef
		Error *wireError `json:"error,omitempty"`
	}{out.ref.wire(), werr}))
}

// settled reports whether the stream is finished for rule 5: this side
// sent its end or the receiver cancelled it.
func (out *outbound2) settled() bool {
	out.f.mu.Lock()
	defer out.f.mu.Unlock()
	return out.ended || out.cancelled
}

// stats returns the bytes sent and the credit granted so far, and whether
// the receiver sent stream/cancel for the stream (with its error), even
// one that crossed this side's end or came after the release.
func (out *outbound2) stats() (sent, granted int64, cancelled bool, cancelErr *wireError) {
	out.f.mu.Lock()
	defer out.f.mu.Unlock()
	return out.sent, out.granted, out.cancelSeen, out.cancelSeenErr
}

// release ends the stream's life: lines that still name it are then
// ignored (a cancel is still recorded for stats), and a Write waiting for
// credit returns errReleased2.
func (out *outbound2) release() {
	out.f.mu.Lock()
	out.released = true
	out.signal()
	out.f.mu.Unlock()
}

// spellNonCanonical writes the i-th stream/data line of a stream (member
// "source" or "sink", its handle) in one of four spellings that are valid
// JSON-RPC but not §7.5.2's canonical form, cycling with i: members
// reordered with the payload first, the payload's "/" escaped as "\/",
// whitespace between the tokens, and params before method and jsonrpc. A
// receiver must accept every one of them.
func spellNonCanonical(i int, member, handle string, data []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString(data)
	h, _ := json.Marshal(handle)
	switch i % 4 {
	case 0:
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"stream/data","params":{"data":"%s","%s":%s}}`, b64, member, h)
	case 1:
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"stream/data","params":{"%s":%s,"data":"%s"}}`, member, h, strings.ReplaceAll(b64, "/", `\/`))
	case 2:
		return fmt.Appendf(nil, `{"jsonrpc": "2.0", "method": "stream/data", "params": {"%s": %s, "data": "%s"}}`, member, h, b64)
	default:
		return fmt.Appendf(nil, `{"params":{"%s":%s,"data":"%s"},"method":"stream/data","jsonrpc":"2.0"}`, member, h, b64)
	}
}
