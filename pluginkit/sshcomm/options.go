package sshcomm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/packer-stdio/packer/pluginkit"
)

// Options are the template keys of Packer's SSH communicator, with its
// names and defaults, plus ssh_known_hosts_file and
// ssh_host_key_fingerprint. Embed it in a builder's configuration struct,
// call [Options.Prepare] from the builder's Prepare and [Options.Config] to
// get the [Config] for [Connect]. Durations are Go durations ("5m", "30s").
type Options struct {
	SSHHost     string `json:"ssh_host,omitempty" jsonschema_description:"The address to SSH to."`
	SSHPort     Port   `json:"ssh_port,omitempty" jsonschema_description:"The port to connect to SSH. Default: 22."`
	SSHUsername string `json:"ssh_username,omitempty" jsonschema_description:"The username to connect to SSH with. Required."`
	SSHPassword string `json:"ssh_password,omitempty" jsonschema_description:"A plaintext password to authenticate with (password and keyboard-interactive)."`

	SSHPrivateKeyFile  string `json:"ssh_private_key_file,omitempty" jsonschema_description:"Path to a private key (PEM or OpenSSH format) to authenticate with; ~ is expanded. Keys with a passphrase are refused: use ssh_agent_auth."`
	SSHCertificateFile string `json:"ssh_certificate_file,omitempty" jsonschema_description:"Path to an OpenSSH certificate for ssh_private_key_file."`
	SSHAgentAuth       bool   `json:"ssh_agent_auth,omitempty" jsonschema_description:"Authenticate with the keys of the agent at SSH_AUTH_SOCK."`

	SSHTimeout                string `json:"ssh_timeout,omitempty" jsonschema_description:"How long to wait for SSH to become available. Default: 5m (with ssh_handshake_attempts 10, when neither is set)."`
	SSHHandshakeAttempts      int    `json:"ssh_handshake_attempts,omitempty" jsonschema:"minimum=0" jsonschema_description:"How many rejected logins to accept before giving up. Default: 10 when ssh_timeout is not set either."`
	SSHKeepAliveInterval      string `json:"ssh_keep_alive_interval,omitempty" jsonschema_description:"How often to send keep-alive requests; a negative duration disables them. Default: 5s."`
	SSHReadWriteTimeout       string `json:"ssh_read_write_timeout,omitempty" jsonschema_description:"Fail a read or write on the connection that makes no progress for this long. Default: no limit."`
	SSHPty                    bool   `json:"ssh_pty,omitempty" jsonschema_description:"Request a pseudo-terminal for every command."`
	SSHDisableAgentForwarding bool   `json:"ssh_disable_agent_forwarding,omitempty" jsonschema_description:"Do not forward the local SSH agent to commands."`
	SSHFileTransferMethod     string `json:"ssh_file_transfer_method,omitempty" jsonschema:"enum=scp,enum=sftp" jsonschema_description:"How files travel: scp or sftp. Default: scp."`
	PauseBeforeConnecting     string `json:"pause_before_connecting,omitempty" jsonschema_description:"Wait this long before the first connection attempt."`

	SSHBastionHost            string `json:"ssh_bastion_host,omitempty" jsonschema_description:"A bastion (jump) host to connect through."`
	SSHBastionPort            int    `json:"ssh_bastion_port,omitempty" jsonschema:"minimum=0,maximum=65535" jsonschema_description:"The bastion's SSH port. Default: 22."`
	SSHBastionUsername        string `json:"ssh_bastion_username,omitempty" jsonschema_description:"The user on the bastion."`
	SSHBastionPassword        string `json:"ssh_bastion_password,omitempty" jsonschema_description:"The password on the bastion."`
	SSHBastionPrivateKeyFile  string `json:"ssh_bastion_private_key_file,omitempty" jsonschema_description:"Private key for the bastion; ~ is expanded. Default: ssh_private_key_file."`
	SSHBastionCertificateFile string `json:"ssh_bastion_certificate_file,omitempty" jsonschema_description:"OpenSSH certificate for ssh_bastion_private_key_file."`
	SSHBastionAgentAuth       bool   `json:"ssh_bastion_agent_auth,omitempty" jsonschema_description:"Authenticate to the bastion with the agent at SSH_AUTH_SOCK."`

	SSHLocalTunnels  []string `json:"ssh_local_tunnels,omitempty" jsonschema_description:"Ports to forward from this machine to the remote side while connected, as ssh -L: [bind_address:]port:host:hostport."`
	SSHRemoteTunnels []string `json:"ssh_remote_tunnels,omitempty" jsonschema_description:"Ports to forward from the remote machine to this side while connected, as ssh -R: [bind_address:]port:host:hostport."`

	SSHKnownHostsFile     string `json:"ssh_known_hosts_file,omitempty" jsonschema_description:"Not in Packer: an OpenSSH known_hosts file the host key must be listed in."`
	SSHHostKeyFingerprint string `json:"ssh_host_key_fingerprint,omitempty" jsonschema_description:"Not in Packer: the SHA256 fingerprint (as ssh-keygen -l prints it) the host key must have."`
}

// Prepare fills in Packer's defaults and checks the options as Packer
// does: ssh_username is required, key files must exist and parse (a key
// with a passphrase is an error), durations must parse and
// ssh_file_transfer_method must be scp or sftp. requireHost adds Packer's
// null builder checks: ssh_host and one authentication method are
// required. Errors carry the JSON pointer of the key.
func (o *Options) Prepare(requireHost bool) (warnings []string, errs pluginkit.ConfigErrors) {
	add := func(key, format string, args ...any) {
		errs = append(errs, pluginkit.ConfigError{Path: "/" + key, Message: fmt.Sprintf(format, args...)})
	}
	if o.SSHPort == 0 {
		o.SSHPort = DefaultPort
	}
	if o.SSHTimeout == "" && o.SSHHandshakeAttempts == 0 {
		o.SSHTimeout = DefaultTimeout.String()
		o.SSHHandshakeAttempts = DefaultHandshakeAttempts
	}
	if o.SSHKeepAliveInterval == "" {
		o.SSHKeepAliveInterval = DefaultKeepAliveInterval.String()
	}
	if o.SSHFileTransferMethod == "" {
		o.SSHFileTransferMethod = string(SCP)
	}
	for key, v := range map[string]string{
		"ssh_timeout":             o.SSHTimeout,
		"ssh_keep_alive_interval": o.SSHKeepAliveInterval,
		"ssh_read_write_timeout":  o.SSHReadWriteTimeout,
		"pause_before_connecting": o.PauseBeforeConnecting,
	} {
		if _, err := parseDuration(v); err != nil {
			add(key, "%v", err)
		}
	}
	if o.SSHUsername == "" {
		add("ssh_username", "an ssh_username must be specified")
	}
	if o.SSHPrivateKeyFile == "" && o.SSHCertificateFile != "" {
		add("ssh_private_key_file", "ssh_private_key_file must be specified if ssh_certificate_file is specified")
	}
	if o.SSHPrivateKeyFile != "" {
		if _, err := LoadSigner(o.SSHPrivateKeyFile, o.SSHCertificateFile); err != nil {
			add("ssh_private_key_file", "ssh_private_key_file is invalid: %v", err)
		}
	}
	if o.SSHBastionHost != "" {
		if o.SSHBastionPort == 0 {
			o.SSHBastionPort = DefaultPort
		}
		if o.SSHBastionPrivateKeyFile == "" && o.SSHPrivateKeyFile != "" {
			o.SSHBastionPrivateKeyFile = o.SSHPrivateKeyFile
			o.SSHBastionCertificateFile = o.SSHCertificateFile
		}
		if o.SSHBastionPassword == "" && o.SSHBastionPrivateKeyFile == "" && !o.SSHBastionAgentAuth {
			add("ssh_bastion_host", "ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth must be specified")
		} else if o.SSHBastionPrivateKeyFile != "" && o.SSHBastionPrivateKeyFile != o.SSHPrivateKeyFile {
			if _, err := LoadSigner(o.SSHBastionPrivateKeyFile, o.SSHBastionCertificateFile); err != nil {
				add("ssh_bastion_private_key_file", "ssh_bastion_private_key_file is invalid: %v", err)
			}
		}
	}
	if m := TransferMethod(o.SSHFileTransferMethod); m != SCP && m != SFTP {
		add("ssh_file_transfer_method", "ssh_file_transfer_method (%q) is invalid, valid methods: sftp, scp", o.SSHFileTransferMethod)
	}
	for i, spec := range o.SSHLocalTunnels {
		if _, err := ParseTunnel(spec, false); err != nil {
			add(fmt.Sprintf("ssh_local_tunnels/%d", i), "%v", err)
		}
	}
	for i, spec := range o.SSHRemoteTunnels {
		if _, err := ParseTunnel(spec, true); err != nil {
			add(fmt.Sprintf("ssh_remote_tunnels/%d", i), "%v", err)
		}
	}
	if o.SSHKnownHostsFile != "" {
		if _, err := ExpandUser(o.SSHKnownHostsFile); err != nil {
			add("ssh_known_hosts_file", "%v", err)
		}
	}
	if requireHost {
		if o.SSHHost == "" {
			add("ssh_host", "a host must be specified, please reference your communicator documentation")
		}
		if !o.SSHAgentAuth && o.SSHPassword == "" && o.SSHPrivateKeyFile == "" {
			add("ssh_password", "one authentication method must be specified: ssh_password, ssh_private_key_file or ssh_agent_auth")
		}
	}
	return warnings, errs
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// Config returns the [Config] for [Connect] that the options (after
// Prepare) describe, loading the key files. say receives what the user
// should see (pass the builder's UI.Say); it may be nil.
func (o *Options) Config(say func(string)) (Config, error) {
	cfg := Config{
		Host:                   o.SSHHost,
		Port:                   int(o.SSHPort),
		User:                   o.SSHUsername,
		Auth:                   Auth{Password: o.SSHPassword, Agent: o.SSHAgentAuth},
		KnownHostsFile:         o.SSHKnownHostsFile,
		HostKeyFingerprint:     o.SSHHostKeyFingerprint,
		HandshakeAttempts:      o.SSHHandshakeAttempts,
		Pty:                    o.SSHPty,
		DisableAgentForwarding: o.SSHDisableAgentForwarding,
		FileTransfer:           TransferMethod(o.SSHFileTransferMethod),
		Say:                    say,
	}
	var err error
	durations := []struct {
		key string
		v   string
		dst *time.Duration
	}{
		{"ssh_timeout", o.SSHTimeout, &cfg.Timeout},
		{"ssh_keep_alive_interval", o.SSHKeepAliveInterval, &cfg.KeepAliveInterval},
		{"ssh_read_write_timeout", o.SSHReadWriteTimeout, &cfg.ReadWriteTimeout},
		{"pause_before_connecting", o.PauseBeforeConnecting, &cfg.PauseBeforeConnecting},
	}
	for _, d := range durations {
		if *d.dst, err = parseDuration(d.v); err != nil {
			return Config{}, fmt.Errorf("%s: %w", d.key, err)
		}
	}
	if o.SSHTimeout == "" {
		cfg.Timeout = -1 // handshake attempts only, as Packer
	}
	for _, spec := range o.SSHLocalTunnels {
		t, err := ParseTunnel(spec, false)
		if err != nil {
			return Config{}, fmt.Errorf("ssh_local_tunnels: %w", err)
		}
		cfg.Tunnels = append(cfg.Tunnels, t)
	}
	for _, spec := range o.SSHRemoteTunnels {
		t, err := ParseTunnel(spec, true)
		if err != nil {
			return Config{}, fmt.Errorf("ssh_remote_tunnels: %w", err)
		}
		cfg.Tunnels = append(cfg.Tunnels, t)
	}
	if o.SSHPrivateKeyFile != "" {
		s, err := LoadSigner(o.SSHPrivateKeyFile, o.SSHCertificateFile)
		if err != nil {
			return Config{}, fmt.Errorf("ssh_private_key_file: %w", err)
		}
		cfg.Auth.Signers = append(cfg.Auth.Signers, s)
	}
	if o.SSHBastionHost != "" {
		b := &Bastion{Host: o.SSHBastionHost, Port: int(o.SSHBastionPort), User: o.SSHBastionUsername,
			Auth: Auth{Password: o.SSHBastionPassword, Agent: o.SSHBastionAgentAuth}}
		if o.SSHBastionPrivateKeyFile != "" {
			s, err := LoadSigner(o.SSHBastionPrivateKeyFile, o.SSHBastionCertificateFile)
			if err != nil {
				return Config{}, fmt.Errorf("ssh_bastion_private_key_file: %w", err)
			}
			b.Auth.Signers = append(b.Auth.Signers, s)
		}
		cfg.Bastion = b
	}
	return cfg, nil
}

// Port is a TCP port in a template: a number, or a string holding one (so
// that "{{user `port`}}" works, as in Packer).
type Port int

// UnmarshalJSON accepts 22 and "22".
func (p *Port) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 0 to 65535", s)
		}
		*p = Port(n)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %s is not a number from 0 to 65535", b)
	}
	*p = Port(n)
	return nil
}

// JSONSchema describes a Port for the configuration schema.
func (Port) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
		{Type: "integer", Minimum: json.Number("0"), Maximum: json.Number("65535")},
		{Type: "string", Pattern: "^[0-9]+$"},
	}}
}
