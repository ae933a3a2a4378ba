package host

import (
	"io"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Options configure a [Plugin]. The zero value is usable.
type Options struct {
	// Name names the plugin in log prefixes and errors. The default is the
	// base name of the command's path, or "plugin".
	Name string
	// Stderr receives the plugin's stderr, one "NAME: line\n" per Write.
	// Writes from all plugins are serialized. If Stderr blocks, the plugin
	// blocks when its stderr pipe fills. Nil discards the lines (the last
	// ones are still kept for errors).
	Stderr io.Writer
	// UI receives ui/* calls. Nil drops say, message, error, machine and
	// progress, and answers ask with [protocol.ErrUnsupported].
	UI UI
	// Hook runs hook/run calls. Nil answers them with [protocol.ErrUnsupported].
	Hook Hook
	// Redactor, if not nil, masks the plugin's stderr before it is cut into
	// pieces, forwarded to Stderr or kept for errors, so that no cut
	// splits a secret into parts that escape the mask.
	Redactor Redactor
	// Tracer, if not nil, records every line in both directions, labelled
	// with Name. It sees the configuration sent in component/prepare: give
	// it a mask ([protocol.Tracer.WithMask]) when the build has secrets.
	Tracer *protocol.Tracer
	// HandshakeTimeout bounds start and initialize. Default 10s.
	HandshakeTimeout time.Duration
	// MaxCallbacks bounds how many of the plugin's requests (ui/ask,
	// hook/run, communicator/*, stream/*) the host handles at once; one
	// over it is answered with [protocol.ErrTooManyRequests] without being
	// handled (SPEC §10). Default 64.
	MaxCallbacks int
	// PrepareTimeout bounds each component/prepare. Preparing only checks
	// a configuration: a plugin that has not answered within it is taken
	// for hung and killed (as by [Plugin.Kill]), and Prepare returns an
	// error wrapping [ErrTimeout]. Default 1m.
	PrepareTimeout time.Duration
	// CancelGrace is how long a cancelled call waits for the plugin's
	// answer. Default 5s.
	CancelGrace time.Duration
	// ShutdownGrace bounds the wait for the answer to shutdown, and then
	// the wait for the process to exit after its stdin is closed. Default 2s.
	ShutdownGrace time.Duration
	// KillGrace is the wait after SIGTERM to the process group before
	// SIGKILL. Default 2s.
	KillGrace time.Duration
	// HostInfo is sent in initialize. Default {Name: "packer"}.
	HostInfo protocol.Peer
	// Capabilities are sent in initialize.
	Capabilities protocol.HostCapabilities
	// ProtocolVersions are offered in initialize, most preferred first.
	// Default [protocol.SupportedVersions].
	ProtocolVersions []int
}

// Defaults used for zero [Options] fields.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultShutdownGrace    = 2 * time.Second
	DefaultKillGrace        = 2 * time.Second
	DefaultPrepareTimeout   = time.Minute
	DefaultMaxCallbacks     = 64
)

func (o Options) withDefaults(cmd *exec.Cmd) Options {
	if o.Name == "" {
		o.Name = "plugin"
		if cmd != nil && cmd.Path != "" {
			o.Name = filepath.Base(cmd.Path)
		}
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxCallbacks <= 0 {
		o.MaxCallbacks = DefaultMaxCallbacks
	}
	if o.PrepareTimeout <= 0 {
		o.PrepareTimeout = DefaultPrepareTimeout
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = protocol.DefaultCancelGrace
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.HostInfo.Name == "" {
		o.HostInfo.Name = "packer"
	}
	if len(o.ProtocolVersions) == 0 {
		o.ProtocolVersions = protocol.SupportedVersions
	}
	o.ProtocolVersions = append([]int(nil), o.ProtocolVersions...)
	return o
}
