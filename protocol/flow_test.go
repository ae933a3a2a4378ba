package protocol_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/protocol"
)

// osPipeConns returns two connected Conns over real OS pipes, both speaking
// protocol version v.
func osPipeConns(t *testing.T, v int, ha, hb protocol.Handler, oa, ob protocol.Options) (a, b *protocol.Conn) {
	t.Helper()
	ar, bw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	br, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a = protocol.NewConn(ar, aw, closers{ar, aw}, ha, oa)
	b = protocol.NewConn(br, bw, closers{br, bw}, hb, ob)
	a.SetProtocolVersion(v)
	b.SetProtocolVersion(v)
	t.Cleanup(func() {
		a.Close()
		b.Close()
		a.Wait()
		b.Wait()
	})
	return a, b
}

// data returns a reader of n pseudo-random bytes chosen by seed.
func data(seed uint64, n int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

func sum(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

type uploadParams struct {
	Source string `json:"source"`
}

type downloadParams struct {
	Sink string `json:"sink"`
	Seed uint64 `json:"seed"`
	Size int64  `json:"size"`
}

type sumResult struct {
	Sum  string `json:"sum"`
	Size int64  `json:"size"`
}

// streamServer reads sources to their end ("upload", answering their
// checksum) and writes pseudo-random bytes to sinks ("download").
var streamServer = protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
	switch req.Method {
	case "upload":
		var p uploadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		r := req.Conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		s, n, err := sum(r)
		if err != nil {
			return nil, err
		}
		return sumResult{s, n}, nil
	case "download":
		var p downloadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		w := req.Conn.RemoteWriter(ctx, p.Sink)
		if _, err := io.Copy(w, data(p.Seed, p.Size)); err != nil {
			return nil, err
		}
		return nil, w.Close()
	}
	return nil, protocol.ErrMethodNotFound
})

// upload offers seed's data as a source and returns the peer's checksum.
func upload(ctx context.Context, c *protocol.Conn, seed uint64, size int64) (sumResult, error) {
	h, release := c.OfferReader(data(seed, size), nil)
	defer release()
	var res sumResult
	err := c.Call(ctx, "upload", uploadParams{h}, &res)
	return res, err
}

// download offers a sink, has the peer write seed's data to it and returns
// the checksum of what arrived.
func download(ctx context.Context, c *protocol.Conn, seed uint64, size int64) (sumResult, error) {
	pr, pw := io.Pipe()
	got := make(chan sumResult, 1)
	go func() {
		s, n, _ := sum(pr)
		got <- sumResult{s, n}
	}()
	h, release := c.OfferWriter(pw, pw.Close)
	err := c.Call(ctx, "download", downloadParams{Sink: h, Seed: seed, Size: size}, nil)
	if rerr := release(); err == nil {
		err = rerr
	}
	pw.CloseWithError(errors.New("released"))
	return <-got, err
}

func want(seed uint64, size int64) sumResult {
	s, n, _ := sum(data(seed, size))
	return sumResult{s, n}
}

func TestFlowRoundTrip(t *testing.T) {
	tests := []struct {
		name          string
		version       int
		window, chunk int
		size          int64
		streams       int
	}{
		{name: "empty", version: 2, size: 0, streams: 1},
		{name: "one byte", version: 2, size: 1, streams: 1},
		{name: "defaults", version: 2, size: 1<<20 + 17, streams: 1},
		{name: "smallest window", version: 2, window: protocol.InitialSinkWindow, size: 700<<10 + 1, streams: 1},
		{name: "window of 2 MiB", version: 2, window: 2 << 20, size: 2<<20 + 300<<10, streams: 1},
		{name: "chunks of 1 byte", version: 2, chunk: 1, size: 2000, streams: 1},
		{name: "chunks of 4 KiB", version: 2, chunk: 4096, size: 256<<10 + 5, streams: 1},
		{name: "odd chunks", version: 2, chunk: 100_003, window: 300_000, size: 700 << 10, streams: 1},
		{name: "interleaved", version: 2, chunk: 65536, size: 300<<10 + 3, streams: 4},
		{name: "interleaved, version 1", version: 1, size: 200<<10 + 3, streams: 2},
		{name: "version 1", version: 1, size: 300<<10 + 9, streams: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := protocol.Options{StreamWindow: tt.window, ChunkSize: tt.chunk}
			a, b := osPipeConns(t, tt.version, streamServer, streamServer, opts, opts)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 4*tt.streams)
			for i := range tt.streams {
				for _, c := range []*protocol.Conn{a, b} {
					wg.Add(2)
					seed := uint64(i + 1)
					size := tt.size + int64(i)
					go func() {
						defer wg.Done()
						got, err := upload(ctx, c, seed, size)
						if err == nil {
							if diff := cmp.Diff(want(seed, size), got); diff != "" {
								err = fmt.Errorf("upload %d (-want +got):\n%s", seed, diff)
							}
						}
						errs <- err
					}()
					go func() {
						defer wg.Done()
						got, err := download(ctx, c, seed, size)
						if err == nil {
							if diff := cmp.Diff(want(seed, size), got); diff != "" {
								err = fmt.Errorf("download %d (-want +got):\n%s", seed, diff)
							}
						}
						errs <- err
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// countingReader yields zeros without end and counts what it produced.
type countingReader struct{ n atomic.Int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	clear(p)
	r.n.Add(int64(len(p)))
	return len(p), nil
}

// waitSettled waits until f stops changing, and returns its value.
func waitSettled(t *testing.T, f func() int64) int64 {
	t.Helper()
	last := int64(-1)
	for i := 0; i < 400; i++ {
		time.Sleep(5 * time.Millisecond)
		v := f()
		if v == last && v > 0 {
			return v
		}
		last = v
	}
	return f()
}

func TestFlowSlowReaderHoldsSenderAtWindow(t *testing.T) {
	const window = 512 << 10
	hold := make(chan struct{})
	var consumed atomic.Int64
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		switch req.Method {
		case "slow-upload":
			var p uploadParams
			req.DecodeParams(&p)
			r := req.Conn.RemoteReader(ctx, p.Source)
			defer r.Close()
			buf := make([]byte, 10)
			n, err := io.ReadFull(r, buf)
			consumed.Add(int64(n))
			if err != nil {
				return nil, err
			}
			<-hold
			return nil, nil
		case "slow-download":
			var p downloadParams
			req.DecodeParams(&p)
			w := req.Conn.RemoteWriter(ctx, p.Sink)
			_, err := io.Copy(w, p2Source)
			return nil, err
		}
		return nil, protocol.ErrMethodNotFound
	})
	a, _ := osPipeConns(t, 2, nil, h, protocol.Options{StreamWindow: window}, protocol.Options{StreamWindow: window})

	t.Run("source", func(t *testing.T) {
		src := &countingReader{}
		handle, release := a.OfferReader(src, nil)
		defer release()
		done := make(chan error, 1)
		go func() { done <- a.Call(context.Background(), "slow-upload", uploadParams{handle}, nil) }()
		produced := waitSettled(t, src.n.Load)
		if produced > window {
			t.Errorf("the sender read %d bytes of its source while the reader held a window of %d", produced, window)
		}
		if produced < window/2 {
			t.Errorf("the sender read only %d bytes with a window of %d", produced, window)
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("sink", func(t *testing.T) {
		block := make(chan struct{})
		var written atomic.Int64
		w := writerFunc(func(p []byte) (int, error) {
			<-block
			written.Add(int64(len(p)))
			return len(p), nil
		})
		handle, release := a.OfferWriter(w, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Call(ctx, "slow-download", downloadParams{Sink: handle}, nil) }()
		produced := waitSettled(t, p2Source.n.Load)
		// The writer may hold one chunk read from its source beyond the
		// credit; the receiver holds at most its window.
		if limit := int64(window + protocol.MaxChunkSize); produced > limit {
			t.Errorf("the writer produced %d bytes while the receiver's window was %d", produced, window)
		}
		cancel()
		close(block)
		if err := <-done; !errors.Is(err, protocol.ErrCancelled) {
			t.Errorf("cancelled download: got %v, want ErrCancelled", err)
		}
		release()
	})
}

var p2Source = &countingReader{}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestFlowCancelMidStream(t *testing.T) {
	t.Run("the reader stops early", func(t *testing.T) {
		h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
			var p uploadParams
			req.DecodeParams(&p)
			r := req.Conn.RemoteReader(ctx, p.Source)
			buf := make([]byte, 1000)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			return nil, r.Close()
		})
		a, _ := osPipeConns(t, 2, nil, h, protocol.Options{}, protocol.Options{})
		closed := make(chan struct{})
		handle, release := a.OfferReader(&countingReader{}, func() error { close(closed); return nil })
		defer release()
		if err := a.Call(context.Background(), "m", uploadParams{handle}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the source's offerer was not told the reader stopped")
		}
	})

	t.Run("the requester cancels while the peer writes", func(t *testing.T) {
		werr := make(chan error, 1)
		started := make(chan struct{})
		h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
			var p downloadParams
			req.DecodeParams(&p)
			w := req.Conn.RemoteWriter(ctx, p.Sink)
			close(started)
			_, err := io.Copy(w, &countingReader{})
			werr <- err
			return nil, err
		})
		a, _ := osPipeConns(t, 2, nil, h, protocol.Options{}, protocol.Options{})
		handle, release := a.OfferWriter(io.Discard, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Call(ctx, "m", downloadParams{Sink: handle}, nil) }()
		<-started
		cancel()
		if err := <-done; !errors.Is(err, protocol.ErrCancelled) {
			t.Errorf("call: got %v, want ErrCancelled", err)
		}
		if err := <-werr; !errors.Is(err, context.Canceled) {
			t.Errorf("the writer's error: got %v, want context.Canceled", err)
		}
		if err := release(); !errors.Is(err, protocol.ErrCancelled) {
			t.Errorf("release: got %v, want the sink aborted with ErrCancelled", err)
		}
	})

	t.Run("the receiver's sink fails", func(t *testing.T) {
		h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
			var p downloadParams
			req.DecodeParams(&p)
			w := req.Conn.RemoteWriter(ctx, p.Sink)
			_, err := io.Copy(w, &countingReader{})
			return nil, err
		})
		a, _ := osPipeConns(t, 2, nil, h, protocol.Options{}, protocol.Options{})
		var n atomic.Int64
		full := writerFunc(func(p []byte) (int, error) {
			if n.Add(int64(len(p))) > 1<<20 {
				return 0, errors.New("no space left on device")
			}
			return len(p), nil
		})
		handle, release := a.OfferWriter(full, nil)
		err := a.Call(context.Background(), "m", downloadParams{Sink: handle}, nil)
		release()
		if !errors.Is(err, protocol.ErrComponentFailed) || !strings.Contains(err.Error(), "no space left on device") {
			t.Errorf("got %v, want the writer to fail with the sink's -32007", err)
		}
	})
}

func TestFlowAbortWithError(t *testing.T) {
	a, _ := osPipeConns(t, 2, nil, streamServer, protocol.Options{}, protocol.Options{})
	failing := io.MultiReader(data(1, 700_000), errReader{errors.New("input/output error")})
	handle, release := a.OfferReader(failing, nil)
	defer release()
	err := a.Call(context.Background(), "upload", uploadParams{handle}, nil)
	if !errors.Is(err, protocol.ErrComponentFailed) || !strings.Contains(err.Error(), "reading source stream: input/output error") {
		t.Errorf("got %v, want the reader to see the source's -32007", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// rawPeer is the other end of a Conn, driven line by line by the test.
type rawPeer struct {
	t     *testing.T
	lines chan string
	w     io.Writer
}

func newRawPeer(t *testing.T, h protocol.Handler, opts protocol.Options) (*protocol.Conn, *rawPeer) {
	t.Helper()
	cr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := protocol.NewConn(cr, cw, closers{cr, cw}, h, opts)
	c.SetProtocolVersion(2)
	p := &rawPeer{t: t, lines: make(chan string, 1000), w: pw}
	go func() {
		defer close(p.lines)
		s := protocol.NewLineStream(pr, io.Discard, nil, false, nil)
		s.SetLimits(8<<20, 0)
		for {
			var m json.RawMessage
			if err := s.ReadObject(&m); err != nil {
				return
			}
			p.lines <- string(m)
		}
	}()
	t.Cleanup(func() {
		pw.Close()
		c.Close()
		c.Wait()
		pr.Close()
	})
	return c, p
}

func (p *rawPeer) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.w, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// expect returns the next line that contains sub, skipping others.
func (p *rawPeer) expect(sub string) string {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("connection closed while waiting for %s", sub)
			}
			if strings.Contains(l, sub) {
				return l
			}
		case <-timeout:
			p.t.Fatalf("no line with %s", sub)
		}
	}
}

func TestFlowNoCredit(t *testing.T) {
	t.Run("the call's deadline ends a source nobody reads", func(t *testing.T) {
		c, p := newRawPeer(t, nil, protocol.Options{CancelGrace: 100 * time.Millisecond})
		handle, release := c.OfferReader(&countingReader{}, nil)
		defer release()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := c.Call(ctx, "upload", uploadParams{handle}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the deadline", err)
		}
		p.expect(`"method":"upload"`)
		p.expect(`"$/cancelRequest"`)
	})

	t.Run("a sink that never grants more credit", func(t *testing.T) {
		werr := make(chan error, 1)
		h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
			w := req.Conn.RemoteWriter(ctx, "k1")
			_, err := io.Copy(w, io.LimitReader(&countingReader{}, 4<<20))
			werr <- err
			return nil, err
		})
		_, p := newRawPeer(t, h, protocol.Options{})
		p.send(`{"jsonrpc":"2.0","id":1,"method":"download","params":{"sink":"k1"}}`)
		var got int
		for got < protocol.InitialSinkWindow {
			l := p.expect(`"method":"stream/data"`)
			var m struct {
				Params protocol.StreamDataParams `json:"params"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			got += len(m.Params.Data)
		}
		if got != protocol.InitialSinkWindow {
			t.Errorf("the writer sent %d bytes with an initial credit of %d", got, protocol.InitialSinkWindow)
		}
		p.send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}`)
		end := p.expect(`"method":"stream/end"`)
		if !strings.Contains(end, `"sink":"k1"`) || !strings.Contains(end, `-32006`) {
			t.Errorf("after cancel: %s, want stream/end of k1 with -32006", end)
		}
		p.expect(`"id":1,"error":{"code":-32006`)
		if err := <-werr; !errors.Is(err, context.Canceled) {
			t.Errorf("writer: got %v, want context.Canceled", err)
		}
	})
}

func TestFlowWindowBrokenAndOtherSpellings(t *testing.T) {
	type result struct {
		data string
		err  error
	}
	res := make(chan result, 1)
	more := make(chan struct{})
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		r := req.Conn.RemoteReader(ctx, "p1")
		head := make([]byte, len("hello? world!"))
		if _, err := io.ReadFull(r, head); err != nil {
			res <- result{string(head), err}
			return nil, nil
		}
		<-more
		rest, err := io.ReadAll(r)
		res <- result{string(head) + string(rest), err}
		return nil, nil
	})
	_, p := newRawPeer(t, h, protocol.Options{StreamWindow: protocol.InitialSinkWindow})
	p.send(`{"jsonrpc":"2.0","id":1,"method":"upload","params":{"source":"p1"}}`)
	credit := p.expect(`"method":"stream/credit"`)
	if diff := cmp.Diff(`{"jsonrpc":"2.0","method":"stream/credit","params":{"source":"p1","bytes":262144}}`, credit); diff != "" {
		t.Errorf("first credit (-want +got):\n%s", diff)
	}
	// Other valid spellings: an escaped solidus, members reordered, a space.
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"aGVsbG8\/"}}`)
	p.send(`{"params":{"data":"IHdvcmxk","source":"p1"},"method":"stream/data","jsonrpc":"2.0"}`)
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"IQ=="} }`)
	// An unknown stream, and a sink nobody offered: discarded.
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"nope","data":"eA=="}}`)
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"sink":"p1","data":"eA=="}}`)
	// The window holds the first big chunk; the second is more than the
	// credit left: discarded, and the stream is cancelled.
	big := strings.Repeat("A", 4*(protocol.MaxChunkSize/3))
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"` + big + `"}}`)
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"` + big + `"}}`)
	cancel := p.expect(`"method":"stream/cancel"`)
	var m struct {
		Params protocol.StreamCancelParams `json:"params"`
	}
	if err := json.Unmarshal([]byte(cancel), &m); err != nil {
		t.Fatal(err)
	}
	if m.Params.Source != "p1" || m.Params.Error == nil || m.Params.Error.Code != protocol.CodeInvalidParams {
		t.Errorf("cancel: %s, want source p1 with -32602", cancel)
	}
	// Data after the cancel is discarded.
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"eA=="}}`)
	close(more)
	got := <-res
	wantData := "hello? world!" + strings.Repeat("\x00", protocol.MaxChunkSize-1)
	if got.data != wantData || !errors.Is(got.err, protocol.ErrInvalidParams) {
		t.Errorf("reader got %d bytes (%q...), %v; want %d bytes and ErrInvalidParams", len(got.data), got.data[:min(20, len(got.data))], got.err, len(wantData))
	}
	p.expect(`"id":1,"result":null`)
}

// TestFlowRelay: a middle process relays a stream from one peer to another,
// offering on one connection the stream it reads or writes on the other,
// for every mix of protocol versions. With version 2 on both sides the
// stream is spliced (chunks forwarded with the handle rewritten); otherwise
// the middle reads on one side and writes on the other.
//
// With version 2 on both sides, a chunk whose handle has the same length on
// both sides is forwarded from the read buffer with the handle rewritten in
// place; skew mints streams on the second connection first, so that its
// handles are longer and chunks are copied.
func TestFlowRelay(t *testing.T) {
	for _, tc := range []struct {
		v    [2]int
		skew int
	}{{[2]int{2, 2}, 0}, {[2]int{2, 2}, 9}, {[2]int{1, 2}, 0}, {[2]int{2, 1}, 0}, {[2]int{1, 1}, 0}} {
		v := tc.v
		t.Run(fmt.Sprintf("versions %d and %d, skew %d", v[0], v[1], tc.skew), func(t *testing.T) {
			var toB *protocol.Conn
			middle := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
				switch req.Method {
				case "upload":
					var p uploadParams
					req.DecodeParams(&p)
					r := req.Conn.RemoteReader(ctx, p.Source)
					defer r.Close()
					h, release := toB.OfferReader(r, nil)
					defer release()
					var res sumResult
					err := toB.Call(ctx, "upload", uploadParams{h}, &res)
					return res, err
				case "download":
					var p downloadParams
					req.DecodeParams(&p)
					w := req.Conn.RemoteWriter(ctx, p.Sink)
					h, release := toB.OfferWriter(w, nil)
					err := toB.Call(ctx, "download", downloadParams{Sink: h, Seed: p.Seed, Size: p.Size}, nil)
					if rerr := release(); err == nil {
						err = rerr
					}
					if err != nil {
						return nil, err
					}
					return nil, w.Close()
				}
				return nil, protocol.ErrMethodNotFound
			})
			opts := protocol.Options{ChunkSize: 100_000}
			p, _ := osPipeConns(t, v[0], nil, middle, opts, protocol.Options{})
			toB, _ = osPipeConns(t, v[1], nil, streamServer, protocol.Options{}, protocol.Options{StreamWindow: 300_000})
			for range tc.skew {
				_, release := toB.OfferReader(strings.NewReader(""), nil)
				release()
			}
			const size = 700<<10 + 11
			ctx := context.Background()
			got, err := upload(ctx, p, 3, size)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want(3, size), got); diff != "" {
				t.Errorf("upload through the relay (-want +got):\n%s", diff)
			}
			got, err = download(ctx, p, 4, size)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want(4, size), got); diff != "" {
				t.Errorf("download through the relay (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFlowRawCarriageReturnInData: a payload with a raw "\r" (which the
// base64 decoder would skip) makes the line invalid JSON, whether or not
// what is left decodes: it is answered as such and delivers nothing.
func TestFlowRawCarriageReturnInData(t *testing.T) {
	res := make(chan string, 1)
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		b, err := io.ReadAll(req.Conn.RemoteReader(ctx, "p1"))
		if err != nil {
			return nil, err
		}
		res <- string(b)
		return nil, nil
	})
	_, p := newRawPeer(t, h, protocol.Options{})
	p.send(`{"jsonrpc":"2.0","id":1,"method":"upload","params":{"source":"p1"}}`)
	p.expect(`"method":"stream/credit"`)
	for _, payload := range []string{
		"A\rAAA",           // decodes, once the "\r" is skipped, to 3 bytes: len/4*3
		"aGVs\r\r\r\rbG8h", // a multiple of 4 long either way
		"aGVsbG8h\r\r\r\r", // the "\r"s at the end
		"aGVsbG8\r",        // does not decode
	} {
		p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"` + payload + `"}}`)
		if answer := p.expect(`"error"`); !strings.Contains(answer, `"code":-32700`) {
			t.Errorf("data %q answered %s, want -32700", payload, answer)
		}
	}
	p.send(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"p1","data":"aGVsbG8h"}}`)
	p.send(`{"jsonrpc":"2.0","method":"stream/end","params":{"source":"p1"}}`)
	if got := <-res; got != "hello!" {
		t.Errorf("reader got %q, want %q", got, "hello!")
	}
}

// sizeRecorder hashes what is written and records the size of each Write.
type sizeRecorder struct {
	h     hash.Hash
	sizes []int
}

func (r *sizeRecorder) Write(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	return r.h.Write(p)
}

// TestFlowWriteToPieces: io.Copy from a stream reader hands the writer each
// chunk as it arrived, in Writes of at most 128 KiB (a 256 KiB chunk in
// two), and the bytes are all there.
func TestFlowWriteToPieces(t *testing.T) {
	rec := &sizeRecorder{h: sha256.New()}
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		var p uploadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		r := req.Conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		n, err := io.Copy(rec, r)
		return sumResult{Sum: hex.EncodeToString(rec.h.Sum(nil)), Size: n}, err
	})
	a, _ := osPipeConns(t, 2, nil, h, protocol.Options{}, protocol.Options{})
	const size = 3*protocol.MaxChunkSize + 5
	got, err := upload(context.Background(), a, 7, size)
	if err != nil {
		t.Fatal(err)
	}
	wantSum, _, _ := sum(data(7, size))
	if diff := cmp.Diff(sumResult{Sum: wantSum, Size: size}, got); diff != "" {
		t.Errorf("upload (-want +got):\n%s", diff)
	}
	if !slices.Contains(rec.sizes, 128<<10) || slices.Max(rec.sizes) > 128<<10 {
		t.Errorf("write sizes %v: want pieces of at most 128 KiB, some of exactly that", rec.sizes)
	}
}
