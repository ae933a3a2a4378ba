package build

import (
	"context"
	"errors"
	"strings"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// Cancelled is the cause of a build that was cancelled, in Packer's words.
const Cancelled = "Build was cancelled."

// Cause returns what a person needs to read of a build's error: the
// failing component's own message, said once, without the layers the error
// crossed on its way (plugin, method, hook, relay), which the runner writes
// to the log instead. A plugin that crashed or broke the protocol keeps the
// whole report (exit status and the last lines of its stderr); a cancelled
// build's cause is [Cancelled]. Several errors (joined) give their causes
// one per line.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e := e.(type) {
		case *causeError:
			return e.msg
		case *ConfigError:
			return e.msg // its lines point at the template
		case interface{ Unwrap() []error }:
			var causes []string
			for _, je := range e.Unwrap() {
				if c := Cause(je); c != "" {
					causes = append(causes, c)
				}
			}
			return strings.Join(causes, "\n")
		}
	}
	if errors.Is(err, protocol.ErrCancelled) || errors.Is(err, context.Canceled) {
		return Cancelled
	}
	pe := innermostPluginError(err)
	if pe == nil {
		return err.Error()
	}
	perr := protocol.AsError(pe.Err)
	switch {
	case perr == nil || pe.Exit != "" || len(pe.StderrTail) > 0:
		// The process died or broke the protocol: all of it matters.
		return pe.Error()
	case errors.Is(perr, protocol.ErrComponentFailed):
		return strings.TrimPrefix(perr.Message, protocol.ErrComponentFailed.Message+": ")
	}
	return perr.Message
}

// innermostPluginError returns the deepest *host.PluginError in err's
// chain: the component where the failure started.
func innermostPluginError(err error) *host.PluginError {
	var found *host.PluginError
	for e := err; e != nil; e = errors.Unwrap(e) {
		if pe, ok := e.(*host.PluginError); ok {
			found = pe
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, je := range j.Unwrap() {
				if pe := innermostPluginError(je); pe != nil {
					return pe
				}
			}
			break
		}
	}
	return found
}

// causeError is a failure the runner itself diagnosed (a provisioner's
// timeout): its message is the cause, whatever it wraps.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *causeError) Unwrap() error { return e.err }
