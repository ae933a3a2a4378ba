package sshcomm_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

// startAgent serves an in-memory agent holding the key in keyFile on a
// socket, sets SSH_AUTH_SOCK to it and returns the key's public half.
func startAgent(t *testing.T, keyFile string) ssh.PublicKey {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	t.Setenv("SSH_AUTH_SOCK", sock)
	signers, err := keyring.Signers()
	if err != nil {
		t.Fatal(err)
	}
	return signers[0].PublicKey()
}

func TestAgentAuthAndForwarding(t *testing.T) {
	srv := sshdtest.Start(t)
	pub := startAgent(t, srv.KeyFile)
	want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	for _, disable := range []bool{false, true} {
		name := "forwarded"
		if disable {
			name = "not forwarded"
		}
		t.Run(name, func(t *testing.T) {
			cfg := config(srv, sshcomm.SCP)
			cfg.Auth = sshcomm.Auth{Agent: true}
			cfg.DisableAgentForwarding = disable
			c := connect(t, cfg)
			status, out, _ := run(t, c, "ssh-add -L", "")
			if got := status == 0 && strings.Contains(out, want); got == disable {
				t.Errorf("ssh-add -L on the server: status %d, output %q; want the agent's key: %v", status, out, !disable)
			}
		})
	}
}

// TestReadWriteTimeout: a connection that carries nothing for
// ReadWriteTimeout fails the command in flight; keep-alives count as
// traffic.
func TestReadWriteTimeout(t *testing.T) {
	srv := sshdtest.Start(t)
	t.Run("silent command, no keep-alives", func(t *testing.T) {
		cfg := config(srv, sshcomm.SCP)
		cfg.KeepAliveInterval = -1
		cfg.ReadWriteTimeout = 300 * time.Millisecond
		c := connect(t, cfg)
		_, err := c.Start(context.Background(), &pluginkit.RemoteCmd{Command: "sleep 5"})
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Start: error %v, want a timeout", err)
		}
	})
	t.Run("keep-alives", func(t *testing.T) {
		cfg := config(srv, sshcomm.SCP)
		cfg.KeepAliveInterval = 50 * time.Millisecond
		cfg.ReadWriteTimeout = 2 * time.Second
		c := connect(t, cfg)
		if status, _, _ := run(t, c, "sleep 3", ""); status != 0 {
			t.Errorf("status %d", status)
		}
	})
}
