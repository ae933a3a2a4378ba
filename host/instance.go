package host

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Instance is a prepared component in a plugin. Its handle is valid only on
// the plugin's connection.
type Instance struct {
	p      *Plugin
	typ    string
	name   string
	handle string
}

// Type returns the component type ([protocol.TypeBuilder], ...).
func (i *Instance) Type() string { return i.typ }

// Name returns the component name.
func (i *Instance) Name() string { return i.name }

// Handle returns the instance handle the plugin minted.
func (i *Instance) Handle() string { return i.handle }

// Prepare configures a new instance of the component typ/name. Each config is
// a JSON object (any value that encodes to one, or a json.RawMessage); the
// plugin merges them in order, a key in a later object replacing the same
// key in an earlier one. It returns the plugin's warnings. When the plugin
// rejects the configuration, the error wraps [protocol.ErrConfigInvalid],
// [ConfigErrors] gives the errors with their JSON-pointer paths, and the
// warnings are still returned. A plugin that does not answer within
// [Options.PrepareTimeout] is killed, and the error wraps [ErrTimeout].
func (p *Plugin) Prepare(ctx context.Context, typ, name string, configs ...any) (*Instance, []string, error) {
	params := protocol.PrepareParams{Type: typ, Name: name, Configs: make([]json.RawMessage, 0, len(configs))}
	for n, c := range configs {
		var raw json.RawMessage
		switch c := c.(type) {
		case json.RawMessage:
			raw = c
		case []byte:
			raw = c
		default:
			b, err := json.Marshal(c)
			if err != nil {
				return nil, nil, &PluginError{Plugin: p.name, Op: protocol.MethodPrepare, Err: fmt.Errorf("config %d: %w", n, err)}
			}
			raw = b
		}
		params.Configs = append(params.Configs, raw)
	}
	var res protocol.PrepareResult
	// Preparing only checks a configuration: a plugin that has not
	// answered within PrepareTimeout is hung, and is killed.
	var timedOut atomic.Bool
	timer := time.AfterFunc(p.opts.PrepareTimeout, func() {
		timedOut.Store(true)
		p.Kill()
	})
	err := p.conn.Call(ctx, protocol.MethodPrepare, params, &res)
	timer.Stop()
	if err != nil && timedOut.Load() {
		return nil, nil, &PluginError{Plugin: p.name, Op: protocol.MethodPrepare,
			Err: fmt.Errorf("%w: no answer to %s within %v; the plugin was killed", ErrTimeout, protocol.MethodPrepare, p.opts.PrepareTimeout)}
	}
	if err != nil {
		return nil, configWarnings(err), p.callErr(protocol.MethodPrepare, err)
	}
	if res.Instance == "" {
		return nil, res.Warnings, &PluginError{Plugin: p.name, Op: protocol.MethodPrepare, Err: fmt.Errorf("%w: the answer has no instance handle", ErrProtocolViolation)}
	}
	return &Instance{p: p, typ: typ, name: name, handle: res.Instance}, res.Warnings, nil
}

func (i *Instance) want(op, typ string) error {
	if i.typ != typ {
		return &PluginError{Plugin: i.p.name, Op: op, Err: fmt.Errorf("%w: %s %q is a %s, not a %s", protocol.ErrUnsupported, i.name, i.handle, i.typ, typ)}
	}
	return nil
}

// Run runs a prepared builder and returns its artifact (nil when it made
// none). While it runs, the plugin's hook/run calls are served one at a
// time; once it is answered, a hook/run still in flight is cancelled and
// waited for, and a later one is refused (SPEC §7.3). Cancelling ctx sends
// $/cancelRequest and waits at most CancelGrace
// for the answer; the error then wraps [protocol.ErrCancelled] when the
// plugin stopped, or ctx.Err() when it did not answer in time.
func (i *Instance) Run(ctx context.Context) (*protocol.Artifact, error) {
	if err := i.want(protocol.MethodBuilderRun, protocol.TypeBuilder); err != nil {
		return nil, err
	}
	var res protocol.BuilderRunResult
	end := i.p.hooks.beginRun()
	err := i.p.conn.Call(ctx, protocol.MethodBuilderRun, protocol.InstanceParams{Instance: i.handle}, &res)
	end()
	if err != nil {
		return nil, i.p.callErr(protocol.MethodBuilderRun, err)
	}
	return res.Artifact, nil
}

// Provision runs a prepared provisioner with comm (nil for none) and the
// builder's generated data. For the duration of the call the host mints a
// communicator handle on this plugin's connection that serves the plugin's
// communicator/* calls with comm. Cancelling ctx works as for [Instance.Run].
func (i *Instance) Provision(ctx context.Context, comm Communicator, data map[string]any) error {
	if err := i.want(protocol.MethodProvision, protocol.TypeProvisioner); err != nil {
		return err
	}
	if data == nil {
		data = map[string]any{}
	}
	params := protocol.ProvisionParams{Instance: i.handle, Data: data}
	if comm != nil {
		h, release := i.p.mintComm(comm)
		defer release()
		params.Communicator = h
	}
	err := i.p.conn.Call(ctx, protocol.MethodProvision, params, nil)
	return i.p.callErr(protocol.MethodProvision, err)
}

// PostProcess runs a prepared post-processor on the artifact in (its handle
// is not sent: it is not valid on this connection). It returns the new
// artifact (nil for none), whether to keep the input, and whether to keep it
// even when the user asked otherwise. Cancelling ctx works as for
// [Instance.Run].
func (i *Instance) PostProcess(ctx context.Context, in protocol.Artifact) (out *protocol.Artifact, keep, forceOverride bool, err error) {
	if err := i.want(protocol.MethodPostProcess, protocol.TypePostProcessor); err != nil {
		return nil, false, false, err
	}
	in.Handle = ""
	if in.Files == nil {
		in.Files = []string{}
	}
	var res protocol.PostProcessResult
	if err := i.p.conn.Call(ctx, protocol.MethodPostProcess, protocol.PostProcessParams{Instance: i.handle, Artifact: in}, &res); err != nil {
		return nil, false, false, i.p.callErr(protocol.MethodPostProcess, err)
	}
	return res.Artifact, res.Keep, res.ForceOverride, nil
}

// DestroyArtifact asks the plugin that made a to destroy it. An artifact
// without a handle cannot be destroyed: DestroyArtifact then returns nil
// without asking.
func (p *Plugin) DestroyArtifact(ctx context.Context, a *protocol.Artifact) error {
	if a == nil || a.Handle == "" {
		return nil
	}
	err := p.conn.Call(ctx, protocol.MethodArtifactDestroy, protocol.ArtifactDestroyParams{Artifact: a.Handle}, nil)
	return p.callErr(protocol.MethodArtifactDestroy, err)
}
