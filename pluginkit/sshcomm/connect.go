package sshcomm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrAuth is wrapped by the error of [Connect] when the server rejected
// every authentication method offered (and HandshakeAttempts ran out).
var ErrAuth = errors.New("authentication failed")

// ErrTimeout is wrapped by the error of [Connect] when the machine did not
// answer within Config.Timeout; the error names the last failure.
var ErrTimeout = errors.New("timeout waiting for SSH")

// Connect connects to the machine cfg describes and returns a [Comm] on
// that connection. It blocks until it is connected, retrying every
// Config.RetryInterval while the machine is not up yet (refused or dropped
// connections, failed handshakes) and up to Config.HandshakeAttempts
// rejected authentications, within Config.Timeout; cancelling ctx stops it.
// It tells the user through Config.Say that it is waiting ("Waiting for
// SSH to become available...") and when it is connected. A host key that
// does not match Config.KnownHostsFile or Config.HostKeyFingerprint is not
// retried. Errors name the address, the user and, for a rejected login,
// every authentication method and what became of it.
func Connect(ctx context.Context, cfg Config) (*Comm, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.KeepAliveInterval == 0 {
		cfg.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if cfg.FileTransfer == "" {
		cfg.FileTransfer = SCP
	}
	if cfg.FileTransfer != SCP && cfg.FileTransfer != SFTP {
		return nil, fmt.Errorf("file transfer method %q: want %q or %q", cfg.FileTransfer, SCP, SFTP)
	}
	hostKey, err := hostKeyCallback(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, cfg.Timeout, ErrTimeout)
		defer cancel()
	}
	if cfg.PauseBeforeConnecting > 0 {
		cfg.say(fmt.Sprintf("Pausing %s before connecting...", cfg.PauseBeforeConnecting))
		if err := sleep(ctx, cfg.PauseBeforeConnecting); err != nil {
			return nil, waitErr(ctx, &cfg, nil)
		}
	}
	cfg.say("Waiting for SSH to become available...")
	rejected := 0
	for attempt := 1; ; attempt++ {
		client, err := dial(ctx, &cfg, hostKey)
		if err == nil {
			cfg.say("Connected to SSH!")
			comm := newComm(client, &cfg)
			if err := comm.openTunnels(cfg.Tunnels); err != nil {
				comm.Close()
				return nil, fmt.Errorf("ssh: %s: %w", address(cfg.Host, cfg.Port), err)
			}
			return comm, nil
		}
		cfg.logf("ssh: attempt %d: %v", attempt, err)
		if errors.Is(err, errHostKey) {
			return nil, err
		}
		if errors.Is(err, ErrAuth) {
			rejected++
			if cfg.HandshakeAttempts > 0 && rejected >= cfg.HandshakeAttempts {
				return nil, err
			}
		}
		if ctx.Err() != nil || sleep(ctx, cfg.RetryInterval) != nil {
			return nil, waitErr(ctx, &cfg, err)
		}
	}
}

// waitErr is the error of a Connect whose ctx ended while waiting.
func waitErr(ctx context.Context, cfg *Config, last error) error {
	cause := context.Cause(ctx)
	if !errors.Is(cause, ErrTimeout) {
		return fmt.Errorf("ssh: %s: waiting for SSH: %w", address(cfg.Host, cfg.Port), cause)
	}
	if last == nil {
		return fmt.Errorf("%w after %s", ErrTimeout, cfg.Timeout)
	}
	return fmt.Errorf("%w after %s; last error: %w", ErrTimeout, cfg.Timeout, last)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func address(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// dial makes one attempt: TCP (through the bastion, if any), handshake,
// authentication.
func dial(ctx context.Context, cfg *Config, hostKey ssh.HostKeyCallback) (*client, error) {
	addr := address(cfg.Host, cfg.Port)
	var bastion *ssh.Client
	var conn net.Conn
	if b := cfg.Bastion; b != nil {
		port := b.Port
		if port == 0 {
			port = DefaultPort
		}
		baddr := address(b.Host, port)
		bcfg := hostKeyOnly(cfg)
		bc, err := handshake(ctx, cfg, "bastion ", baddr, b.User, b.Auth, bcfg, func() (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", baddr)
		})
		if err != nil {
			return nil, err
		}
		bastion = bc
		conn, err = bc.DialContext(ctx, "tcp", addr)
		if err != nil {
			bc.Close()
			return nil, fmt.Errorf("ssh: %s: through bastion %s: %w", addr, baddr, err)
		}
	}
	c, err := handshake(ctx, cfg, "", addr, cfg.User, cfg.Auth, hostKey, func() (net.Conn, error) {
		if conn != nil {
			return conn, nil
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
	if err != nil {
		if bastion != nil {
			bastion.Close()
		}
		return nil, err
	}
	return &client{Client: c, bastion: bastion}, nil
}

// hostKeyOnly is the host key check of a bastion: the known_hosts file
// if any (the fingerprint pins the target), else none.
func hostKeyOnly(cfg *Config) ssh.HostKeyCallback {
	if cfg.KnownHostsFile == "" {
		return ssh.InsecureIgnoreHostKey()
	}
	pinned := *cfg
	pinned.HostKeyFingerprint = ""
	pinned.Say = nil
	cb, err := hostKeyCallback(&pinned)
	if err != nil {
		return func(string, net.Addr, ssh.PublicKey) error { return err }
	}
	return cb
}

// handshake opens a connection with open and logs in as user.
func handshake(ctx context.Context, cfg *Config, role, addr, user string, auth Auth, hostKey ssh.HostKeyCallback, open func() (net.Conn, error)) (*ssh.Client, error) {
	conn, err := open()
	if err != nil {
		return nil, fmt.Errorf("ssh: %s%s: %w", role, addr, err)
	}
	if cfg.ReadWriteTimeout > 0 {
		conn = &deadlineConn{Conn: conn, timeout: cfg.ReadWriteTimeout}
	}
	methods, tried, cleanup, err := authMethods(auth)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh: %s%s: user %s: %w", role, addr, user, err)
	}
	defer cleanup()
	// The handshake is bounded by ctx (closing the connection ends it) and
	// by handshakeTimeout, so that a server that accepts connections but
	// does not speak yet is retried.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	// Channels through a bastion have no deadlines: ctx bounds them.
	deadlined := conn.SetDeadline(time.Now().Add(handshakeTimeout)) == nil
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            user,
		Auth:            methods,
		HostKeyCallback: hostKey,
	})
	stop()
	if err == nil && deadlined {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh: %s%s: %w", role, addr, context.Cause(ctx))
		}
		// x/crypto reports a rejected login only in its message.
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("ssh: %s%s: user %s: %w: %s", role, addr, user, ErrAuth, tried.report(auth))
		}
		return nil, fmt.Errorf("ssh: %s%s: user %s: %w", role, addr, user, err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// handshakeTimeout bounds one attempt's handshake and authentication.
const handshakeTimeout = 30 * time.Second

// triedMethods records which authentication methods the client offered.
type triedMethods struct {
	mu   sync.Mutex
	seen []string
}

func (t *triedMethods) mark(m string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.Contains(t.seen, m) {
		t.seen = append(t.seen, m)
	}
}

// report says, for each method, whether it was rejected, not allowed by
// the server or not configured, e.g. "publickey rejected, password not
// configured".
func (t *triedMethods) report(auth Auth) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	configured := map[string]bool{
		"publickey":            len(auth.Signers) > 0 || auth.Agent,
		"password":             auth.Password != "",
		"keyboard-interactive": auth.Password != "",
	}
	var parts []string
	for _, m := range []string{"publickey", "password", "keyboard-interactive"} {
		switch {
		case slices.Contains(t.seen, m):
			parts = append(parts, m+" rejected")
		case configured[m]:
			parts = append(parts, m+" not allowed by the server")
		case m != "keyboard-interactive":
			parts = append(parts, m+" not configured")
		}
	}
	return strings.Join(parts, ", ")
}

// authMethods returns auth as ssh.AuthMethods that record their use in
// tried. cleanup closes the agent connection, if any.
func authMethods(auth Auth) (methods []ssh.AuthMethod, tried *triedMethods, cleanup func(), err error) {
	tried = new(triedMethods)
	cleanup = func() {}
	signers := slices.Clone(auth.Signers)
	if auth.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, nil, cleanup, errors.New("agent authentication: SSH_AUTH_SOCK is not set")
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, cleanup, fmt.Errorf("agent authentication: %w", err)
		}
		cleanup = func() { conn.Close() }
		as, err := agent.NewClient(conn).Signers()
		if err != nil {
			cleanup()
			return nil, nil, func() {}, fmt.Errorf("agent authentication: listing keys: %w", err)
		}
		signers = append(signers, as...)
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			tried.mark("publickey")
			return signers, nil
		}))
	}
	if pw := auth.Password; pw != "" {
		methods = append(methods,
			ssh.PasswordCallback(func() (string, error) {
				tried.mark("password")
				return pw, nil
			}),
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				tried.mark("keyboard-interactive")
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, nil, cleanup, errors.New("no authentication method configured (a password, a private key or the agent)")
	}
	return methods, tried, cleanup, nil
}

// deadlineConn fails a read or write that makes no progress for timeout.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

// Read and Write set the deadline where the connection supports them
// (channels through a bastion do not).
func (c *deadlineConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}
