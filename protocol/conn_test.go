package protocol_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/protocol"
)

type pipeCloser struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipeCloser) Close() error {
	p.r.Close()
	return p.w.Close()
}

// connPair returns two connected Conns over in-memory pipes.
func connPair(t *testing.T, ha, hb protocol.Handler) (a, b *protocol.Conn) {
	t.Helper()
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	a = protocol.NewConn(ar, aw, pipeCloser{ar, aw}, ha, protocol.Options{Strict: true, CancelGrace: 2 * time.Second})
	b = protocol.NewConn(br, bw, pipeCloser{br, bw}, hb, protocol.Options{})
	t.Cleanup(func() {
		a.Close()
		b.Close()
		a.Wait()
		b.Wait()
	})
	return a, b
}

func TestCallAndErrors(t *testing.T) {
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		switch req.Method {
		case "echo":
			var p map[string]any
			if err := req.DecodeParams(&p); err != nil {
				return nil, err
			}
			return p, nil
		case "fail":
			return nil, protocol.ErrConfigInvalid.WithData(protocol.ConfigInvalidData{Errors: []protocol.ConfigError{{Path: "/x", Message: "bad"}}})
		}
		return nil, protocol.ErrMethodNotFound.WithMessage("%s", req.Method)
	})
	a, _ := connPair(t, nil, h)
	var got map[string]any
	if err := a.Call(context.Background(), "echo", map[string]any{"k": "v"}, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"k": "v"}, got); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
	err := a.Call(context.Background(), "fail", map[string]any{}, nil)
	if !errors.Is(err, protocol.ErrConfigInvalid) {
		t.Errorf("fail: got %v, want ErrConfigInvalid", err)
	}
	if err := a.Call(context.Background(), "nope", map[string]any{}, nil); !errors.Is(err, protocol.ErrMethodNotFound) {
		t.Errorf("nope: got %v, want ErrMethodNotFound", err)
	}
}

func TestCancelReachesHandler(t *testing.T) {
	started := make(chan struct{})
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	a, _ := connPair(t, nil, h)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	err := a.Call(ctx, "slow", map[string]any{}, nil)
	if !errors.Is(err, protocol.ErrCancelled) {
		t.Fatalf("got %v, want ErrCancelled", err)
	}
}

func TestStreamsRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB, several chunks
	var sink bytes.Buffer
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		var p protocol.CommUploadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		r := req.Conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		w := req.Conn.RemoteWriter(ctx, p.Path)
		if _, err := io.Copy(w, r); err != nil {
			return nil, err
		}
		return nil, w.Close()
	})
	a, _ := connPair(t, nil, h)
	src, release := a.OfferReader(bytes.NewReader(payload), nil)
	defer release()
	closed := false
	dst, release2 := a.OfferWriter(&sink, func() error { closed = true; return nil })
	defer release2()
	err := a.Call(context.Background(), "copy", protocol.CommUploadParams{Source: src, Path: dst, Size: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, sink.Bytes()) || !closed {
		t.Fatalf("sink got %d bytes (closed=%v), want %d", sink.Len(), closed, len(payload))
	}
}

func TestClosedConnSaysWhy(t *testing.T) {
	pr, pw := io.Pipe()
	c := protocol.NewConn(strings.NewReader("not json\n"), pw, pw, nil, protocol.Options{Strict: true})
	go io.Copy(io.Discard, pr)
	defer c.Close()
	err := c.Call(context.Background(), "x", map[string]any{}, nil)
	if !errors.Is(err, protocol.ErrConnClosed) || !errors.Is(err, protocol.ErrParse) || !strings.Contains(err.Error(), `"not json"`) {
		t.Fatalf("got %v, want closed because of a parse error quoting the line", err)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// A write that fails means the peer is gone: callers get ErrConnClosed with
// the reason, never a bare write error, and the connection is closed.
func TestWriteFailureClosesConn(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	c := protocol.NewConn(pr, brokenWriter{}, pr, nil, protocol.Options{Strict: true})
	defer c.Close()
	err := c.Call(context.Background(), "x", map[string]any{}, nil)
	if !errors.Is(err, protocol.ErrConnClosed) || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("got %v, want ErrConnClosed saying broken pipe", err)
	}
	<-c.Done()
	if err := c.Notify(context.Background(), "y", nil); !errors.Is(err, protocol.ErrConnClosed) {
		t.Fatalf("notify after a failed write: got %v, want ErrConnClosed", err)
	}
}

// TestAnswerOverPeerLimit: an answer, result or error, that would exceed the
// peer's limit is replaced by -32009, so the caller never waits for an
// answer that cannot be sent (SPEC §3.2, issue #12 item 1).
func TestAnswerOverPeerLimit(t *testing.T) {
	big := strings.Repeat("x", 5000)
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		if req.Method == "big-result" {
			return map[string]string{"v": big}, nil
		}
		return nil, protocol.ErrConfigInvalid.WithMessage("%s", big)
	})
	a, b := connPair(t, nil, h)
	b.SetLimits(0, 2000)
	for _, method := range []string{"big-result", "big-error"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.Call(ctx, method, map[string]any{}, nil)
		cancel()
		if !errors.Is(err, protocol.ErrMessageTooLarge) {
			t.Errorf("%s: got %v, want ErrMessageTooLarge", method, err)
		}
	}
}

// TestOneEncoderMemberOrder: every message a Conn writes, request,
// notification, result or error, is encoded by one encoder with "jsonrpc"
// first and the members in one order (issue #12 item 12).
func TestOneEncoderMemberOrder(t *testing.T) {
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		if req.Method == "fail" {
			return nil, protocol.ErrUnknownHandle.WithMessage("no \"x\"").WithData(map[string]int{"n": 1})
		}
		return map[string]string{"a": "<b>"}, nil
	})
	c, p := newRawPeer(t, h, protocol.Options{})
	go c.Call(context.Background(), "some/call", map[string]int{"x": 1}, nil) //nolint:errcheck // never answered
	got := []string{p.expect(`"some/call"`)}
	if err := c.Notify(context.Background(), "ui/say", map[string]string{"message": "é"}); err != nil {
		t.Fatal(err)
	}
	got = append(got, p.expect(`"ui/say"`))
	p.send(`{"jsonrpc":"2.0","id":"r1","method":"ok","params":{}}`)
	got = append(got, p.expect(`"r1"`))
	p.send(`{"jsonrpc":"2.0","id":7,"method":"fail","params":{}}`)
	got = append(got, p.expect(`"id":7`))
	want := []string{
		`{"jsonrpc":"2.0","id":1,"method":"some/call","params":{"x":1}}`,
		`{"jsonrpc":"2.0","method":"ui/say","params":{"message":"é"}}`,
		`{"jsonrpc":"2.0","id":"r1","result":{"a":"\u003cb\u003e"}}`,
		`{"jsonrpc":"2.0","id":7,"error":{"code":-32005,"message":"unknown handle: no \"x\"","data":{"n":1}}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines as written (-want +got):\n%s", diff)
	}
}
