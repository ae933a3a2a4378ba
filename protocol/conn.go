package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// Request is an incoming request or notification, as a [Handler] sees it.
type Request struct {
	// Method is the method name.
	Method string
	// Params is the raw params member; nil when absent.
	Params json.RawMessage
	// Notification is true when the sender expects no answer.
	Notification bool
	// Conn is the connection the request came in on, for callbacks.
	Conn *Conn
}

// DecodeParams decodes the params into v. Unknown members are an error, as
// is a missing params member. The returned error wraps [ErrInvalidParams].
func (r *Request) DecodeParams(v any) error {
	if len(r.Params) == 0 || isNull(r.Params) {
		return ErrInvalidParams.WithMessage("%s: params are missing", r.Method)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ErrInvalidParams.WithMessage("%s: %v", r.Method, err)
	}
	return nil
}

// Handler answers requests. Handle is called on its own goroutine for every
// request, with a context that is cancelled when the peer cancels the
// request or the connection closes; its result (or error) is the answer. An
// error that is, or wraps, an *[Error] is sent with that code; a context
// error after the peer cancelled becomes [ErrCancelled]; any other error
// becomes [ErrInternal] with the error's text.
//
// Notifications are handled on the connection's read loop, in the order they
// arrive, and must not block; their result and error are discarded (an
// error is logged).
type Handler interface {
	Handle(ctx context.Context, req *Request) (result any, err error)
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (any, error) { return f(ctx, req) }

var _ Handler = HandlerFunc(nil)

// Options configure a [Conn].
type Options struct {
	// Strict ends the connection on the first malformed line from the peer
	// (the host's choice); otherwise malformed lines are answered and
	// skipped (the plugin's choice). See [LineStream]. An answer to a
	// request this side never sent or that was already answered counts as
	// malformed: in strict mode [Conn.Err] is then a *[ViolationError]
	// whose ID is the answer's id; otherwise the answer is logged and
	// dropped.
	Strict bool
	// Tracer, if not nil, records every line in both directions.
	Tracer *Tracer
	// Logger receives the connection's diagnostics: skipped lines, answers
	// that could not be sent. Nil discards them.
	Logger *log.Logger
	// CancelGrace is how long Call waits for the answer to a request after
	// its context is done and $/cancelRequest was sent. Zero means
	// [DefaultCancelGrace].
	CancelGrace time.Duration
	// MaxHandlers bounds how many of the peer's requests are handled at
	// once; zero means no bound. A request over it is answered with
	// [ErrTooManyRequests] from the read loop, without a goroutine, so a
	// peer that floods requests costs no more memory than the bound (and
	// is slowed down by its own answers when it does not read them).
	MaxHandlers int
	// StreamWindow is the window this side grants, per stream, to a peer
	// that sends it a stream's bytes under flow control (protocol version
	// 2): the most bytes in transit or received and not yet consumed.
	// Zero means [DefaultStreamWindow]; it is never less than
	// [InitialSinkWindow].
	StreamWindow int
	// ChunkSize is the most bytes this side puts in one stream chunk.
	// Zero means [MaxChunkSize], which is also the upper bound.
	ChunkSize int
}

// DefaultCancelGrace is the default [Options.CancelGrace].
const DefaultCancelGrace = 5 * time.Second

// Conn is one end of a protocol connection. Both ends are the same: each can
// call the other, each serves the other's calls with its [Handler], and each
// can offer byte streams for the other to read or write.
//
// A Conn serves $/cancelRequest and the stream/* methods itself; every other
// method goes to the Handler.
type Conn struct {
	rpc    *jsonrpc2.Conn
	stream *LineStream
	h      Handler
	logger *log.Logger
	grace  time.Duration

	nextID atomic.Uint64

	mu       sync.Mutex
	inflight map[jsonrpc2.ID]*inflight
	cause    error

	maxHandlers int
	handlers    atomic.Int64 // requests being handled

	streams streamTable
	wg      sync.WaitGroup

	work chan func() // to idle handler goroutines

	version atomic.Int32
	flow    flowTable
	ctl     ctlQueue
	window  int
	chunk   int
}

type inflight struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool
}

// NewConn starts a connection that reads messages from r and writes them to
// w; Close closes c (which should close r and w). It starts reading at once.
// The handler may be nil when the peer is not expected to call.
func NewConn(r io.Reader, w io.Writer, c io.Closer, h Handler, opts Options) *Conn {
	if h == nil {
		h = HandlerFunc(func(context.Context, *Request) (any, error) { return nil, ErrMethodNotFound })
	}
	logger := opts.Logger
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	conn := &Conn{
		h:        h,
		logger:   logger,
		grace:    opts.CancelGrace,
		inflight: map[jsonrpc2.ID]*inflight{},

		maxHandlers: opts.MaxHandlers,
	}
	if conn.grace <= 0 {
		conn.grace = DefaultCancelGrace
	}
	conn.window = opts.StreamWindow
	if conn.window <= 0 {
		conn.window = DefaultStreamWindow
	}
	conn.window = max(conn.window, InitialSinkWindow)
	conn.chunk = opts.ChunkSize
	if conn.chunk <= 0 || conn.chunk > MaxChunkSize {
		conn.chunk = MaxChunkSize
	}
	conn.version.Store(1)
	conn.work = make(chan func())
	conn.streams.m = map[string]*offered{}
	conn.flow.in = map[streamKey]*inbound{}
	conn.flow.out = map[streamKey]*outbound{}
	conn.stream = NewLineStream(r, w, c, opts.Strict, opts.Tracer)
	conn.stream.onData = conn.onDataLine
	conn.stream.hold = true
	conn.stream.sent = newSentTable()
	conn.stream.OnMalformed = func(err error) { logger.Printf("skipped malformed message: %v", err) }
	// jsonrpc2.NewConn starts reading at once; hold the first read back
	// until conn.rpc is set, so no handler can see it unset.
	ready := make(chan struct{})
	conn.rpc = jsonrpc2.NewConn(context.Background(), causeStream{conn.stream, conn, ready}, rpcHandler{conn},
		jsonrpc2.SetLogger(logger), jsonrpc2.OnSend(conn.stream.onSend), jsonrpc2.OnRecv(conn.stream.onRecv))
	close(ready)
	return conn
}

// causeStream records why reading stopped, for [Conn.Err].
type causeStream struct {
	*LineStream
	c     *Conn
	ready <-chan struct{}
}

func (s causeStream) ReadObject(v any) error {
	<-s.ready
	err := s.LineStream.ReadObject(v)
	if err != nil {
		s.c.setCause(err)
	}
	return err
}

func (c *Conn) setCause(err error) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = err
	}
	c.mu.Unlock()
}

// errClosedLocally is the cause recorded when this side called Close.
var errClosedLocally = errors.New("closed by this side")

// Err returns nil while the connection is open. Once it has closed it
// returns why: [io.EOF] when the peer closed its end cleanly, a
// *[ViolationError] when the peer broke the framing in strict mode, another
// read error, or an error saying this side closed it.
func (c *Conn) Err() error {
	select {
	case <-c.rpc.DisconnectNotify():
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause == nil {
		return errClosedLocally
	}
	return c.cause
}

// Done returns a channel that is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.rpc.DisconnectNotify() }

// SetLimits sets the largest message this side accepts (in) and the largest
// the peer accepts (out), as agreed in the handshake. Zero leaves a limit
// unchanged.
func (c *Conn) SetLimits(in, out int64) { c.stream.SetLimits(in, out) }

// Close closes the connection. Calls in flight return [ErrConnClosed];
// handlers in flight see their context cancelled. It does not wait for
// handlers to return: see [Conn.Wait].
func (c *Conn) Close() error {
	c.setCause(errClosedLocally)
	err := c.rpc.Close()
	if errors.Is(err, jsonrpc2.ErrClosed) {
		return nil
	}
	return err
}

// Wait blocks until every handler goroutine started by the connection has
// returned. Call it after Close to be sure no handler still runs.
func (c *Conn) Wait() { c.wg.Wait() }

// closedError wraps ErrConnClosed with the reason the connection closed.
func (c *Conn) closedError() error {
	<-c.rpc.DisconnectNotify()
	cause := c.Err()
	if errors.Is(cause, io.EOF) {
		return fmt.Errorf("%w: peer closed its output", ErrConnClosed)
	}
	return fmt.Errorf("%w: %w", ErrConnClosed, cause)
}

// Call sends a request and waits for its answer, decoding the result into
// result (which may be nil to discard it). An error answer is returned as an
// *[Error]. If ctx is done first, Call sends $/cancelRequest and waits up to
// the cancel grace for the answer, which it then returns as usual (a result
// that arrives after cancelling is still decoded and returned, so nothing
// the peer made is lost); when the grace runs out it returns an error
// wrapping ctx.Err(). The request is then still in flight for the peer: its
// answer, however late, is read and dropped, and is no violation (SPEC §8).
// If the connection closes, the error wraps [ErrConnClosed] and says why.
//
// Each answer the peer sends is matched to its request by the line reader,
// in the order the answers arrive: an answer to a request never sent, or
// already answered, is a violation (see [Options.Strict]). The ids of the
// last 1024 requests given up on are remembered; an answer to an older one
// counts as one to a request already answered.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	id := jsonrpc2.ID{Num: c.nextID.Add(1)}
	w, err := c.rpc.DispatchCall(ctx, method, params, jsonrpc2.PickID(id))
	if err != nil {
		return c.sendError(err)
	}
	err = w.Wait(ctx, result)
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		if nerr := c.rpc.Notify(context.Background(), MethodCancelRequest, CancelParams{ID: json.RawMessage(fmt.Sprint(id.Num))}); nerr != nil {
			return c.waitError(nerr)
		}
		gctx, cancel := context.WithTimeout(context.Background(), c.grace)
		defer cancel()
		err = w.Wait(gctx, result)
		if gctx.Err() != nil && errors.Is(err, gctx.Err()) {
			c.stream.sent.abandon(id)
			return fmt.Errorf("no answer within %v of cancelling: %w", c.grace, ctxErr)
		}
	}
	return c.waitError(err)
}

func (c *Conn) sendError(err error) error {
	var werr *writeError
	switch {
	case errors.Is(err, jsonrpc2.ErrClosed):
		return c.closedError()
	case errors.As(err, &werr):
		// The peer is gone or this side closed the pipe: the reader will
		// see it soon, but a caller must not get a bare "broken pipe"
		// meanwhile. Close, keeping the first cause, and report it.
		c.setCause(err)
		c.rpc.Close()
		return c.closedError()
	}
	return err
}

func (c *Conn) waitError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, jsonrpc2.ErrClosed) {
		return c.closedError()
	}
	return FromWire(err)
}

// Notify sends a notification. It returns once the message is written.
func (c *Conn) Notify(ctx context.Context, method string, params any) error {
	return c.sendError(c.rpc.Notify(ctx, method, params))
}

// rpcHandler adapts a Conn to jsonrpc2.Handler.
type rpcHandler struct{ c *Conn }

func (h rpcHandler) Handle(ctx context.Context, rc *jsonrpc2.Conn, r *jsonrpc2.Request) {
	c := h.c
	req := &Request{Method: r.Method, Notification: r.Notif, Conn: c}
	if r.Params != nil {
		req.Params = *r.Params
	}
	if !r.Notif && IsNotificationMethod(r.Method) {
		// A notification method sent as a request is not acted upon
		// (SPEC §1.2).
		c.reply(ctx, r.ID, nil, ErrMethodNotFound.WithMessage("%s is a notification: send it without an id", r.Method), nil)
		return
	}
	if r.Method == MethodCancelRequest {
		c.cancelInflight(req)
		return
	}
	if r.Notif && isFlowMethod(r.Method) && c.flowOn() {
		c.flowNotification(req)
		return
	}
	if r.Notif {
		if !IsNotificationMethod(r.Method) {
			c.logger.Printf("ignoring %s sent as a notification: it is a request method", r.Method)
			return
		}
		if _, err := c.dispatch(ctx, req); err != nil {
			c.logger.Printf("notification %s: %v", r.Method, err)
		}
		return
	}
	if c.maxHandlers > 0 && c.handlers.Load() >= int64(c.maxHandlers) {
		c.reply(ctx, r.ID, nil, ErrTooManyRequests.WithMessage("%s: %d of your requests are already being handled; send it again once one is answered", r.Method, c.maxHandlers), nil)
		return
	}
	c.handlers.Add(1)
	rctx, cancel := context.WithCancel(ctx)
	fl := &inflight{cancel: cancel}
	c.mu.Lock()
	c.inflight[r.ID] = fl
	c.mu.Unlock()
	c.run(func() {
		defer cancel()
		res, err := c.dispatch(rctx, req)
		c.mu.Lock()
		delete(c.inflight, r.ID)
		c.mu.Unlock()
		c.reply(ctx, r.ID, res, err, fl)
		c.handlers.Add(-1)
	})
}

// run runs f, a request's handler, on an idle handler goroutine, or on a
// new one when none is idle. Handler goroutines are kept once started
// (their stacks already grown) until the connection closes, so a steady
// flow of requests starts none; there are never more of them than requests
// were once in flight at the same time.
func (c *Conn) run(f func()) {
	select {
	case c.work <- f:
	default:
		c.wg.Add(1)
		go c.worker(f)
	}
}

func (c *Conn) worker(f func()) {
	defer c.wg.Done()
	for {
		f()
		f = nil
		select {
		case f = <-c.work:
		case <-c.rpc.DisconnectNotify():
			return
		}
	}
}

func (c *Conn) dispatch(ctx context.Context, req *Request) (any, error) {
	switch req.Method {
	case MethodStreamRead, MethodStreamWrite, MethodStreamClose:
		return c.serveStream(ctx, req)
	}
	return c.h.Handle(ctx, req)
}

func (c *Conn) cancelInflight(req *Request) {
	var p CancelParams
	if err := req.DecodeParams(&p); err != nil {
		c.logger.Printf("%v", err)
		return
	}
	var id jsonrpc2.ID
	if err := json.Unmarshal(p.ID, &id); err != nil {
		return // not an id this side ever uses: nothing to cancel
	}
	if p.ID[0] == '"' {
		id.IsString = true
	}
	c.mu.Lock()
	fl := c.inflight[id]
	c.mu.Unlock()
	if fl != nil {
		fl.cancelled.Store(true)
		fl.cancel()
	}
}

// reply sends the answer to a request, mapping err to a wire error.
func (c *Conn) reply(ctx context.Context, id jsonrpc2.ID, res any, err error, fl *inflight) {
	if err == nil {
		err = c.rpc.Reply(ctx, id, res)
		if err == nil || errors.Is(err, jsonrpc2.ErrClosed) {
			return
		}
		c.logger.Printf("answer to request %s could not be sent: %v", id, err)
		if AsError(err) == nil {
			return // a write error: the connection is going away
		}
	}
	werr := AsError(err)
	switch {
	case fl != nil && fl.cancelled.Load() && errors.Is(err, context.Canceled):
		werr = ErrCancelled
	case werr != nil:
	default:
		werr = ErrInternal.WithMessage("%v", err)
	}
	err = c.rpc.ReplyWithError(ctx, id, werr.Wire())
	if tooLarge := AsError(err); tooLarge != nil && errors.Is(tooLarge, ErrMessageTooLarge) {
		// An error answer over the peer's limit (a long list of
		// configuration errors) is replaced by -32009 (SPEC §3.2), which
		// is short: the peer must not wait for an answer that never comes.
		c.logger.Printf("error answer to request %s (code %d) replaced by %d: %v", id, werr.Code, CodeMessageTooLarge, tooLarge)
		err = c.rpc.ReplyWithError(ctx, id, tooLarge.Wire())
	}
	if err != nil && !errors.Is(err, jsonrpc2.ErrClosed) {
		c.logger.Printf("error answer to request %s could not be sent: %v", id, err)
	}
}
