package host

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"

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
// written to the plugin's stream handles chunk by chunk.
func (p *Plugin) serveComm(ctx context.Context, req *protocol.Request) (any, error) {
	conn := req.Conn
	switch req.Method {
	case protocol.MethodCommStart:
		var m protocol.CommStartParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		comm, err := p.lookupComm(m.Communicator)
		if err != nil {
			return nil, err
		}
		cmd := &RemoteCmd{Command: m.Command}
		if m.Stdin != "" {
			r := conn.RemoteReader(ctx, m.Stdin)
			defer r.Close()
			cmd.Stdin = r
		}
		var sinks []io.Closer
		if m.Stdout != "" {
			w := conn.RemoteWriter(ctx, m.Stdout)
			sinks = append(sinks, w)
			cmd.Stdout = w
		}
		if m.Stderr != "" {
			w := conn.RemoteWriter(ctx, m.Stderr)
			sinks = append(sinks, w)
			cmd.Stderr = w
		}
		status, err := comm.Start(ctx, cmd)
		for _, w := range sinks {
			if cerr := w.Close(); err == nil && cerr != nil {
				err = cerr
			}
		}
		if err != nil {
			return nil, callbackError(ctx, err)
		}
		return protocol.CommStartResult{ExitStatus: status}, nil
	case protocol.MethodCommUpload:
		var m protocol.CommUploadParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		comm, err := p.lookupComm(m.Communicator)
		if err != nil {
			return nil, err
		}
		r := conn.RemoteReader(ctx, m.Source)
		err = comm.Upload(ctx, m.Path, r, fs.FileMode(m.Mode), m.Size)
		r.Close()
		return nil, callbackError(ctx, err)
	case protocol.MethodCommDownload:
		var m protocol.CommDownloadParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		comm, err := p.lookupComm(m.Communicator)
		if err != nil {
			return nil, err
		}
		w := conn.RemoteWriter(ctx, m.Sink)
		err = comm.Download(ctx, m.Path, w)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return nil, callbackError(ctx, err)
	case protocol.MethodCommUploadDir:
		var m protocol.CommUploadDirParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		comm, err := p.lookupComm(m.Communicator)
		if err != nil {
			return nil, err
		}
		r := conn.RemoteReader(ctx, m.Source)
		err = comm.UploadDir(ctx, m.Path, r, m.Exclude)
		r.Close()
		return nil, callbackError(ctx, err)
	default: // protocol.MethodCommDownloadDir
		var m protocol.CommDownloadDirParams
		if err := req.DecodeParams(&m); err != nil {
			return nil, err
		}
		comm, err := p.lookupComm(m.Communicator)
		if err != nil {
			return nil, err
		}
		w := conn.RemoteWriter(ctx, m.Sink)
		err = comm.DownloadDir(ctx, m.Path, w, m.Exclude)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return nil, callbackError(ctx, err)
	}
}

// remoteComm is the Communicator a builder offered in hook/run: each method
// calls communicator/* back into the builder with the builder's handle,
// offering host stream handles for the bytes and releasing them once the
// call is answered. It is valid until the hook returns.
type remoteComm struct {
	p      *Plugin
	handle string

	mu      sync.Mutex
	expired bool
}

var _ Communicator = (*remoteComm)(nil)

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

func (c *remoteComm) call(ctx context.Context, method string, params, result any) error {
	if err := c.check(method); err != nil {
		return err
	}
	return c.p.callErr(method, c.p.conn.Call(ctx, method, params, result))
}

func (c *remoteComm) Start(ctx context.Context, cmd *RemoteCmd) (int, error) {
	conn := c.p.conn
	m := protocol.CommStartParams{Communicator: c.handle, Command: cmd.Command}
	if cmd.Stdin != nil {
		h, release := conn.OfferReader(cmd.Stdin, nil)
		defer release()
		m.Stdin = h
	}
	if cmd.Stdout != nil {
		h, release := conn.OfferWriter(cmd.Stdout, nil)
		defer release()
		m.Stdout = h
	}
	if cmd.Stderr != nil {
		h, release := conn.OfferWriter(cmd.Stderr, nil)
		defer release()
		m.Stderr = h
	}
	var res protocol.CommStartResult
	if err := c.call(ctx, protocol.MethodCommStart, m, &res); err != nil {
		return 0, err
	}
	return res.ExitStatus, nil
}

func (c *remoteComm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	h, release := c.p.conn.OfferReader(src, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommUpload, protocol.CommUploadParams{
		Communicator: c.handle, Path: dst, Source: h, Mode: uint32(mode.Perm()), Size: size,
	}, nil)
}

func (c *remoteComm) Download(ctx context.Context, src string, dst io.Writer) error {
	h, release := c.p.conn.OfferWriter(dst, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: c.handle, Path: src, Sink: h}, nil)
}

func (c *remoteComm) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	h, release := c.p.conn.OfferReader(archive, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommUploadDir, protocol.CommUploadDirParams{Communicator: c.handle, Path: dst, Source: h, Exclude: exclude}, nil)
}

func (c *remoteComm) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error {
	h, release := c.p.conn.OfferWriter(archive, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommDownloadDir, protocol.CommDownloadDirParams{Communicator: c.handle, Path: src, Sink: h, Exclude: exclude}, nil)
}

// String names the communicator for logs.
func (c *remoteComm) String() string { return fmt.Sprintf("%s communicator %s", c.p.name, c.handle) }
