package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

// ErrExited means the plugin process exited, or closed its stdout, while the
// host still needed it.
var ErrExited = errors.New("plugin exited unexpectedly")

// ErrProtocolViolation means the plugin wrote something on stdout that is not
// a valid protocol message, or answered a request the host never sent. The
// *protocol.ViolationError, when there is one, is also in the chain.
var ErrProtocolViolation = errors.New("plugin broke the protocol")

// ErrTimeout means the plugin did not answer the handshake, or did not exit
// after shutdown, within the configured time.
var ErrTimeout = errors.New("plugin did not respond in time")

// ErrBadHandshake means the plugin's answer to initialize is not acceptable:
// a version that was not offered, an invalid component list or limits.
var ErrBadHandshake = errors.New("invalid handshake answer")

// ErrKilled means the host killed the plugin with [Plugin.Kill].
var ErrKilled = errors.New("plugin killed by the host")

// ErrClosed is returned by calls on a plugin that [Plugin.Close] has closed.
var ErrClosed = errors.New("plugin is closed")

// PluginError is the error every [Plugin] and [Instance] method returns. It
// names the plugin and the operation; when the plugin died or broke the
// protocol, it also carries how the process ended and its last stderr lines.
type PluginError struct {
	// Plugin is [Options.Name].
	Plugin string
	// Op is the operation: a protocol method ("builder/run"), "start" or "close".
	Op string
	// Err is what happened; it may be a *protocol.Error answered by the
	// plugin, or wrap [ErrExited], [ErrProtocolViolation], [ErrTimeout], ...
	Err error
	// Exit is how the process ended, e.g. "exit status 3" or "signal:
	// killed"; empty while it runs or without a process.
	Exit string
	// StderrTail holds the plugin's last stderr lines (at most 20, each cut
	// to about 512 bytes) when the plugin died or broke the protocol.
	StderrTail []string
}

// Error names the plugin, says what happened and includes the stderr tail.
func (e *PluginError) Error() string {
	var b strings.Builder
	if ve := (*VersionError)(nil); errors.As(e.Err, &ve) {
		b.WriteString(ve.Error()) // already names the plugin, for a person
	} else {
		fmt.Fprintf(&b, "plugin %s", e.Plugin)
		if e.Op != "" {
			fmt.Fprintf(&b, ": %s", e.Op)
		}
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Exit != "" {
		fmt.Fprintf(&b, " (%s)", e.Exit)
	}
	if len(e.StderrTail) > 0 {
		b.WriteString("\nlast lines of its stderr:")
		for _, l := range e.StderrTail {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns Err.
func (e *PluginError) Unwrap() error { return e.Err }

func (e *PluginError) withOp(op string) *PluginError {
	c := *e
	c.Op = op
	return &c
}

// ConfigErrors returns the per-key errors of a configuration-invalid error
// ([protocol.ErrConfigInvalid] anywhere in err's chain), and nil for other
// errors. A broken key rule of the component's config_schema (SPEC §6.1) is
// one error at each key it concerns, all with the same message: a caller
// that shows errors may show those together.
func ConfigErrors(err error) []protocol.ConfigError {
	pe := protocol.AsError(err)
	if pe == nil || !errors.Is(pe, protocol.ErrConfigInvalid) {
		return nil
	}
	var d protocol.ConfigInvalidData
	if err := json.Unmarshal(pe.Data, &d); err != nil {
		return []protocol.ConfigError{{Message: pe.Message}}
	}
	return d.Errors
}

func configWarnings(err error) []string {
	pe := protocol.AsError(err)
	if pe == nil || !errors.Is(pe, protocol.ErrConfigInvalid) {
		return nil
	}
	var d protocol.ConfigInvalidData
	if json.Unmarshal(pe.Data, &d) != nil {
		return nil
	}
	return d.Warnings
}
