package host

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/packer-stdio/packer/internal/commwire"
	"github.com/packer-stdio/packer/protocol"
)

// mintComm registers comm under a new communicator handle on this plugin's
// connection and returns the handle and a function that releases it.
func (p *Plugin) mintComm(comm Communicator) (string, func()) {
	p.commMu.Lock()
	p.nextComm++
	h := "c" + strconv.FormatUint(p.nextComm, 10)
	p.comms[h] = comm
	p.commMu.Unlock()
	return h, func() {
		p.commMu.Lock()
		delete(p.comms, h)
		p.commMu.Unlock()
	}
}

func (p *Plugin) lookupComm(h string) (Communicator, error) {
	p.commMu.Lock()
	c := p.comms[h]
	p.commMu.Unlock()
	if c == nil {
		return nil, protocol.ErrUnknownHandle.WithMessage("no communicator %q", h)
	}
	return c, nil
}

// serveComm serves a communicator/* call from the plugin with the
// Communicator registered under the handle it names. Bytes are read from and
// written to the plugin's stream handles chunk by chunk; errors are answered
// as [callbackError] says.
func (p *Plugin) serveComm(ctx context.Context, req *protocol.Request) (any, error) {
	res, err := commwire.Serve(ctx, req, func(h string) (commwire.Communicator, error) { return p.lookupComm(h) })
	if err != nil {
		return nil, callbackError(ctx, err)
	}
	return res, nil
}

// remoteComm is the Communicator a builder offered in hook/run: each method
// calls communicator/* back into the builder with the builder's handle,
// offering host stream handles for the bytes and releasing them once the
// call is answered. It is valid until the hook returns; errors are
// *PluginError.
type remoteComm struct {
	*commwire.Remote
	p      *Plugin
	handle string

	mu      sync.Mutex
	expired bool
}

var _ Communicator = (*remoteComm)(nil)

func newRemoteComm(p *Plugin, handle string) *remoteComm {
	c := &remoteComm{p: p, handle: handle}
	c.Remote = commwire.NewRemote(p.conn, handle, c.send)
	return c
}

func (c *remoteComm) expire() {
	c.mu.Lock()
	c.expired = true
	c.mu.Unlock()
}

func (c *remoteComm) check(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return &PluginError{Plugin: c.p.name, Op: op, Err: protocol.ErrUnknownHandle.WithMessage("communicator %s used after its hook returned", c.handle)}
	}
	return nil
}

func (c *remoteComm) send(ctx context.Context, method string, params, result any) error {
	if err := c.check(method); err != nil {
		return err
	}
	return c.p.callErr(method, c.p.conn.Call(ctx, method, params, result))
}

// String names the communicator for logs.
func (c *remoteComm) String() string { return fmt.Sprintf("%s communicator %s", c.p.name, c.handle) }
