package host_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// readOnlyComm is a builder's communicator that refuses uploads.
type readOnlyComm struct{ pluginkit.Communicator }

func (readOnlyComm) Upload(context.Context, string, io.Reader, fs.FileMode, int64) error {
	return protocol.ErrUnsupported.WithMessage("this machine is read-only")
}

type relayBuilder struct{ cfg struct{} }

func (b *relayBuilder) Config() any                { return &b.cfg }
func (b *relayBuilder) Prepare() ([]string, error) { return nil, nil }
func (b *relayBuilder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	return nil, hook.Run(ctx, protocol.HookProvision, readOnlyComm{}, map[string]any{})
}

// uploadErr is what relayProvisioner's upload returned; the test reads it
// after the run, when no goroutine writes it any more.
var uploadErr error

type relayProvisioner struct{ cfg struct{} }

func (p *relayProvisioner) Config() any                { return &p.cfg }
func (p *relayProvisioner) Prepare() ([]string, error) { return nil, nil }
func (p *relayProvisioner) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, data map[string]any) error {
	uploadErr = comm.Upload(ctx, "/etc/motd", strings.NewReader("hi"), 0o644, 2)
	return uploadErr
}

// connectInProcess serves srv over pipes and connects a host to it.
func connectInProcess(t *testing.T, srv *pluginkit.Server, opts host.Options) *host.Plugin {
	t.Helper()
	hostR, pluginW := io.Pipe()
	pluginR, hostW := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeConn(context.Background(), pluginR, pluginW, pluginW, nil)
	}()
	p, err := host.Connect(context.Background(), hostR, hostW, hostW, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		<-done
	})
	return p
}

// An error the builder answers to a relayed communicator call reaches the
// provisioner with its code unchanged (SPEC §7.7), not as a generic
// component failure.
func TestRelayKeepsTheBuildersErrorCode(t *testing.T) {
	provSrv := pluginkit.NewServer(protocol.Peer{Name: "prov"})
	provSrv.RegisterProvisioner("p", new(relayProvisioner))
	prov := connectInProcess(t, provSrv, host.Options{Name: "prov"})
	pinst, _, err := prov.Prepare(context.Background(), protocol.TypeProvisioner, "p", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		return pinst.Provision(ctx, comm, data)
	})
	bSrv := pluginkit.NewServer(protocol.Peer{Name: "builder"})
	bSrv.RegisterBuilder("b", new(relayBuilder))
	b := connectInProcess(t, bSrv, host.Options{Name: "builder", Hook: hook})
	binst, _, err := b.Prepare(context.Background(), protocol.TypeBuilder, "b", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := binst.Run(context.Background()); err == nil {
		t.Fatal("run succeeded; want the provisioner's failure")
	}
	if !errors.Is(uploadErr, protocol.ErrUnsupported) || !strings.Contains(uploadErr.Error(), "read-only") {
		t.Fatalf("the provisioner's upload got %v, want the builder's -32011 with its message", uploadErr)
	}
}
