package sshcomm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults of [Config], Packer's.
const (
	DefaultPort              = 22
	DefaultTimeout           = 5 * time.Minute
	DefaultHandshakeAttempts = 10
	DefaultKeepAliveInterval = 5 * time.Second
	DefaultRetryInterval     = 5 * time.Second
)

// TransferMethod says how files travel: [SCP] or [SFTP].
type TransferMethod string

// Transfer methods.
const (
	// SCP speaks the scp protocol to the remote "scp" program over an SSH
	// session (Packer's default).
	SCP TransferMethod = "scp"
	// SFTP uses the server's sftp subsystem.
	SFTP TransferMethod = "sftp"
)

// Auth is how to authenticate to one server. Methods are offered in the
// order public keys (Signers, then the agent's), password, then
// keyboard-interactive answering every question with Password.
type Auth struct {
	// Password, when not empty, is offered as "password" and
	// "keyboard-interactive".
	Password string
	// Signers are private keys (possibly with certificates, see
	// [LoadSigner]) offered as "publickey".
	Signers []ssh.Signer
	// Agent offers the keys of the agent at $SSH_AUTH_SOCK.
	Agent bool
}

// Bastion is a jump host: the connection to the target is a channel
// ("direct-tcpip") opened on an SSH connection to it.
type Bastion struct {
	Host string
	// Port is the bastion's SSH port; 0 means 22.
	Port int
	User string
	Auth Auth
}

// Config says how [Connect] reaches a machine. The zero values of the
// optional fields mean Packer's defaults.
type Config struct {
	// Host and Port are the SSH server's address; Port 0 means 22.
	Host string
	Port int
	// User is the user to log in as.
	User string
	// Auth is how to authenticate.
	Auth Auth
	// Bastion, when not nil, is the jump host to connect through.
	Bastion *Bastion

	// KnownHostsFile is an OpenSSH known_hosts file the host key (and the
	// bastion's) must be listed in.
	KnownHostsFile string
	// HostKeyFingerprint is the SHA256 fingerprint ("SHA256:..." as
	// ssh-keygen -l prints it) the target's host key must have.
	HostKeyFingerprint string

	// Timeout bounds how long Connect waits for the machine to answer;
	// 0 means DefaultTimeout, negative means no bound.
	Timeout time.Duration
	// HandshakeAttempts is how many rejected authentications Connect
	// accepts before giving up (a machine may not have its keys yet);
	// 0 means no limit other than Timeout.
	HandshakeAttempts int
	// RetryInterval is the wait between two connection attempts; 0 means
	// DefaultRetryInterval.
	RetryInterval time.Duration
	// PauseBeforeConnecting is waited once before the first attempt.
	PauseBeforeConnecting time.Duration

	// KeepAliveInterval is how often a keep-alive request is sent; 0 means
	// DefaultKeepAliveInterval, negative disables them. A connection whose
	// server leaves three in a row unanswered is closed.
	KeepAliveInterval time.Duration
	// ReadWriteTimeout, when positive, fails a read or a write on the
	// connection that makes no progress for that long.
	ReadWriteTimeout time.Duration

	// Pty requests a pseudo-terminal for every command.
	Pty bool
	// DisableAgentForwarding turns off forwarding the local agent
	// ($SSH_AUTH_SOCK) to commands.
	DisableAgentForwarding bool
	// FileTransfer is SCP (the default) or SFTP.
	FileTransfer TransferMethod
	// Tunnels are ports to forward while connected (see [ParseTunnel]).
	Tunnels []Tunnel

	// Say, when not nil, receives the messages a user should see: the
	// wait, the connection, the unverified host key.
	Say func(string)
	// Log, when not nil, receives details: each failed attempt.
	Log func(string)
}

func (c *Config) say(msg string) {
	if c.Say != nil {
		c.Say(msg)
	}
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(fmt.Sprintf(format, args...))
	}
}

// ExpandUser replaces a leading "~" or "~/" in path with the current
// user's home directory.
func ExpandUser(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expanding %s: %w", path, err)
	}
	return filepath.Join(home, strings.TrimPrefix(path, "~")), nil
}

// ErrEncryptedKey is returned by [LoadSigner] for a private key protected
// by a passphrase: load it into an agent and use Auth.Agent instead.
var ErrEncryptedKey = errors.New("private key is encrypted with a passphrase; add it to an ssh-agent and use agent authentication, or use a key without a passphrase")

// LoadSigner reads the private key in keyFile (PEM or OpenSSH format; "~"
// expanded) and, when certFile is not empty, pairs it with the OpenSSH
// certificate in certFile. Errors name the file; a key protected by a
// passphrase gives an error wrapping [ErrEncryptedKey].
func LoadSigner(keyFile, certFile string) (ssh.Signer, error) {
	path, err := ExpandUser(keyFile)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%s: %w", path, ErrEncryptedKey)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key %s: %w", path, err)
	}
	if certFile == "" {
		return signer, nil
	}
	cpath, err := ExpandUser(certFile)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(cpath)
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %s: %w", cpath, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s is a public key, not a certificate", cpath)
	}
	cs, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return nil, fmt.Errorf("certificate %s does not match private key %s: %w", cpath, path, err)
	}
	return cs, nil
}
