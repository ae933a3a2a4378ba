package main

import (
	"context"
	"encoding/json"
	"net/rpc"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// Msg is the small payload every call carries and gets back: the same
// params, {"message":"hello"}, that plugin-bench's echo sends.
type Msg struct {
	Message string `json:"message"`
}

// echoer is what both transports dispense: one call that sends m and
// returns what the plugin echoed.
type echoer interface {
	Echo(ctx context.Context, m Msg) (Msg, error)
}

// ---- net/rpc: go-plugin registers the server object under the name "Plugin".

// rpcPlugin is the go-plugin net/rpc plugin serving echo.
type rpcPlugin struct{}

func (rpcPlugin) Server(b *plugin.MuxBroker) (any, error) {
	return &rpcServer{relayServer{broker: b}}, nil
}

func (rpcPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return &rpcClient{c: c, relay: &relayClient{broker: b, c: c}}, nil
}

// rpcServer is the net/rpc receiver: Echo echoes its argument; Sink and
// Source are the relay's two roles (relay.go).
type rpcServer struct{ relayServer }

// Echo copies args into reply.
func (*rpcServer) Echo(args Msg, reply *Msg) error {
	*reply = args
	return nil
}

type rpcClient struct {
	c     *rpc.Client
	relay *relayClient
}

func (r *rpcClient) Echo(_ context.Context, m Msg) (Msg, error) {
	var out Msg
	err := r.c.Call("Plugin.Echo", m, &out)
	return out, err
}

// ---- gRPC without generated code: a hand-written service description and
// a JSON codec selected by content subtype ("application/grpc+json"). The
// codec is registered in both processes (they are the same binary), which is
// how the server finds it for requests that name it.

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) Name() string                       { return "json" }

func init() { encoding.RegisterCodec(jsonCodec{}) }

// echoService is the service's handler type, as protoc would generate it.
type echoService interface {
	Echo(ctx context.Context, m *Msg) (*Msg, error)
}

const echoMethod = "/bench.Echo/Echo"

var echoDesc = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(Msg)
			if err := dec(in); err != nil {
				return nil, err
			}
			if icpt == nil {
				return srv.(echoService).Echo(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: echoMethod}
			return icpt(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(echoService).Echo(ctx, req.(*Msg))
			})
		},
	}},
	Metadata: "hand-written (no protoc)",
}

type grpcServer struct{}

func (grpcServer) Echo(_ context.Context, m *Msg) (*Msg, error) { return m, nil }

// grpcPlugin is the go-plugin gRPC plugin serving echo.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (grpcPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&echoDesc, grpcServer{})
	s.RegisterService(sinkService, nil)
	s.RegisterService(&sourceDesc, &grpcSource{broker: b})
	return nil
}

func (grpcPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &grpcClient{cc: cc, relay: &grpcRelay{broker: b, cc: cc}}, nil
}

type grpcClient struct {
	cc    *grpc.ClientConn
	relay *grpcRelay
}

func (g *grpcClient) Echo(ctx context.Context, m Msg) (Msg, error) {
	var out Msg
	err := g.cc.Invoke(ctx, echoMethod, &m, &out, grpc.CallContentSubtype(jsonCodec{}.Name()))
	return out, err
}
