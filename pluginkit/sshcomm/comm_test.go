package sshcomm_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

// config is a Config for srv's user key, quick to retry.
func config(srv *sshdtest.Server, method sshcomm.TransferMethod) sshcomm.Config {
	return sshcomm.Config{
		Host:               "127.0.0.1",
		Port:               srv.Port,
		User:               srv.User,
		Auth:               sshcomm.Auth{Signers: []ssh.Signer{srv.Signer}},
		HostKeyFingerprint: ssh.FingerprintSHA256(srv.HostKey),
		Timeout:            30 * time.Second,
		RetryInterval:      50 * time.Millisecond,
		FileTransfer:       method,
	}
}

func connect(t *testing.T, cfg sshcomm.Config) *sshcomm.Comm {
	t.Helper()
	c, err := sshcomm.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs command and returns its exit status, stdout and stderr.
func run(t *testing.T, c pluginkit.Communicator, command, stdin string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := &pluginkit.RemoteCmd{Command: command, Stdout: &stdout, Stderr: &stderr}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	status, err := c.Start(context.Background(), cmd)
	if err != nil {
		t.Fatalf("Start(%q): %v", command, err)
	}
	return status, stdout.String(), stderr.String()
}

func TestStartStreamsAndReturnsExitStatus(t *testing.T) {
	srv := sshdtest.Start(t)
	c := connect(t, config(srv, sshcomm.SCP))
	type result struct {
		Status         int
		Stdout, Stderr string
	}
	tests := []struct {
		name, command, stdin string
		want                 result
	}{
		{"stdin to stdout, stderr, exit 3", "tr a-z A-Z; echo oops >&2; exit 3", "hello\n", result{3, "HELLO\n", "oops\n"}},
		{"success", "echo ok", "", result{0, "ok\n", ""}},
		{"command not found", "no-such-command-xyz 2>/dev/null", "", result{127, "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := run(t, c, tt.command, tt.stdin)
			if diff := cmp.Diff(tt.want, result{status, stdout, stderr}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
