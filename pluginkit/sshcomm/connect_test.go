package sshcomm_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

// says collects what Connect tells the user.
type says struct {
	mu   sync.Mutex
	msgs []string
}

func (s *says) say(m string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
}

func (s *says) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.msgs, "\n")
}

func TestAuthentication(t *testing.T) {
	srv := sshdtest.Start(t)
	passwordCfg := func() sshcomm.Config {
		sshdtest.RequirePasswordUser(t)
		cfg := config(srv, sshcomm.SCP)
		cfg.User = sshdtest.PasswordUser
		cfg.Auth = sshcomm.Auth{Password: sshdtest.PasswordUserPassword}
		return cfg
	}
	t.Run("key", func(t *testing.T) {
		c := connect(t, config(srv, sshcomm.SCP))
		if _, out, _ := run(t, c, "id -un", ""); strings.TrimSpace(out) != srv.User {
			t.Errorf("logged in as %q, want %q", out, srv.User)
		}
	})
	t.Run("key file", func(t *testing.T) {
		signer, err := sshcomm.LoadSigner(srv.KeyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		cfg := config(srv, sshcomm.SCP)
		cfg.Auth = sshcomm.Auth{Signers: []ssh.Signer{signer}}
		connect(t, cfg)
	})
	t.Run("password", func(t *testing.T) {
		c := connect(t, passwordCfg())
		if _, out, _ := run(t, c, "id -un", ""); strings.TrimSpace(out) != sshdtest.PasswordUser {
			t.Errorf("logged in as %q, want %q", out, sshdtest.PasswordUser)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := passwordCfg()
		cfg.Auth.Password = "wrong"
		cfg.HandshakeAttempts = 2
		cfg.Timeout = 5 * time.Minute
		start := time.Now()
		_, err := sshcomm.Connect(context.Background(), cfg)
		if !errors.Is(err, sshcomm.ErrAuth) {
			t.Fatalf("Connect: error %v, want ErrAuth", err)
		}
		want := "ssh: " + srv.Addr() + ": user " + sshdtest.PasswordUser + ": authentication failed: publickey not configured, password rejected"
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q\nwant it to start with %q", err, want)
		}
		if errors.Is(err, sshcomm.ErrTimeout) {
			t.Errorf("gave up by timeout, want by handshake attempts: %v", err)
		}
		t.Logf("gave up after %v", time.Since(start).Round(time.Millisecond))
	})
	t.Run("key not authorized", func(t *testing.T) {
		other := sshdtest.WriteKey(t, filepath.Join(t.TempDir(), "other"), "")
		cfg := config(srv, sshcomm.SCP)
		cfg.Auth = sshcomm.Auth{Signers: []ssh.Signer{other}}
		cfg.HandshakeAttempts = 1
		_, err := sshcomm.Connect(context.Background(), cfg)
		want := "ssh: " + srv.Addr() + ": user " + srv.User + ": authentication failed: publickey rejected, password not configured"
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant %s", err, want)
		}
	})
	t.Run("encrypted key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "locked")
		sshdtest.WriteKey(t, path, "passphrase")
		_, err := sshcomm.LoadSigner(path, "")
		if !errors.Is(err, sshcomm.ErrEncryptedKey) || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadSigner: error %v, want ErrEncryptedKey naming %s", err, path)
		}
	})
	t.Run("key file with ~", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("HOME", home)
		b, err := os.ReadFile(srv.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := sshcomm.LoadSigner("~/key", ""); err != nil {
			t.Errorf("LoadSigner(~/key): %v", err)
		}
	})
}

func TestServerThatStartsLate(t *testing.T) {
	srv := sshdtest.New(t)
	var out says
	cfg := config(srv, sshcomm.SCP)
	cfg.Say = out.say
	type result struct {
		c   *sshcomm.Comm
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sshcomm.Connect(context.Background(), cfg)
		done <- result{c, err}
	}()
	// Let a few attempts fail (connection refused) before the server
	// starts.
	deadline := time.After(10 * time.Second)
	for strings.Count(out.all(), "\n") < 0 || !strings.Contains(out.all(), "Waiting for SSH") {
		select {
		case <-deadline:
			t.Fatalf("no wait message; said %q", out.all())
		case <-time.After(10 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond)
	srv.Start()
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	defer r.c.Close()
	if got := out.all(); !strings.HasPrefix(got, "Waiting for SSH to become available...\n") || !strings.HasSuffix(got, "Connected to SSH!") {
		t.Errorf("said %q", got)
	}
}

func TestTimeoutNamesTheLastError(t *testing.T) {
	cfg := sshcomm.Config{Host: "127.0.0.1", Port: sshdtest.FreePort(t), User: "nobody",
		Auth: sshcomm.Auth{Password: "x"}, Timeout: 300 * time.Millisecond, RetryInterval: 20 * time.Millisecond}
	_, err := sshcomm.Connect(context.Background(), cfg)
	if !errors.Is(err, sshcomm.ErrTimeout) || !strings.Contains(err.Error(), "connection refused") ||
		!strings.Contains(err.Error(), net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))) {
		t.Errorf("Connect: error %v, want ErrTimeout naming the address and the refusal", err)
	}
}

func TestHostKeyChecks(t *testing.T) {
	srv := sshdtest.Start(t)
	other := sshdtest.WriteKey(t, filepath.Join(t.TempDir(), "other"), "")
	knownHosts := func(line string) string {
		p := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(p, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name        string
		fingerprint string
		knownHosts  string
		wantErr     bool
		wantWarning bool
	}{
		{name: "right fingerprint", fingerprint: ssh.FingerprintSHA256(srv.HostKey)},
		{name: "right fingerprint without prefix", fingerprint: strings.TrimPrefix(ssh.FingerprintSHA256(srv.HostKey), "SHA256:")},
		{name: "wrong fingerprint", fingerprint: ssh.FingerprintSHA256(other.PublicKey()), wantErr: true},
		{name: "listed in known_hosts", knownHosts: knownHosts(srv.KnownHostsLine())},
		{name: "another key in known_hosts", knownHosts: knownHosts("[127.0.0.1]:" + strconv.Itoa(srv.Port) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other.PublicKey())))), wantErr: true},
		{name: "not in known_hosts", knownHosts: knownHosts("[127.0.0.1]:1 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey)))), wantErr: true},
		{name: "not checked", wantWarning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out says
			cfg := config(srv, sshcomm.SCP)
			cfg.HostKeyFingerprint = tt.fingerprint
			cfg.KnownHostsFile = tt.knownHosts
			cfg.Say = out.say
			start := time.Now()
			c, err := sshcomm.Connect(context.Background(), cfg)
			if c != nil {
				c.Close()
			}
			if tt.wantErr != errors.Is(err, sshcomm.ErrHostKeyMismatch) {
				t.Errorf("Connect: error %v, want host key mismatch: %v", err, tt.wantErr)
			}
			if tt.wantErr && !strings.Contains(err.Error(), ssh.FingerprintSHA256(srv.HostKey)) {
				t.Errorf("error %q does not name the server's key", err)
			}
			warned := strings.Count(out.all(), "was not verified")
			if tt.wantWarning && warned != 1 || !tt.wantWarning && warned != 0 {
				t.Errorf("said %q; want one warning: %v", out.all(), tt.wantWarning)
			}
			_ = start
		})
	}
}

func TestBastion(t *testing.T) {
	target := sshdtest.Start(t)
	bastion := sshdtest.Start(t)
	cfg := config(target, sshcomm.SFTP)
	cfg.Bastion = &sshcomm.Bastion{Host: "127.0.0.1", Port: bastion.Port, User: bastion.User,
		Auth: sshcomm.Auth{Signers: []ssh.Signer{bastion.Signer}}}
	c := connect(t, cfg)
	if status, out, _ := run(t, c, "echo through", ""); status != 0 || out != "through\n" {
		t.Errorf("command through the bastion: status %d, output %q", status, out)
	}
	if !strings.Contains(bastion.Logs(), "direct-tcpip") && !strings.Contains(bastion.Logs(), "Accepted publickey") {
		t.Errorf("the bastion saw no login:\n%s", bastion.Logs())
	}
	// The target saw a connection forwarded by the bastion, not ours: both
	// come from 127.0.0.1, so check the bastion forwarded to it.
	if !strings.Contains(bastion.Logs(), "Accepted publickey for "+bastion.User) {
		t.Errorf("bastion log:\n%s", bastion.Logs())
	}

	t.Run("bastion rejects", func(t *testing.T) {
		bad := cfg
		other := sshdtest.WriteKey(t, filepath.Join(t.TempDir(), "other"), "")
		bad.Bastion = &sshcomm.Bastion{Host: "127.0.0.1", Port: bastion.Port, User: bastion.User,
			Auth: sshcomm.Auth{Signers: []ssh.Signer{other}}}
		bad.HandshakeAttempts = 1
		_, err := sshcomm.Connect(context.Background(), bad)
		if !errors.Is(err, sshcomm.ErrAuth) || !strings.Contains(err.Error(), "bastion "+bastion.Addr()) {
			t.Errorf("error %v, want ErrAuth naming the bastion %s", err, bastion.Addr())
		}
	})
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCancelStopsTheRemoteCommand cancels a running command and checks on
// the server (this machine) that its process is gone.
func TestCancelStopsTheRemoteCommand(t *testing.T) {
	srv := sshdtest.Start(t)
	tests := []struct {
		name    string
		user    string
		pty     bool
		command string
	}{
		// reason: OpenSSH delivers signals only to privilege-separated
		// sessions, which root logins are not.
		{"signal", sshdtest.PasswordUser, false, "echo $$ > PIDFILE; exec sleep 1000"},
		{"pty hangup reaches the job", srv.User, true, "sleep 1000 & echo $! > PIDFILE; wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.user == sshdtest.PasswordUser {
				sshdtest.RequirePasswordUser(t)
			}
			cfg := config(srv, sshcomm.SCP)
			cfg.User = tt.user
			cfg.Pty = tt.pty
			c := connect(t, cfg)
			// Writable by the remote user.
			dir, err := os.MkdirTemp("", "sshcomm-cancel-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			pidfile := filepath.Join(dir, "pid")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := c.Start(ctx, &pluginkit.RemoteCmd{Command: strings.ReplaceAll(tt.command, "PIDFILE", pidfile), Stdout: io.Discard})
				done <- err
			}()
			pid, err := strconv.Atoi(waitFile(t, pidfile))
			if err != nil {
				t.Fatal(err)
			}
			if !alive(pid) {
				t.Fatalf("remote process %d is not running", pid)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Start: error %v, want context.Canceled", err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					kill(pid)
					t.Fatalf("remote process %d still runs after the command was cancelled", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// proxy forwards TCP connections to target until frozen; frozen, it
// forwards nothing (a machine that went away without a word).
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			n = 0 // dropped
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestKeepAlives: answered keep-alives keep an idle connection; when the
// server stops answering, the connection is closed and the command in
// flight fails instead of hanging.
func TestKeepAlives(t *testing.T) {
	srv := sshdtest.Start(t)
	p := newProxy(t, srv.Addr())
	cfg := config(srv, sshcomm.SCP)
	cfg.Port = p.port()
	cfg.KeepAliveInterval = 50 * time.Millisecond
	// With a pty, sshd hangs the command up when the connection goes;
	// without one (root logins get no signals) the sleep would outlive
	// the test.
	cfg.Pty = true
	c := connect(t, cfg)
	time.Sleep(500 * time.Millisecond) // ten keep-alives, all answered
	if status, out, _ := run(t, c, "echo still here", ""); status != 0 || strings.TrimSpace(out) != "still here" {
		t.Fatalf("after idling: status %d, output %q", status, out)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Start(context.Background(), &pluginkit.RemoteCmd{Command: "sleep 60"})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	p.freeze()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "keep-alives") {
			t.Errorf("Start: error %v, want one saying the keep-alives went unanswered", err)
		}
	case <-time.After(20 * time.Second):
		c.Close()
		<-done
		t.Fatal("Start still waits 20s after the server stopped answering")
	}
}

// TestCertificate logs in with a key the server does not list but whose
// certificate is signed by a CA it trusts.
func TestCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := sshdtest.WriteKey(t, filepath.Join(dir, "ca"), "")
	user := sshdtest.WriteKey(t, filepath.Join(dir, "user"), "")
	srv := sshdtest.New(t)
	srv.Extra = "TrustedUserCAKeys " + filepath.Join(dir, "ca.pub")
	srv.Start()
	cert := &ssh.Certificate{
		Key: user.PublicKey(), CertType: ssh.UserCert, KeyId: "test",
		ValidPrincipals: []string{srv.User}, ValidBefore: ssh.CertTimeInfinity,
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "user-cert.pub")
	if err := os.WriteFile(certFile, ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, withCert := range []bool{true, false} {
		t.Run(fmt.Sprintf("certificate %v", withCert), func(t *testing.T) {
			cf := ""
			if withCert {
				cf = certFile
			}
			signer, err := sshcomm.LoadSigner(filepath.Join(dir, "user"), cf)
			if err != nil {
				t.Fatal(err)
			}
			cfg := config(srv, sshcomm.SCP)
			cfg.Auth = sshcomm.Auth{Signers: []ssh.Signer{signer}}
			cfg.HandshakeAttempts = 1
			c, err := sshcomm.Connect(context.Background(), cfg)
			if c != nil {
				c.Close()
			}
			if withCert != (err == nil) {
				t.Errorf("Connect: %v; want success: %v", err, withCert)
			}
		})
	}
}
