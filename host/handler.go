package host

import (
	"context"
	"errors"

	"github.com/packer-stdio/packer/protocol"
)

// handle serves the plugin's calls to the host: ui/*, hook/run and
// communicator/* on handles minted for Provision. It is the connection's
// Handler.
func (p *Plugin) handle(ctx context.Context, req *protocol.Request) (any, error) {
	ui := p.opts.UI
	switch req.Method {
	case protocol.MethodUISay, protocol.MethodUIMessage, protocol.MethodUIError:
		var m protocol.UIMessageParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		if ui != nil {
			switch req.Method {
			case protocol.MethodUISay:
				ui.Say(m.Message)
			case protocol.MethodUIMessage:
				ui.Message(m.Message)
			default:
				ui.Error(m.Message)
			}
		}
		return nil, nil
	case protocol.MethodUIMachine:
		var m protocol.UIMachineParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		if ui != nil {
			ui.Machine(m.Type, m.Data...)
		}
		return nil, nil
	case protocol.MethodUIProgress:
		var m protocol.UIProgressParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		if ui != nil {
			ui.Progress(m)
		}
		return nil, nil
	case protocol.MethodUIAsk:
		var m protocol.UIAskParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		if ui == nil {
			return nil, protocol.ErrUnsupported.WithMessage("this host cannot ask questions")
		}
		answer, err := ui.Ask(ctx, m.Query)
		if err != nil {
			return nil, callbackError(ctx, err)
		}
		return protocol.UIAskResult{Answer: answer}, nil
	case protocol.MethodHookRun:
		return nil, p.runHook(ctx, req)
	case protocol.MethodCommStart, protocol.MethodCommUpload, protocol.MethodCommDownload,
		protocol.MethodCommUploadDir, protocol.MethodCommDownloadDir:
		return p.serveComm(ctx, req)
	}
	return nil, protocol.ErrMethodNotFound.WithMessage("%s", req.Method)
}

func (p *Plugin) runHook(ctx context.Context, req *protocol.Request) error {
	var m protocol.HookRunParams
	if err := req.DecodeParams(&m); err != nil {
		return err
	}
	if p.opts.Hook == nil {
		return protocol.ErrUnsupported.WithMessage("this host runs no hooks")
	}
	ctx, leave, err := p.hooks.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	var comm Communicator
	if m.Communicator != "" {
		rc := newRemoteComm(p, m.Communicator)
		defer rc.expire()
		comm = rc
	}
	if m.Data == nil {
		m.Data = map[string]any{}
	}
	err = callbackError(ctx, p.opts.Hook.Run(ctx, m.Name, comm, m.Data))
	if errors.Is(err, protocol.ErrUnsupported) {
		// -32011 to hook/run means "this host runs no hooks", and the
		// builder carries on (SPEC §7.3): a hook that ran and failed with
		// -32011 (a provisioner that found no communicator) is a failure.
		return protocol.ErrComponentFailed.WithMessage("%v", err)
	}
	return err
}

// callbackError turns the error of a host-side callback into the answer the
// plugin gets: a cancelled request is answered as cancelled, a protocol error
// of the host's own keeps its code, anything else (including a failure in
// another plugin) is a component failure with the error's text.
func callbackError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var pe *PluginError
	if errors.As(err, &pe) {
		// A plugin answered with an error (the builder to a relayed
		// communicator call, a provisioner in a hook): its code and data
		// pass on unchanged (SPEC §7.3, §7.7), with the message saying
		// where it came from. Anything else that went wrong with the
		// plugin (it died, broke the protocol) is the host's failure.
		if werr, ok := pe.Err.(*protocol.Error); ok {
			return &protocol.Error{Code: werr.Code, Message: err.Error(), Data: werr.Data}
		}
		return protocol.ErrComponentFailed.WithMessage("%v", err)
	}
	if protocol.AsError(err) == nil {
		return protocol.ErrComponentFailed.WithMessage("%v", err)
	}
	return err
}
