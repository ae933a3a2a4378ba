// Package sshdtest runs OpenSSH's sshd on loopback for tests: host and user
// keys in a temporary directory, a configuration with a free port, and
// "sshd -D -e -f CONFIG" as a child process stopped at the end of the test.
//
// Logging in: the server accepts the user key for every user through an
// AuthorizedKeysFile in its directory (StrictModes off), and root logins
// (tests normally run as root in CI). Password authentication needs a user
// with a known password: [PasswordUser], which .ci/run creates with
// [PasswordUserPassword]; tests that need it call [Server.RequirePasswordUser],
// which skips when the user is missing.
//
// Tests skip, saying why, when sshd is not installed (.ci/run installs the
// openssh-server package when /usr/sbin/sshd is missing).
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// PasswordUser and PasswordUserPassword are the user .ci/run creates for
// password authentication tests.
const (
	PasswordUser         = "packer-ssh-test"
	PasswordUserPassword = "packer-ssh-test-password"
)

// T is what a Server needs from its test: a *testing.T, or an adapter
// (a testscript command's).
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
	Failed() bool
}

// Server is one sshd prepared by [New].
type Server struct {
	t T
	// Dir is the server's directory: keys, configuration, logs.
	Dir string
	// Port is the port it listens on, on 127.0.0.1.
	Port int
	// User is the user tests log in as with the user key: the current user.
	User string
	// KeyFile is the user's private key (OpenSSH format, no passphrase),
	// accepted for every user.
	KeyFile string
	// Signer is that key.
	Signer ssh.Signer
	// HostKey is the server's host public key.
	HostKey ssh.PublicKey
	// Extra is appended to the configuration before Start.
	Extra string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	logs   bytes.Buffer
}

// Binary returns the sshd path, or skips t when there is none.
func Binary(t T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	t.Skip("sshd (OpenSSH server) is not installed: apt-get install openssh-server (.ci/run does)")
	return ""
}

// New prepares a server on a free port without starting it.
func New(t T) *Server {
	t.Helper()
	Binary(t)
	dir, err := os.MkdirTemp("", "sshdtest-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Readable by the users sshd reads authorized keys as.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := &Server{t: t, Dir: dir, User: u.Username, Port: FreePort(t)}
	hostSigner := writeKey(t, filepath.Join(dir, "host_ed25519"), "")
	s.HostKey = hostSigner.PublicKey()
	s.KeyFile = filepath.Join(dir, "id_ed25519")
	s.Signer = writeKey(t, s.KeyFile, "")
	auth := ssh.MarshalAuthorizedKey(s.Signer.PublicKey())
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), auth, 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory, made by the package's
		// service scripts, which a test machine may not run.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts a server on a free port and waits until it answers.
func Start(t T) *Server {
	s := New(t)
	s.Start()
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteKey writes a new ed25519 private key to path in OpenSSH format,
// encrypted with passphrase when it is not empty, and its public key to
// path.pub; it returns the key.
func WriteKey(t T, path, passphrase string) ssh.Signer {
	return writeKey(t, path, passphrase)
}

func writeKey(t T, path, passphrase string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("%v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "sshdtest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "sshdtest", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	return signer
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Config is the server's sshd_config.
func (s *Server) Config() string {
	return fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
AllowAgentForwarding yes
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel VERBOSE
%s
`, s.Port, filepath.Join(s.Dir, "host_ed25519"), filepath.Join(s.Dir, "sshd.pid"),
		filepath.Join(s.Dir, "authorized_keys"), s.Extra)
}

// Start starts sshd and waits until it sends its banner.
func (s *Server) Start() {
	t := s.t
	t.Helper()
	conf := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(s.Config()), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	cmd := exec.Command(Binary(t), "-D", "-e", "-f", conf)
	s.mu.Lock()
	cmd.Stdout = lockedWriter{&s.mu, &s.logs}
	cmd.Stderr = lockedWriter{&s.mu, &s.logs}
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("sshd exited: %v\n%s", err, s.Logs())
		default:
		}
		if banner(s.Addr()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not answer on %s within 10s\n%s", s.Addr(), s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// banner reports whether an SSH server answers on addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 4)
	n, _ := c.Read(b)
	return string(b[:n]) == "SSH-"
}

// Stop stops sshd (SIGTERM: the listener; sessions end with their
// connections) and, when the test failed, logs what sshd wrote.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
	if s.t.Failed() {
		s.t.Logf("sshd on %s logged:\n%s", s.Addr(), s.Logs())
	}
}

// Logs returns what sshd wrote so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// RequirePasswordUser skips t unless PasswordUser exists (.ci/run creates
// it, with PasswordUserPassword, when the tests run as root).
func RequirePasswordUser(t testing.TB) {
	t.Helper()
	if _, err := user.Lookup(PasswordUser); err != nil {
		t.Skipf("password authentication needs the user %s with password %q (.ci/run creates it when run as root): %v", PasswordUser, PasswordUserPassword, err)
	}
}

// KnownHostsLine is the server's host key as a known_hosts line.
func (s *Server) KnownHostsLine() string {
	return fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))))
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
