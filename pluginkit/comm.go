package pluginkit

import (
	"context"
	"errors"
	"fmt"

	"github.com/packer-stdio/packer/internal/commwire"
	"github.com/packer-stdio/packer/protocol"
)

// hook is the Hook a builder's Run receives: hook/run on the host.
type hook struct{ s *session }

var _ Hook = hook{}

// Run calls hook/run. A non-nil comm gets a communicator handle that the
// host may use in communicator/* calls until hook/run is answered. A host
// that runs no hooks answers [protocol.ErrUnsupported]; Run then returns
// nil, as if the hook had nothing to do. Any other error keeps its protocol
// code, so the builder's answer carries it (SPEC §7.3).
func (h hook) Run(ctx context.Context, name string, comm Communicator, data map[string]any) error {
	s := h.s
	var handle string
	if comm != nil {
		s.mu.Lock()
		handle = s.mint('c')
		s.comms[handle] = comm
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.comms, handle)
			s.mu.Unlock()
		}()
	}
	if data == nil {
		data = map[string]any{}
	}
	err := s.conn.Call(ctx, protocol.MethodHookRun, protocol.HookRunParams{Name: name, Communicator: handle, Data: data}, nil)
	if errors.Is(err, protocol.ErrUnsupported) {
		// A host without hooks: nothing runs here, and the build goes on
		// (SPEC §7.3).
		s.logger.Printf("hook %s: the host runs no hooks: %v", name, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("hook %s: %w", name, err)
	}
	return nil
}

// lookupComm returns the communicator the builder offered under handle, for
// as long as its hook/run is in flight.
func (s *session) lookupComm(handle string) (Communicator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.comms[handle]
	if c == nil {
		return nil, protocol.ErrUnknownHandle.WithMessage("no communicator %q", handle)
	}
	return c, nil
}

// serveComm serves communicator/* calls the host makes on a communicator
// the builder offered through Hook.Run. A panic in the communicator is
// answered with ErrComponentPanicked, other errors as [componentError] says.
func (s *session) serveComm(ctx context.Context, req *protocol.Request) (any, error) {
	var res any
	err := s.protect(req.Method, func() (err error) {
		res, err = commwire.Serve(ctx, req, func(h string) (commwire.Communicator, error) { return s.lookupComm(h) })
		return err
	})
	if err != nil {
		return nil, componentError(ctx, err)
	}
	return res, nil
}

// newRemoteComm returns the Communicator a provisioner receives:
// communicator/* calls on the host with the handle the host minted for this
// provisioning (empty when the build has none: every method then fails with
// ErrUnsupported), offering stream handles for the bytes. Errors name the
// method and wrap the host's answer.
func newRemoteComm(conn *protocol.Conn, handle string) Communicator {
	return commwire.NewRemote(conn, handle, func(ctx context.Context, method string, params, result any) error {
		if handle == "" {
			return fmt.Errorf("%s: %w", method, protocol.ErrUnsupported.WithMessage("the build has no communicator"))
		}
		if err := conn.Call(ctx, method, params, result); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		return nil
	})
}
