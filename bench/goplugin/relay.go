package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"os"
	"runtime"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// Scenario 4, the relay, the way Packer 1.x moved a provisioner's upload
// on go-plugin: the provisioner plugin calls Upload on a communicator the
// host serves to it over the plugin's connection; the host forwards the
// bytes to the builder plugin, whose communicator writes them to a file.
// Both hops carry the bytes as a stream, not inside calls:
//
//   - net/rpc: as Packer's communicator RPC does, each hop's bytes go over
//     a MuxBroker (yamux) stream whose id the Upload call carries; the
//     caller accepts the stream and copies into it, the callee dials it
//     and copies out of it;
//   - gRPC: a client-streaming call of 256 KiB messages on each hop (the
//     host's service reached through the GRPCBroker), with a codec that
//     passes []byte through untouched.

const chunkSize = 256 << 10

// SinkArgs asks the builder to dial StreamID and write what comes to a file.
type SinkArgs struct{ StreamID uint32 }

// SourceArgs asks the provisioner to dial the host's communicator at
// CommID and upload Size bytes through it.
type SourceArgs struct {
	CommID uint32
	Size   int64
}

// UploadArgs is the provisioner's call on the host's communicator: the
// bytes come on the broker stream StreamID.
type UploadArgs struct{ StreamID uint32 }

// ---- net/rpc

// relayServer is the plugin side of both roles.
type relayServer struct{ broker *plugin.MuxBroker }

// Sink is the builder's communicator: it dials the stream and writes it to
// a temporary file.
func (s *relayServer) Sink(args SinkArgs, n *int64) error {
	conn, err := s.broker.Dial(args.StreamID)
	if err != nil {
		return err
	}
	defer conn.Close()
	*n, err = toFile(conn)
	return err
}

// Source is the provisioner: it uploads Size zero bytes through the host's
// communicator.
func (s *relayServer) Source(args SourceArgs, n *int64) error {
	conn, err := s.broker.Dial(args.CommID)
	if err != nil {
		return err
	}
	comm := rpc.NewClient(conn)
	defer comm.Close()
	id := s.broker.NextId()
	copied := make(chan error, 1)
	go func() { copied <- serveCopy(s.broker, id, io.LimitReader(zeros{}, args.Size)) }()
	if err := comm.Call("Plugin.Upload", UploadArgs{StreamID: id}, n); err != nil {
		return err
	}
	return <-copied
}

// serveCopy accepts the broker stream id and copies r into it, as Packer's
// serveSingleCopy does.
func serveCopy(b *plugin.MuxBroker, id uint32, r io.Reader) error {
	conn, err := b.Accept(id)
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(conn, r, make([]byte, chunkSize))
	return errors.Join(err, conn.Close())
}

// relayClient is the host's view of either plugin.
type relayClient struct {
	broker *plugin.MuxBroker
	c      *rpc.Client
}

// sink uploads r to the builder.
func (c *relayClient) sink(r io.Reader) (int64, error) {
	id := c.broker.NextId()
	copied := make(chan error, 1)
	go func() { copied <- serveCopy(c.broker, id, r) }()
	var n int64
	if err := c.c.Call("Plugin.Sink", SinkArgs{StreamID: id}, &n); err != nil {
		return 0, err
	}
	return n, <-copied
}

// source has the provisioner upload size bytes to the builder behind to.
func (c *relayClient) source(to *relayClient, size int64) (int64, error) {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, &hostComm{from: c.broker, to: to})
	var n int64
	err := c.c.Call("Plugin.Source", SourceArgs{CommID: id, Size: size}, &n)
	return n, err
}

// hostComm is the communicator the host serves to the provisioner; it
// forwards every upload to the builder.
type hostComm struct {
	from *plugin.MuxBroker // the provisioner's broker
	to   *relayClient      // the builder
}

// Upload dials the provisioner's stream and forwards it to the builder.
func (h *hostComm) Upload(args UploadArgs, n *int64) error {
	conn, err := h.from.Dial(args.StreamID)
	if err != nil {
		return err
	}
	defer conn.Close()
	*n, err = h.to.sink(conn)
	return err
}

// ---- gRPC

// rawCodec passes []byte messages through as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "raw" }

func init() { encoding.RegisterCodec(rawCodec{}) }

var rawCall = grpc.CallContentSubtype(rawCodec{}.Name())

// uploadStream describes the client-streaming calls of both hops.
var uploadStream = grpc.StreamDesc{StreamName: "Upload", ClientStreams: true}

const (
	sinkMethod   = "/bench.Sink/Upload"
	commMethod   = "/bench.Comm/Upload"
	sourceMethod = "/bench.Source/Source"
)

// streamService describes a service of one client-streaming method that
// handle serves.
func streamService(name string, handle func(grpc.ServerStream) error) *grpc.ServiceDesc {
	d := uploadStream
	d.Handler = func(_ any, s grpc.ServerStream) error { return handle(s) }
	return &grpc.ServiceDesc{ServiceName: name, HandlerType: (*any)(nil), Streams: []grpc.StreamDesc{d}, Metadata: "hand-written (no protoc)"}
}

// receiveAll receives chunks from s, hands each to use, and answers with
// their total length.
func receiveAll(s grpc.ServerStream, use func([]byte) error) error {
	var n int64
	var buf []byte
	for {
		if err := s.RecvMsg(&buf); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if err := use(buf); err != nil {
			return err
		}
		n += int64(len(buf))
	}
	out := binary.BigEndian.AppendUint64(nil, uint64(n))
	return s.SendMsg(&out)
}

// sinkService is the builder's communicator: chunks to a temporary file.
var sinkService = streamService("bench.Sink", func(s grpc.ServerStream) error {
	f, err := os.CreateTemp("", "goplugin-sink")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = receiveAll(s, func(b []byte) error { _, err := f.Write(b); return err })
	return errors.Join(err, f.Close())
})

// upload sends size zero bytes, or what r holds, on a new Upload stream of
// cc and returns the count the other side answers.
func upload(ctx context.Context, cc *grpc.ClientConn, method string, next func() ([]byte, error)) (int64, error) {
	s, err := cc.NewStream(ctx, &uploadStream, method, rawCall)
	if err != nil {
		return 0, err
	}
	for {
		b, err := next()
		if err == io.EOF {
			break
		} else if err != nil {
			return 0, err
		}
		if err := s.SendMsg(&b); err != nil {
			return 0, err
		}
	}
	if err := s.CloseSend(); err != nil {
		return 0, err
	}
	var out []byte
	if err := s.RecvMsg(&out); err != nil {
		return 0, err
	}
	if len(out) != 8 {
		return 0, fmt.Errorf("%s: answer of %d bytes, want 8", method, len(out))
	}
	return int64(binary.BigEndian.Uint64(out)), nil
}

// chunks returns a next func for upload that yields size zero bytes.
func chunks(size int64) func() ([]byte, error) {
	buf := make([]byte, chunkSize)
	return func() ([]byte, error) {
		if size == 0 {
			return nil, io.EOF
		}
		k := min(size, int64(len(buf)))
		size -= k
		return buf[:k], nil
	}
}

// grpcSource is the provisioner's service: dial the host's communicator
// and upload through it.
type grpcSource struct{ broker *plugin.GRPCBroker }

func (g *grpcSource) source(ctx context.Context, args *SourceArgs) (*int64, error) {
	cc, err := g.broker.Dial(args.CommID)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	n, err := upload(ctx, cc, commMethod, chunks(args.Size))
	return &n, err
}

var sourceDesc = grpc.ServiceDesc{
	ServiceName: "bench.Source",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Source",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(SourceArgs)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(*grpcSource).source(ctx, in)
		},
	}},
	Metadata: "hand-written (no protoc)",
}

// grpcRelay is the host's view of either plugin over gRPC.
type grpcRelay struct {
	broker *plugin.GRPCBroker
	cc     *grpc.ClientConn
}

// source has the provisioner upload size bytes to the builder behind to:
// the host serves bench.Comm to the provisioner through the broker, and
// forwards each chunk it receives onto a stream to the builder.
func (g *grpcRelay) source(ctx context.Context, to *grpcRelay, size int64) (int64, error) {
	id := g.broker.NextId()
	comm := streamService("bench.Comm", func(s grpc.ServerStream) error {
		out, err := to.cc.NewStream(s.Context(), &uploadStream, sinkMethod, rawCall)
		if err != nil {
			return err
		}
		var sent int64
		var buf []byte
		for {
			if err := s.RecvMsg(&buf); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			if err := out.SendMsg(&buf); err != nil {
				return err
			}
			sent += int64(len(buf))
		}
		if err := out.CloseSend(); err != nil {
			return err
		}
		var ans []byte
		if err := out.RecvMsg(&ans); err != nil {
			return err
		}
		if len(ans) != 8 || int64(binary.BigEndian.Uint64(ans)) != sent {
			return fmt.Errorf("builder wrote %x bytes, want %d", ans, sent)
		}
		return s.SendMsg(&ans)
	})
	go g.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		s.RegisterService(comm, nil)
		return s
	})
	var n int64
	err := g.cc.Invoke(ctx, sourceMethod, &SourceArgs{CommID: id, Size: size}, &n, grpc.CallContentSubtype(jsonCodec{}.Name()))
	return n, err
}

// ---- the scenario

// relay runs scenario 4 at mb MiB: one builder and one provisioner plugin,
// and this process between them.
func (tr *transport) relay(mb int) Row {
	size := int64(mb) << 20
	runtime.GC()
	base := rss()
	s := sample()
	bld, prov := tr.start(), tr.start()
	var n int64
	var err error
	t := time.Now()
	switch to := bld.echo.(type) {
	case *rpcClient:
		n, err = prov.echo.(*rpcClient).relay.source(to.relay, size)
	case *grpcClient:
		n, err = prov.echo.(*grpcClient).relay.source(context.Background(), to.relay, size)
	}
	el := time.Since(t)
	check(err)
	if n != size {
		check(fmt.Errorf("relay moved %d bytes, want %d", n, size))
	}
	provRSS, bldRSS := peakRSS(prov.pid), peakRSS(bld.pid)
	prov.stop()
	bld.stop()
	peak := s.end()
	return Row{Scenario: "4 relay " + sizeName(mb), System: tr.system, Median: float64(mb) / el.Seconds(), Unit: "MiB/s",
		Note: fmt.Sprintf("peak RSS KiB: host +%d, provisioner %d, builder %d", peak-base, provRSS, bldRSS)}
}

// sizeName names a size as plugin-bench does.
func sizeName(mb int) string {
	if mb >= 1024 && mb%1024 == 0 {
		return fmt.Sprintf("%d GiB", mb/1024)
	}
	return fmt.Sprintf("%d MiB", mb)
}

// toFile writes r to a temporary file, removed afterwards, and returns the
// count.
func toFile(r io.Reader) (int64, error) {
	f, err := os.CreateTemp("", "goplugin-sink")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	n, err := io.CopyBuffer(f, r, make([]byte, chunkSize))
	return n, errors.Join(err, f.Close())
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
