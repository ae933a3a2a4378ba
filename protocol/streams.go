package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Byte streams carry file contents and command output between processes in
// chunks, with backpressure: a chunk is only sent when the other side asks
// for it (stream/read) or has acknowledged the previous one (stream/write),
// so memory stays bounded whatever the size of the data.
//
// A stream is offered by the process that holds the data's local end: a
// source (something to read from) or a sink (something to write to). Offering
// mints a handle, valid on this connection only, that the peer names in
// stream/read, stream/write and stream/close. The offering side releases the
// handle when the request that carried it has been answered.

type streamTable struct {
	mu   sync.Mutex
	next uint64
	m    map[string]*offered
}

type offered struct {
	mu      sync.Mutex // one operation at a time per stream
	r       io.Reader
	w       io.Writer
	onClose func() error
	eof     bool
	closed  bool
}

func (c *Conn) mintStream() string {
	t := &c.streams
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	return "s" + strconv.FormatUint(t.next, 10)
}

func (c *Conn) offer(o *offered) (string, func() error) {
	h := c.mintStream()
	t := &c.streams
	t.mu.Lock()
	t.m[h] = o
	t.mu.Unlock()
	return h, func() error {
		t.mu.Lock()
		delete(t.m, h)
		t.mu.Unlock()
		return nil
	}
}

// OfferReader offers r as a source stream and returns its handle and a
// release function to call once the request that carried the handle is
// answered. The peer reads r (through stream/read in protocol version 1;
// in version 2 this side pushes r's bytes within the credit the peer
// grants); if the peer stops before the end, onClose (which may be nil) is
// called.
//
// When r is a reader from [Conn.RemoteReader] on another connection that
// has not been read yet, and both connections use protocol version 2, the
// stream is relayed: each chunk is forwarded from one peer to the other
// with the handle rewritten and the payload untouched.
//
// release returns nil: it has the type of [Conn.OfferWriter]'s for symmetry.
func (c *Conn) OfferReader(r io.Reader, onClose func() error) (handle string, release func() error) {
	if c.flowOn() {
		h := c.mintStream()
		return h, c.offerSource(h, r, onClose)
	}
	return c.offer(&offered{r: r, onClose: onClose})
}

// OfferWriter offers w as a sink stream and returns its handle and a release
// function to call once the request that carried the handle is answered.
// The peer writes to w and signals the end of the data, on which onClose
// (which may be nil) is called. In protocol version 2 the bytes are written
// to w by a goroutine of the connection, within the window this side
// grants; release then waits for the bytes received to be written and
// returns the error of writing them or of onClose.
//
// When w is a writer from [Conn.RemoteWriter] on another connection that
// has not been written yet, and both connections use protocol version 2,
// the stream is relayed as for [Conn.OfferReader].
func (c *Conn) OfferWriter(w io.Writer, onClose func() error) (handle string, release func() error) {
	if c.flowOn() {
		h := c.mintStream()
		return h, c.offerSink(h, w, onClose)
	}
	return c.offer(&offered{w: w, onClose: onClose})
}

func (c *Conn) lookupStream(h string) (*offered, error) {
	c.streams.mu.Lock()
	o := c.streams.m[h]
	c.streams.mu.Unlock()
	if o == nil {
		return nil, ErrUnknownHandle.WithMessage("no stream %q", h)
	}
	return o, nil
}

func (c *Conn) serveStream(ctx context.Context, req *Request) (any, error) {
	switch req.Method {
	case MethodStreamRead:
		var p StreamReadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if p.Max < 1 || p.Max > MaxChunkSize {
			return nil, ErrInvalidParams.WithMessage("stream/read: max must be from 1 to %d, got %d", MaxChunkSize, p.Max)
		}
		o, err := c.lookupStream(p.Stream)
		if err != nil {
			return nil, err
		}
		if o.r == nil {
			return nil, ErrInvalidParams.WithMessage("stream/read: stream %q is a sink", p.Stream)
		}
		return o.read(p.Max)
	case MethodStreamWrite:
		var p StreamWriteParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if len(p.Data) > MaxChunkSize {
			return nil, ErrInvalidParams.WithMessage("stream/write: chunk of %d bytes exceeds %d", len(p.Data), MaxChunkSize)
		}
		o, err := c.lookupStream(p.Stream)
		if err != nil {
			return nil, err
		}
		if o.w == nil {
			return nil, ErrInvalidParams.WithMessage("stream/write: stream %q is a source", p.Stream)
		}
		return nil, o.write(p.Data)
	default: // MethodStreamClose
		var p StreamCloseParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		o, err := c.lookupStream(p.Stream)
		if err != nil {
			return nil, err
		}
		return nil, o.close()
	}
}

func (o *offered) read(max int) (*StreamReadResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.eof || o.closed {
		return &StreamReadResult{Data: []byte{}, EOF: true}, nil
	}
	buf := make([]byte, max)
	for {
		n, err := o.r.Read(buf)
		if errors.Is(err, io.EOF) {
			o.eof = true
			return &StreamReadResult{Data: buf[:n], EOF: true}, nil
		}
		if err != nil {
			return nil, ErrComponentFailed.WithMessage("reading source stream: %v", err)
		}
		if n > 0 {
			return &StreamReadResult{Data: buf[:n]}, nil
		}
	}
}

func (o *offered) write(data []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrInvalidParams.WithMessage("stream/write: stream is closed")
	}
	if _, err := o.w.Write(data); err != nil {
		return ErrComponentFailed.WithMessage("writing sink stream: %v", err)
	}
	return nil
}

func (o *offered) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	if o.onClose != nil && !(o.r != nil && o.eof) {
		if err := o.onClose(); err != nil {
			return ErrComponentFailed.WithMessage("closing stream: %v", err)
		}
	}
	return nil
}

// RemoteReader returns a reader of the source stream the peer offered under
// handle. Each Read that finds no buffered bytes asks the peer for the next
// chunk with stream/read, under ctx. Close tells the peer, with
// stream/close, when the reader stops before the end.
//
// In protocol version 2 the first Read grants the peer a window and the
// peer pushes the bytes; Close sends stream/cancel when the stream has not
// ended.
func (c *Conn) RemoteReader(ctx context.Context, handle string) io.ReadCloser {
	if c.flowOn() {
		return &flowReader{c: c, ctx: ctx, key: streamKey{h: handle}}
	}
	return &remoteReader{c: c, ctx: ctx, handle: handle}
}

type remoteReader struct {
	c      *Conn
	ctx    context.Context
	handle string
	buf    []byte
	eof    bool
	err    error
	closed bool
}

func (r *remoteReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.eof {
			return 0, io.EOF
		}
		var res StreamReadResult
		if err := r.c.Call(r.ctx, MethodStreamRead, StreamReadParams{Stream: r.handle, Max: MaxChunkSize}, &res); err != nil {
			r.err = fmt.Errorf("reading stream %s: %w", r.handle, err)
			return 0, r.err
		}
		if len(res.Data) > MaxChunkSize {
			r.err = ErrInvalidParams.WithMessage("stream/read returned %d bytes, more than the %d asked", len(res.Data), MaxChunkSize)
			return 0, r.err
		}
		r.buf, r.eof = res.Data, res.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *remoteReader) Close() error {
	if r.closed || r.eof {
		r.closed = true
		return nil
	}
	r.closed = true
	return r.c.Call(r.ctx, MethodStreamClose, StreamCloseParams{Stream: r.handle}, nil)
}

// RemoteWriter returns a writer to the sink stream the peer offered under
// handle. Write sends the bytes in chunks of at most [MaxChunkSize], each
// with stream/write, waiting for each to be acknowledged. Close sends
// stream/close, which tells the peer the data is complete.
//
// In protocol version 2 Write sends stream/data notifications within the
// credit the peer grants, waiting under ctx for more; Close sends
// stream/end.
func (c *Conn) RemoteWriter(ctx context.Context, handle string) io.WriteCloser {
	if c.flowOn() {
		k := streamKey{sink: true, h: handle}
		out := newOutbound(c, k, InitialSinkWindow)
		c.flow.setOut(k, out)
		return &flowWriter{c: c, ctx: ctx, key: k, out: out}
	}
	return &remoteWriter{c: c, ctx: ctx, handle: handle}
}

type remoteWriter struct {
	c      *Conn
	ctx    context.Context
	handle string
	closed bool
}

func (w *remoteWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("writing stream %s: %w", w.handle, io.ErrClosedPipe)
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), MaxChunkSize)
		if err := w.c.Call(w.ctx, MethodStreamWrite, StreamWriteParams{Stream: w.handle, Data: p[:n]}, nil); err != nil {
			return written, fmt.Errorf("writing stream %s: %w", w.handle, err)
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

func (w *remoteWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.c.Call(w.ctx, MethodStreamClose, StreamCloseParams{Stream: w.handle}, nil)
}
