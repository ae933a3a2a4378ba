package protocol_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/packer-stdio/packer/protocol"
)

// osConnPair connects two Conns over real OS pipes, as a host and a plugin are.
func osConnPair(b testing.TB, h protocol.Handler) (*protocol.Conn, *protocol.Conn) {
	ar, bw, _ := os.Pipe()
	br, aw, _ := os.Pipe()
	a := protocol.NewConn(ar, aw, closers{ar, aw}, nil, protocol.Options{Strict: true})
	c := protocol.NewConn(br, bw, closers{br, bw}, h, protocol.Options{})
	b.Cleanup(func() { a.Close(); c.Close(); a.Wait(); c.Wait() })
	return a, c
}

type closers []io.Closer

func (cs closers) Close() error {
	for _, c := range cs {
		c.Close()
	}
	return nil
}

// BenchmarkCallRoundTrip measures one small request and its answer over OS pipes.
func BenchmarkCallRoundTrip(b *testing.B) {
	a, _ := osConnPair(b, protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		return req.Params, nil
	}))
	params := map[string]string{"message": "hello"}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Call(context.Background(), "echo", params, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamRead measures pulling bytes through stream/read over OS pipes.
func BenchmarkStreamRead(b *testing.B) {
	const size = 8 << 20
	payload := bytes.Repeat([]byte{'x'}, size)
	a, _ := osConnPair(b, protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		var p protocol.StreamCloseParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		n, err := io.Copy(io.Discard, req.Conn.RemoteReader(ctx, p.Stream))
		return n, err
	}))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		h, release := a.OfferReader(bytes.NewReader(payload), nil)
		if err := a.Call(context.Background(), "drain", protocol.StreamCloseParams{Stream: h}, nil); err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// BenchmarkStreamFlow measures a version 2 stream (stream/data within
// credit) over OS pipes: the offerer pushes, the peer drains.
func BenchmarkStreamFlow(b *testing.B) {
	const size = 32 << 20
	payload := bytes.Repeat([]byte{'x'}, size)
	a, c := osConnPair(b, protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		var p protocol.StreamCloseParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		n, err := io.Copy(io.Discard, req.Conn.RemoteReader(ctx, p.Stream))
		return n, err
	}))
	a.SetProtocolVersion(2)
	c.SetProtocolVersion(2)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		h, release := a.OfferReader(bytes.NewReader(payload), nil)
		if err := a.Call(context.Background(), "drain", protocol.StreamCloseParams{Stream: h}, nil); err != nil {
			b.Fatal(err)
		}
		release()
	}
}
