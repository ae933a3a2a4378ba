package sshcomm

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// errHostKey marks host key failures, which Connect does not retry.
var errHostKey = errors.New("host key not verified")

// ErrHostKeyMismatch is wrapped by the error of [Connect] when the server's
// host key is not the one Config.HostKeyFingerprint pins or is not listed
// for the host in Config.KnownHostsFile.
var ErrHostKeyMismatch = fmt.Errorf("%w: host key mismatch", errHostKey)

// hostKeyCallback returns the check Config asks for: the known_hosts file
// and the fingerprint, both when both are set; none (with one warning
// through Say, once connected) when neither is.
func hostKeyCallback(cfg *Config) (ssh.HostKeyCallback, error) {
	var known ssh.HostKeyCallback
	if cfg.KnownHostsFile != "" {
		path, err := ExpandUser(cfg.KnownHostsFile)
		if err != nil {
			return nil, err
		}
		known, err = knownhosts.New(path)
		if err != nil {
			return nil, fmt.Errorf("reading known hosts: %w", err)
		}
	}
	pin := cfg.HostKeyFingerprint
	if pin != "" && !strings.HasPrefix(pin, "SHA256:") {
		pin = "SHA256:" + pin
	}
	warned := false
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		fp := ssh.FingerprintSHA256(key)
		if known != nil {
			if err := known(hostname, remote, key); err != nil {
				var ke *knownhosts.KeyError
				if errors.As(err, &ke) && len(ke.Want) == 0 {
					return fmt.Errorf("ssh: %s: %w: %s key %s is not in %s", hostname, ErrHostKeyMismatch, key.Type(), fp, cfg.KnownHostsFile)
				}
				return fmt.Errorf("ssh: %s: %w: %s key %s: %w", hostname, ErrHostKeyMismatch, key.Type(), fp, err)
			}
		}
		if pin != "" && fp != pin {
			return fmt.Errorf("ssh: %s: %w: %s key has fingerprint %s, want %s", hostname, ErrHostKeyMismatch, key.Type(), fp, pin)
		}
		if known == nil && pin == "" && !warned {
			warned = true
			cfg.say(fmt.Sprintf("Warning: the host key of %s (%s %s) was not verified; set ssh_known_hosts_file or ssh_host_key_fingerprint to check it", hostname, key.Type(), fp))
		}
		return nil
	}, nil
}
