package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Byte streams of protocol version 2 (SPEC §7.5.2): the side that has the
// bytes pushes them as stream/data notifications, never more than the
// receiver's credit; the receiver grants credit with stream/credit as it
// consumes what it received, so each stream holds at most its window in
// memory on either side. stream/end ends a stream (with an error: aborts
// it) and stream/cancel tells the sender the receiver wants no more.
//
// Every stream is still offered by the requester of a communicator call and
// named by the handle it minted; the member of the notification says which
// kind it is, and so whose handle it is:
//
//   - a source (offered by the sender of the bytes): the reader sends the
//     first message, a credit; data and end flow from the offerer;
//   - a sink (offered by the receiver of the bytes): the writer sends the
//     first message, data within [InitialSinkWindow]; credits flow from the
//     offerer, which may enlarge the window once data arrived.
//
// In both cases the side that did not offer the stream speaks first, so a
// message never names a stream its receiver has not registered yet.

// streamKey names a stream in the flow tables: a source or a sink handle.
type streamKey struct {
	sink bool
	h    string
}

func (k streamKey) ref() StreamRef {
	if k.sink {
		return StreamRef{Sink: k.h}
	}
	return StreamRef{Source: k.h}
}

func (k streamKey) String() string {
	if k.sink {
		return "sink " + k.h
	}
	return "source " + k.h
}

func refKey(r StreamRef) (streamKey, bool) {
	switch {
	case r.Source != "" && r.Sink == "":
		return streamKey{h: r.Source}, true
	case r.Sink != "" && r.Source == "":
		return streamKey{sink: true, h: r.Sink}, true
	}
	return streamKey{}, false
}

// flowTable holds the streams of one connection under flow control. in
// holds the streams whose bytes this side receives (data and end arrive
// for them): the peer's sources it reads and its own sinks. out holds the
// streams whose bytes this side sends (credit and cancel arrive for them):
// its own sources and the peer's sinks it writes.
type flowTable struct {
	mu  sync.Mutex
	in  map[streamKey]*inbound
	out map[streamKey]*outbound
}

func (t *flowTable) getIn(k streamKey) *inbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.in[k]
}

func (t *flowTable) getOut(k streamKey) *outbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out[k]
}

func (t *flowTable) setIn(k streamKey, in *inbound) {
	t.mu.Lock()
	if in == nil {
		delete(t.in, k)
	} else {
		t.in[k] = in
	}
	t.mu.Unlock()
}

func (t *flowTable) setOut(k streamKey, out *outbound) {
	t.mu.Lock()
	if out == nil {
		delete(t.out, k)
	} else {
		t.out[k] = out
	}
	t.mu.Unlock()
}

// relayTo is where a relayed stream's messages go: the same kind of
// stream, under another handle, on another connection.
type relayTo struct {
	c   *Conn
	key streamKey
	sp  *splice
}

// splice joins a stream on one connection to a stream on another, so that
// a relay forwards each message with the handle rewritten and the payload
// untouched.
type splice struct {
	mu    sync.Mutex
	ended bool // stream/end passed, or a cancel did
}

func (sp *splice) finish() (first bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	first = !sp.ended
	sp.ended = true
	return first
}

func (sp *splice) done() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.ended
}

// inbound is the receiving end of a stream: the chunks received and not
// yet consumed, and the credit the sender has left.
type inbound struct {
	c     *Conn
	key   streamKey
	relay *relayTo // forward everything instead

	mu     sync.Mutex
	q      []queued
	off    int   // bytes of q[0] already consumed
	credit int64 // bytes the sender may still send
	extra  int64 // credit to grant when the first data arrives (sinks)
	ended  bool
	err    error // the sender's abort, or a rule it broke
	wake   chan struct{}
}

type queued struct {
	p *[]byte
	b []byte
}

func newInbound(c *Conn, k streamKey, credit, extra int64) *inbound {
	return &inbound{c: c, key: k, credit: credit, extra: extra, wake: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deliver queues a decoded chunk; buf goes back to the pool once consumed.
// It is called on the read loop.
func (in *inbound) deliver(buf *[]byte, n int) {
	in.mu.Lock()
	if in.ended || in.err != nil {
		ended := in.ended
		in.mu.Unlock()
		putChunk(buf)
		if ended {
			in.c.logger.Printf("stream %s: data after its end, discarded", in.key)
		}
		return
	}
	if int64(n) > in.credit {
		in.err = ErrInvalidParams.WithMessage("stream %s: %d bytes sent with %d bytes of credit left", in.key, n, in.credit)
		err := in.err
		in.mu.Unlock()
		putChunk(buf)
		signal(in.wake)
		in.c.queueFlow(MethodStreamCancel, StreamCancelParams{StreamRef: in.key.ref(), Error: AsError(err)})
		return
	}
	in.credit -= int64(n)
	grant := in.extra
	in.extra = 0
	in.credit += grant
	if n > 0 {
		in.q = append(in.q, queued{buf, (*buf)[:n]})
	} else {
		putChunk(buf)
	}
	in.mu.Unlock()
	signal(in.wake)
	if grant > 0 {
		in.c.queueCredit(in.key, grant)
	}
}

// fail records a local failure of the stream (bad data) and tells the
// sender to stop.
func (in *inbound) fail(err *Error) {
	in.mu.Lock()
	if in.ended || in.err != nil {
		in.mu.Unlock()
		return
	}
	in.err = err
	in.mu.Unlock()
	signal(in.wake)
	in.c.queueFlow(MethodStreamCancel, StreamCancelParams{StreamRef: in.key.ref(), Error: err})
}

// end records stream/end; abort is the sender's error, if any.
func (in *inbound) end(abort *Error) {
	in.mu.Lock()
	if !in.ended && in.err == nil {
		in.ended = true
		if abort != nil {
			in.err = abort
		}
	}
	in.mu.Unlock()
	signal(in.wake)
}

// next returns the unconsumed bytes of the oldest chunk, waiting for one
// under ctx. It returns io.EOF after the end, or the stream's error.
func (in *inbound) next(ctx context.Context) ([]byte, error) {
	for {
		in.mu.Lock()
		if len(in.q) > 0 {
			b := in.q[0].b[in.off:]
			in.mu.Unlock()
			return b, nil
		}
		err := in.err
		ended := in.ended
		in.mu.Unlock()
		switch {
		case err != nil:
			return nil, err
		case ended:
			return nil, io.EOF
		}
		select {
		case <-in.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-in.c.Done():
			return nil, in.c.closedError()
		}
	}
}

// consume marks n bytes of the oldest chunk consumed. When the chunk is
// used up its buffer goes back to the pool and its bytes back to the
// sender as credit.
func (in *inbound) consume(n int) {
	in.mu.Lock()
	in.off += n
	var grant int
	if in.off >= len(in.q[0].b) {
		grant = len(in.q[0].b)
		putChunk(in.q[0].p)
		in.q[0] = queued{}
		in.q = in.q[1:]
		in.off = 0
		if !in.ended && in.err == nil {
			in.credit += int64(grant)
		} else {
			grant = 0
		}
	}
	in.mu.Unlock()
	if grant > 0 {
		in.c.sendFlow(MethodStreamCredit, StreamCreditParams{StreamRef: in.key.ref(), Bytes: int64(grant)})
	}
}

// discard drops every queued chunk.
func (in *inbound) discard() {
	in.mu.Lock()
	for _, q := range in.q {
		putChunk(q.p)
	}
	in.q = nil
	in.off = 0
	in.mu.Unlock()
}

func (in *inbound) read(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := in.next(ctx)
	if err != nil {
		return 0, err
	}
	n := copy(p, b)
	in.consume(n)
	return n, nil
}

// maxWriteTo is the most bytes writeTo hands w in one Write. On Linux 6.18
// (this project's benchmark machine), writes of 256 KiB to an ext4 file
// took the kernel about five times longer in one run out of three (dd of
// 256 MiB: 0.05 or 0.24 s of system time; 128 KiB and 64 KiB writes: 0.05
// to 0.06 s every time), which made a whole upload's throughput bimodal.
const maxWriteTo = 128 << 10

// writeTo writes every chunk to w as it arrives, until the end, in Writes
// of at most maxWriteTo bytes. A write error is returned as is.
func (in *inbound) writeTo(ctx context.Context, w io.Writer) (int64, error) {
	var total int64
	for {
		b, err := in.next(ctx)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, werr := w.Write(b[:min(len(b), maxWriteTo)])
		total += int64(n)
		in.consume(n)
		if werr != nil {
			return total, werr
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
	}
}

// outbound is the sending end of a stream: the credit left, and whether
// the receiver cancelled.
type outbound struct {
	c     *Conn
	key   streamKey
	relay *relayTo // forward credits and cancels instead

	mu        sync.Mutex
	credit    int64
	cancelled bool
	err       *Error // the receiver's reason for cancelling, if any
	wake      chan struct{}

	start func() // starts the pusher on the first credit (own sources)
}

func newOutbound(c *Conn, k streamKey, credit int64) *outbound {
	return &outbound{c: c, key: k, credit: credit, wake: make(chan struct{}, 1)}
}

func (o *outbound) addCredit(n int64) {
	o.mu.Lock()
	o.credit = min(o.credit+n, 1<<40)
	start := o.start
	o.start = nil
	o.mu.Unlock()
	signal(o.wake)
	if start != nil {
		start()
	}
}

func (o *outbound) cancel(err *Error) {
	o.mu.Lock()
	o.cancelled = true
	o.err = err
	start := o.start
	o.start = nil
	o.mu.Unlock()
	signal(o.wake)
	if start != nil {
		start() // the pusher sees the cancel and cleans up
	}
}

// errStreamCancelled is returned by writes to a stream whose receiver sent
// stream/cancel without an error.
var errStreamCancelled = errors.New("the receiver cancelled the stream")

// waitCredit waits until some credit is left and returns it.
func (o *outbound) waitCredit(ctx context.Context) (int64, error) {
	for {
		o.mu.Lock()
		credit, cancelled, cerr := o.credit, o.cancelled, o.err
		o.mu.Unlock()
		switch {
		case cancelled && cerr != nil:
			return 0, cerr
		case cancelled:
			return 0, errStreamCancelled
		case credit > 0:
			return credit, nil
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-o.c.Done():
			return 0, o.c.closedError()
		}
	}
}

func (o *outbound) isCancelled() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cancelled
}

func (o *outbound) take(n int) {
	o.mu.Lock()
	o.credit -= int64(n)
	o.mu.Unlock()
}

// ctlQueue holds the stream notifications the read loop wants sent. The
// read loop never writes itself: if both sides' read loops waited for
// their writes while both pipes were full, neither would read again.
// Credits for one stream are summed, so the queue holds at most one entry
// per stream and one cancel per stream.
type ctlQueue struct {
	once    sync.Once
	mu      sync.Mutex
	credits map[streamKey]int64
	keys    []streamKey
	msgs    []notification
	wake    chan struct{}
}

func (c *Conn) startCtl() {
	c.ctl.once.Do(func() {
		c.ctl.wake = make(chan struct{}, 1)
		c.ctl.credits = map[streamKey]int64{}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.ctlLoop()
		}()
	})
}

// queueCredit has the control goroutine grant n bytes of credit for k.
func (c *Conn) queueCredit(k streamKey, n int64) {
	c.startCtl()
	q := &c.ctl
	q.mu.Lock()
	if _, ok := q.credits[k]; !ok {
		q.keys = append(q.keys, k)
	}
	q.credits[k] += n
	q.mu.Unlock()
	signal(q.wake)
}

// queueFlow has the control goroutine send a stream notification.
func (c *Conn) queueFlow(method string, params any) {
	c.startCtl()
	q := &c.ctl
	q.mu.Lock()
	q.msgs = append(q.msgs, notification{JSONRPC: "2.0", Method: method, Params: params})
	q.mu.Unlock()
	signal(q.wake)
}

func (c *Conn) ctlLoop() {
	q := &c.ctl
	for {
		select {
		case <-q.wake:
		case <-c.Done():
			return
		}
		q.mu.Lock()
		msgs, keys, credits := q.msgs, q.keys, q.credits
		q.msgs, q.keys, q.credits = nil, nil, map[streamKey]int64{}
		q.mu.Unlock()
		for _, m := range msgs {
			c.sendFlow(m.Method, m.Params) //nolint:errcheck // a closed connection ends the loop
		}
		for _, k := range keys {
			c.sendFlow(MethodStreamCredit, StreamCreditParams{StreamRef: k.ref(), Bytes: credits[k]}) //nolint:errcheck // as above
		}
	}
}

// sendData writes a stream/data line for data, as a sender within its
// credit.
func (c *Conn) sendData(k streamKey, data []byte) error {
	return c.sendErr(c.stream.writeLine(func(b []byte) []byte { return appendData(b, k.sink, k.h, data) }))
}

// sendFlow writes one of the stream notifications other than data. A
// failure to write means the connection is going away, which every waiter
// notices; it is returned for those who care.
func (c *Conn) sendFlow(method string, params any) error {
	err := c.stream.writeRaw(notification{JSONRPC: "2.0", Method: method, Params: params})
	if err != nil {
		c.logger.Printf("%s: %v", method, err)
	}
	return c.sendErr(err)
}

func (c *Conn) sendErr(err error) error {
	if err == nil {
		return nil
	}
	return c.sendError(err)
}

// flowOn reports whether this connection's streams are under flow control.
func (c *Conn) flowOn() bool { return c.version.Load() >= VersionFlowStreams }

// SetProtocolVersion records the protocol version the handshake agreed on.
// From version 2 on, streams offered and driven on this connection use
// stream/data with credit-based flow control; before, stream/read and
// stream/write. A plugin calls it before answering initialize, a host after
// reading the answer. The stream/* requests of version 1 are served in
// every version.
func (c *Conn) SetProtocolVersion(v int) { c.version.Store(int32(v)) }

// onDataLine is the line reader's fast path: it takes a stream/data line in
// the canonical form, decodes its payload once into a pooled buffer and
// queues it on its stream, or forwards it as is when the stream is relayed.
// It returns false to send the line down the ordinary path.
func (c *Conn) onDataLine(line []byte) bool {
	if !c.flowOn() {
		return false
	}
	sink, handle, payload, ok := parseData(line)
	if !ok {
		return false
	}
	in := c.flow.getIn(streamKey{sink: sink, h: string(handle)})
	if in == nil {
		if bytes.IndexByte(payload, '\r') >= 0 {
			return false // not valid JSON: the ordinary path answers it
		}
		c.logger.Printf("stream/data for %s, which is not open here: discarded", streamKey{sink: sink, h: string(handle)})
		return true
	}
	if in.relay != nil {
		if bytes.IndexByte(payload, '\r') >= 0 {
			return false // not valid JSON: the ordinary path answers it
		}
		r := in.relay
		if len(r.key.h) == len(handle) && cap(line) > len(line) && line[:len(line)+1][len(line)] == '\n' && c.stream.trace == nil {
			// The line is canonical, the stream the same kind on both
			// sides and the handles of one length: rewrite the handle
			// where it is and forward the line from the read buffer,
			// newline included, rather than copy it (about 350 KB).
			copy(handle, r.key.h)
			r.c.sendErr(r.c.stream.writeFrom(line[:len(line)+1])) //nolint:errcheck // the target's reader sees it
			return true
		}
		r.c.sendErr(r.c.stream.writeLine(func(b []byte) []byte { return appendDataRaw(b, r.key.sink, r.key.h, payload) })) //nolint:errcheck // the target's reader sees it
		return true
	}
	if len(payload) > maxPayload {
		in.fail(ErrInvalidParams.WithMessage("stream %s: chunk of more than %d bytes", in.key, MaxChunkSize))
		return true
	}
	buf := getChunk()
	n, err := b64.Decode(*buf, payload)
	if err == nil && (len(payload)%4 != 0 || n != decodedLen(payload)) {
		// The decoder skipped a "\r", which makes the line invalid JSON:
		// checked here rather than by a scan of every payload first.
		putChunk(buf)
		return false
	}
	if err != nil {
		putChunk(buf)
		if !plainBase64(payload) {
			return false // escapes or quotes: the ordinary path decides
		}
		in.fail(ErrInvalidParams.WithMessage("stream %s: data is not valid base64: %v", in.key, err))
		return true
	}
	if n > MaxChunkSize {
		putChunk(buf)
		in.fail(ErrInvalidParams.WithMessage("stream %s: chunk of more than %d bytes", in.key, MaxChunkSize))
		return true
	}
	in.deliver(buf, n)
	return true
}

// flowNotification serves the stream notifications that took the ordinary
// path. They are never answered; what breaks a rule is logged, and a
// stream that receives bad data is cancelled with the reason.
func (c *Conn) flowNotification(req *Request) {
	switch req.Method {
	case MethodStreamData:
		var p struct {
			StreamRef
			Data json.RawMessage `json:"data"`
		}
		if err := req.DecodeParams(&p); err != nil {
			c.logger.Printf("%v", err)
			return
		}
		k, ok := refKey(p.StreamRef)
		if !ok {
			c.logger.Printf("stream/data: exactly one of source and sink must be set")
			return
		}
		in := c.flow.getIn(k)
		if in == nil {
			c.logger.Printf("stream/data for %s, which is not open here: discarded", k)
			return
		}
		var data []byte
		if err := json.Unmarshal(p.Data, &data); err != nil {
			in.fail(ErrInvalidParams.WithMessage("stream %s: data is not valid base64: %v", k, err))
			return
		}
		if in.relay != nil {
			in.relay.c.sendData(in.relay.key, data) //nolint:errcheck // the target's reader sees it
			return
		}
		if len(data) > MaxChunkSize {
			in.fail(ErrInvalidParams.WithMessage("stream %s: chunk of more than %d bytes", k, MaxChunkSize))
			return
		}
		buf := getChunk()
		in.deliver(buf, copy(*buf, data))
	case MethodStreamEnd:
		var p StreamEndParams
		k, ok := c.decodeFlow(req, &p, &p.StreamRef)
		if !ok {
			return
		}
		in := c.flow.getIn(k)
		switch {
		case in == nil:
			c.logger.Printf("stream/end for %s, which is not open here: ignored", k)
		case in.relay != nil:
			if in.relay.sp.finish() {
				in.relay.c.sendFlow(MethodStreamEnd, StreamEndParams{StreamRef: in.relay.key.ref(), Error: p.Error}) //nolint:errcheck // as above
			}
		default:
			in.end(p.Error)
		}
	case MethodStreamCredit:
		var p StreamCreditParams
		k, ok := c.decodeFlow(req, &p, &p.StreamRef)
		if !ok {
			return
		}
		if p.Bytes < 1 {
			c.logger.Printf("stream/credit for %s: bytes must be positive, got %d", k, p.Bytes)
			return
		}
		out := c.flow.getOut(k)
		switch {
		case out == nil:
			// A credit can cross the end of the stream: nothing to do.
		case out.relay != nil:
			if !out.relay.sp.done() {
				out.relay.c.sendFlow(MethodStreamCredit, StreamCreditParams{StreamRef: out.relay.key.ref(), Bytes: p.Bytes}) //nolint:errcheck // as above
			}
		default:
			out.addCredit(p.Bytes)
		}
	case MethodStreamCancel:
		var p StreamCancelParams
		k, ok := c.decodeFlow(req, &p, &p.StreamRef)
		if !ok {
			return
		}
		out := c.flow.getOut(k)
		switch {
		case out == nil:
		case out.relay != nil:
			if out.relay.sp.finish() {
				out.relay.c.sendFlow(MethodStreamCancel, StreamCancelParams{StreamRef: out.relay.key.ref(), Error: p.Error}) //nolint:errcheck // as above
			}
		default:
			out.cancel(p.Error)
		}
	}
}

func (c *Conn) decodeFlow(req *Request, params any, ref *StreamRef) (streamKey, bool) {
	if err := req.DecodeParams(params); err != nil {
		c.logger.Printf("%v", err)
		return streamKey{}, false
	}
	k, ok := refKey(*ref)
	if !ok {
		c.logger.Printf("%s: exactly one of source and sink must be set", req.Method)
	}
	return k, ok
}

func isFlowMethod(m string) bool {
	switch m {
	case MethodStreamData, MethodStreamCredit, MethodStreamEnd, MethodStreamCancel:
		return true
	}
	return false
}

// offerSource registers r as a source under flow control. Its pusher
// starts with the first credit.
func (c *Conn) offerSource(h string, r io.Reader, onClose func() error) func() error {
	k := streamKey{h: h}
	if fr, ok := r.(*flowReader); ok && fr.c != c && fr.c.flowOn() && fr.claim() {
		return c.spliceSource(k, fr)
	}
	out := newOutbound(c, k, 0)
	ctx, cancel := context.WithCancel(context.Background())
	out.start = func() {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.push(ctx, out, r, onClose)
		}()
	}
	c.flow.setOut(k, out)
	return func() error {
		cancel()
		c.flow.setOut(k, nil)
		return nil
	}
}

// push sends r's bytes within the credit the reader grants, then
// stream/end; a read error ends the stream with that error.
func (c *Conn) push(ctx context.Context, out *outbound, r io.Reader, onClose func() error) {
	buf := getChunk()
	defer putChunk(buf)
	for {
		credit, err := out.waitCredit(ctx)
		if err != nil {
			if out.isCancelled() && onClose != nil {
				if cerr := onClose(); cerr != nil {
					c.logger.Printf("closing %s: %v", out.key, cerr)
				}
			}
			return
		}
		n, rerr := r.Read((*buf)[:min(credit, int64(c.chunk))])
		if n > 0 {
			out.take(n)
			if c.sendData(out.key, (*buf)[:n]) != nil {
				return
			}
		}
		switch {
		case errors.Is(rerr, io.EOF):
			c.sendFlow(MethodStreamEnd, StreamEndParams{StreamRef: out.key.ref()}) //nolint:errcheck // the reader notices a closed connection
			return
		case rerr != nil:
			c.sendFlow(MethodStreamEnd, StreamEndParams{StreamRef: out.key.ref(), Error: ErrComponentFailed.WithMessage("reading source stream: %v", rerr)}) //nolint:errcheck // as above
			return
		}
	}
}

// offerSink registers w as a sink under flow control, with a goroutine
// that writes what arrives to w. release waits for it when the stream
// ended, and returns the error of writing or of onClose.
func (c *Conn) offerSink(h string, w io.Writer, onClose func() error) func() error {
	k := streamKey{sink: true, h: h}
	if fw, ok := w.(*flowWriter); ok && fw.c != c && fw.c.flowOn() && fw.claim() {
		return c.spliceSink(k, fw)
	}
	in := newInbound(c, k, InitialSinkWindow, max(int64(c.window)-InitialSinkWindow, 0))
	c.flow.setIn(k, in)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var werr error
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		_, err := in.writeTo(ctx, w)
		switch {
		case err == nil:
			if onClose != nil {
				if err := onClose(); err != nil {
					werr = ErrComponentFailed.WithMessage("closing sink stream: %v", err)
				}
			}
		case errors.Is(err, context.Canceled), errors.Is(err, ErrConnClosed):
			// released, or the connection is gone: the data is incomplete
			// and the request's answer says why.
		case AsError(err) != nil:
			werr = err // the sender aborted, or broke a rule
		default:
			werr = ErrComponentFailed.WithMessage("writing sink stream: %v", err)
			in.fail(AsError(werr))
		}
		in.discard()
	}()
	return func() error {
		in.mu.Lock()
		ended := in.ended
		in.mu.Unlock()
		if !ended {
			cancel()
		}
		<-done
		cancel()
		c.flow.setIn(k, nil)
		if !ended {
			return nil
		}
		return werr
	}
}

// flowReader reads a source the peer offered, under flow control.
type flowReader struct {
	c   *Conn
	ctx context.Context
	key streamKey
	in  *inbound

	mu      sync.Mutex
	started bool
	spliced *splice
	closed  bool
}

// claim marks a reader that was never read as taken over by a relay.
func (r *flowReader) claim() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return false
	}
	r.started = true
	r.spliced = &splice{}
	return true
}

func (r *flowReader) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return fmt.Errorf("reading stream %s: %w", r.key.h, io.ErrClosedPipe)
	case r.spliced != nil:
		return fmt.Errorf("reading stream %s: it is relayed", r.key.h)
	case r.started:
		return nil
	}
	r.started = true
	r.in = newInbound(r.c, r.key, int64(r.c.window), 0)
	r.c.flow.setIn(r.key, r.in)
	return r.c.sendFlow(MethodStreamCredit, StreamCreditParams{StreamRef: r.key.ref(), Bytes: int64(r.c.window)})
}

func (r *flowReader) Read(p []byte) (int, error) {
	if err := r.begin(); err != nil {
		return 0, err
	}
	n, err := r.in.read(r.ctx, p)
	return n, r.wrap(err)
}

// WriteTo writes the stream to w chunk by chunk, without copying through
// an intermediate buffer; io.Copy uses it.
func (r *flowReader) WriteTo(w io.Writer) (int64, error) {
	if err := r.begin(); err != nil {
		return 0, err
	}
	n, err := r.in.writeTo(r.ctx, w)
	return n, r.wrap(err)
}

func (r *flowReader) wrap(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	if r.ctx.Err() != nil {
		r.Close() //nolint:errcheck // the context's error is the one to report
	}
	return fmt.Errorf("reading stream %s: %w", r.key.h, err)
}

// Close stops reading: when the stream has not ended, the peer gets
// stream/cancel so it can stop producing.
func (r *flowReader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	sp, in := r.spliced, r.in
	r.mu.Unlock()
	if sp != nil {
		return nil // the relay's release settles it
	}
	if in != nil {
		in.mu.Lock()
		ended := in.ended
		in.mu.Unlock()
		r.c.flow.setIn(r.key, nil)
		in.discard()
		if ended {
			return nil
		}
	}
	return r.c.sendFlow(MethodStreamCancel, StreamCancelParams{StreamRef: r.key.ref()})
}

// flowWriter writes to a sink the peer offered, under flow control.
type flowWriter struct {
	c   *Conn
	ctx context.Context
	key streamKey
	out *outbound

	mu      sync.Mutex
	used    bool
	spliced *splice
	closed  bool
}

func (w *flowWriter) claim() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.used || w.closed {
		return false
	}
	w.used = true
	w.spliced = &splice{}
	return true
}

func (w *flowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	closed, sp := w.closed, w.spliced
	w.used = true
	w.mu.Unlock()
	switch {
	case closed:
		return 0, fmt.Errorf("writing stream %s: %w", w.key.h, io.ErrClosedPipe)
	case sp != nil:
		return 0, fmt.Errorf("writing stream %s: it is relayed", w.key.h)
	}
	written := 0
	for len(p) > 0 {
		credit, err := w.out.waitCredit(w.ctx)
		if err != nil {
			if w.ctx.Err() != nil {
				w.abort(ErrCancelled)
			}
			return written, fmt.Errorf("writing stream %s: %w", w.key.h, err)
		}
		n := int(min(credit, int64(len(p)), int64(w.c.chunk)))
		w.out.take(n)
		if err := w.c.sendData(w.key, p[:n]); err != nil {
			return written, fmt.Errorf("writing stream %s: %w", w.key.h, err)
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// ReadFrom sends r's bytes chunk by chunk, reading each straight into the
// buffer it is encoded from; io.Copy uses it.
func (w *flowWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := getChunk()
	defer putChunk(buf)
	var total int64
	for {
		n, rerr := r.Read((*buf)[:w.c.chunk])
		if n > 0 {
			m, err := w.Write((*buf)[:n])
			total += int64(m)
			if err != nil {
				return total, err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (w *flowWriter) abort(e *Error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	w.c.flow.setOut(w.key, nil)
	w.c.sendFlow(MethodStreamEnd, StreamEndParams{StreamRef: w.key.ref(), Error: e}) //nolint:errcheck // best effort
}

// Abort ends the stream with stream/end carrying err (as an *[Error] when it
// is one, else as [ErrComponentFailed]): the data is incomplete. It does
// nothing after Close.
func (w *flowWriter) Abort(err error) {
	e := AsError(err)
	if e == nil {
		e = ErrComponentFailed.WithMessage("%v", err)
	}
	w.abort(e)
}

// Close ends the stream with stream/end: the data is complete.
func (w *flowWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	sp := w.spliced
	w.mu.Unlock()
	w.c.flow.setOut(w.key, nil)
	if sp != nil && !sp.finish() {
		return nil // the relayed end already passed
	}
	return w.c.sendFlow(MethodStreamEnd, StreamEndParams{StreamRef: w.key.ref()})
}

// spliceSource offers, under handle k on c, the peer source that fr reads
// on its own connection: credits and cancels from c's peer go to fr's
// peer, data and end come back, each with the handle rewritten.
func (c *Conn) spliceSource(k streamKey, fr *flowReader) func() error {
	sp := fr.spliced
	a := fr.c
	out := newOutbound(c, k, 0)
	out.relay = &relayTo{c: a, key: fr.key, sp: sp}
	in := newInbound(a, fr.key, 0, 0)
	in.relay = &relayTo{c: c, key: k, sp: sp}
	a.flow.setIn(fr.key, in)
	c.flow.setOut(k, out)
	return func() error {
		c.flow.setOut(k, nil)
		a.flow.setIn(fr.key, nil)
		if sp.finish() {
			a.sendFlow(MethodStreamCancel, StreamCancelParams{StreamRef: fr.key.ref()}) //nolint:errcheck // best effort
		}
		return nil
	}
}

// spliceSink offers, under handle k on c, the peer sink that fw writes on
// its own connection: data and end from c's peer go to fw's peer, credits
// and cancels come back.
func (c *Conn) spliceSink(k streamKey, fw *flowWriter) func() error {
	sp := fw.spliced
	a := fw.c
	in := newInbound(c, k, 0, 0)
	in.relay = &relayTo{c: a, key: fw.key, sp: sp}
	out := newOutbound(a, fw.key, 0)
	out.relay = &relayTo{c: c, key: k, sp: sp}
	a.flow.setOut(fw.key, out)
	c.flow.setIn(k, in)
	return func() error {
		c.flow.setIn(k, nil)
		return nil // fw.Close, or the answer's error, settles fw's side
	}
}
