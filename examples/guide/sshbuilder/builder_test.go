package sshbuilder_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/examples/guide/sshbuilder"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/plugintest"
	"github.com/packer-stdio/packer/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBuilderProvisionsOverSSH runs the builder in process against a real
// sshd: the hook's communicator runs a command on it.
func TestBuilderProvisionsOverSSH(t *testing.T) {
	srv := sshdtest.Start(t)
	var out strings.Builder
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		_, err := comm.Start(ctx, &host.RemoteCmd{Command: "echo hello from $(id -un)", Stdout: &out})
		return err
	})
	ps := pluginkit.NewServer(protocol.Peer{Name: "sshbuilder-test", Version: "0.0.0"})
	ps.RegisterBuilder("remote", new(sshbuilder.Builder))
	p := plugintest.New(t, ps, host.Options{UI: new(plugintest.UI), Hook: hook})
	b, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "remote", map[string]any{
		"ssh_host": "127.0.0.1", "ssh_port": srv.Port, "ssh_username": srv.User, "ssh_private_key_file": srv.KeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	art, err := b.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("hello from "+srv.User+"\n", out.String()); diff != "" {
		t.Errorf("command output (-want +got):\n%s", diff)
	}
	if art.ID != "127.0.0.1" {
		t.Errorf("artifact id %q", art.ID)
	}
}
