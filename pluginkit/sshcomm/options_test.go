package sshcomm_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

// TestOptionsDefaults checks Packer's defaults and how the template keys
// become a Config.
func TestOptionsDefaults(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id")
	sshdtest.WriteKey(t, key, "")
	tests := []struct {
		name   string
		json   string
		want   sshcomm.Config
		reason string
	}{
		{
			name: "defaults",
			json: `{"ssh_host": "h", "ssh_username": "u", "ssh_password": "p"}`,
			want: sshcomm.Config{Host: "h", Port: 22, User: "u", Auth: sshcomm.Auth{Password: "p"},
				Timeout: 5 * time.Minute, HandshakeAttempts: 10, KeepAliveInterval: 5 * time.Second, FileTransfer: sshcomm.SCP},
		},
		{
			name: "attempts without timeout",
			json: `{"ssh_host": "h", "ssh_username": "u", "ssh_password": "p", "ssh_handshake_attempts": 3}`,
			want: sshcomm.Config{Host: "h", Port: 22, User: "u", Auth: sshcomm.Auth{Password: "p"},
				Timeout: -1, HandshakeAttempts: 3, KeepAliveInterval: 5 * time.Second, FileTransfer: sshcomm.SCP},
			reason: "as Packer: only ssh_handshake_attempts bounds the wait when ssh_timeout is not set",
		},
		{
			name: "everything",
			json: `{"ssh_host": "h", "ssh_port": "2222", "ssh_username": "u", "ssh_agent_auth": true,
				"ssh_timeout": "1m", "ssh_keep_alive_interval": "-1s", "ssh_read_write_timeout": "30s",
				"ssh_pty": true, "ssh_disable_agent_forwarding": true, "ssh_file_transfer_method": "sftp",
				"pause_before_connecting": "2s", "ssh_known_hosts_file": "/k", "ssh_host_key_fingerprint": "SHA256:x",
				"ssh_bastion_host": "b", "ssh_bastion_username": "bu", "ssh_bastion_password": "bp"}`,
			want: sshcomm.Config{Host: "h", Port: 2222, User: "u", Auth: sshcomm.Auth{Agent: true},
				Bastion:        &sshcomm.Bastion{Host: "b", Port: 22, User: "bu", Auth: sshcomm.Auth{Password: "bp"}},
				KnownHostsFile: "/k", HostKeyFingerprint: "SHA256:x",
				Timeout: time.Minute, KeepAliveInterval: -time.Second, ReadWriteTimeout: 30 * time.Second,
				PauseBeforeConnecting: 2 * time.Second, Pty: true, DisableAgentForwarding: true, FileTransfer: sshcomm.SFTP},
		},
		{
			name: "bastion uses the key by default",
			json: `{"ssh_host": "h", "ssh_username": "u", "ssh_private_key_file": "` + key + `", "ssh_bastion_host": "b", "ssh_bastion_port": 2200, "ssh_bastion_username": "bu"}`,
			want: sshcomm.Config{Host: "h", Port: 22, User: "u", Auth: sshcomm.Auth{Signers: make([]ssh.Signer, 1)},
				Bastion: &sshcomm.Bastion{Host: "b", Port: 2200, User: "bu", Auth: sshcomm.Auth{Signers: make([]ssh.Signer, 1)}},
				Timeout: 5 * time.Minute, HandshakeAttempts: 10, KeepAliveInterval: 5 * time.Second, FileTransfer: sshcomm.SCP},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o sshcomm.Options
			if err := json.Unmarshal([]byte(tt.json), &o); err != nil {
				t.Fatal(err)
			}
			if _, errs := o.Prepare(true); len(errs) > 0 {
				t.Fatalf("Prepare: %v", errs)
			}
			got, err := o.Config(nil)
			if err != nil {
				t.Fatal(err)
			}
			// Signers are compared by count: keys are loaded from files.
			opts := cmp.Options{
				cmpopts.IgnoreFields(sshcomm.Config{}, "Say", "Log"),
				cmp.Comparer(func(a, b []ssh.Signer) bool { return len(a) == len(b) }),
			}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("Config (-want +got)\n%s\n%s", diff, tt.reason)
			}
		})
	}
}

func TestPortAcceptsStrings(t *testing.T) {
	for in, want := range map[string]sshcomm.Port{`22`: 22, `"2222"`: 2222} {
		var p sshcomm.Port
		if err := json.Unmarshal([]byte(in), &p); err != nil || p != want {
			t.Errorf("unmarshal %s: %v, %v; want %v", in, p, err, want)
		}
	}
	for _, in := range []string{`"x"`, `70000`, `"-1"`, `true`} {
		var p sshcomm.Port
		if err := json.Unmarshal([]byte(in), &p); err == nil {
			t.Errorf("unmarshal %s: no error", in)
		}
	}
}
