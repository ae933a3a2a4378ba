package pluginkit

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/packer-stdio/packer/protocol"
)

// hook is the Hook a builder's Run receives: hook/run on the host.
type hook struct{ s *session }

var _ Hook = hook{}

// Run calls hook/run. A non-nil comm gets a communicator handle that the
// host may use in communicator/* calls until hook/run is answered.
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
	if err != nil {
		return fmt.Errorf("hook %s: %w", name, err)
	}
	return nil
}

// fileMode converts wire permission bits (Unix st_mode low bits) to an
// fs.FileMode, and back.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func wireMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// serveComm serves communicator/* calls the host makes on a communicator
// the builder offered through Hook.Run.
func (s *session) serveComm(ctx context.Context, req *protocol.Request) (any, error) {
	lookup := func(handle string) (Communicator, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c := s.comms[handle]
		if c == nil {
			return nil, protocol.ErrUnknownHandle.WithMessage("no communicator %q", handle)
		}
		return c, nil
	}
	conn := s.conn
	switch req.Method {
	case protocol.MethodCommStart:
		var p protocol.CommStartParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		comm, err := lookup(p.Communicator)
		if err != nil {
			return nil, err
		}
		cmd := &RemoteCmd{Command: p.Command}
		if p.Stdin != "" {
			r := conn.RemoteReader(ctx, p.Stdin)
			defer r.Close()
			cmd.Stdin = r
		}
		var outs []io.WriteCloser
		if p.Stdout != "" {
			w := conn.RemoteWriter(ctx, p.Stdout)
			cmd.Stdout = w
			outs = append(outs, w)
		}
		if p.Stderr != "" {
			w := conn.RemoteWriter(ctx, p.Stderr)
			cmd.Stderr = w
			outs = append(outs, w)
		}
		var status int
		err = s.protect(req.Method, func() (err error) {
			status, err = comm.Start(ctx, cmd)
			return err
		})
		if err != nil {
			return nil, componentError(ctx, err)
		}
		for _, w := range outs {
			if err := w.Close(); err != nil {
				return nil, err
			}
		}
		return protocol.CommStartResult{ExitStatus: status}, nil
	case protocol.MethodCommUpload:
		var p protocol.CommUploadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		comm, err := lookup(p.Communicator)
		if err != nil {
			return nil, err
		}
		r := conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		err = s.protect(req.Method, func() error { return comm.Upload(ctx, p.Path, r, fileMode(p.Mode), p.Size) })
		return nil, componentError(ctx, err)
	case protocol.MethodCommDownload:
		var p protocol.CommDownloadParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		comm, err := lookup(p.Communicator)
		if err != nil {
			return nil, err
		}
		w := conn.RemoteWriter(ctx, p.Sink)
		err = s.protect(req.Method, func() error { return comm.Download(ctx, p.Path, w) })
		if err != nil {
			return nil, componentError(ctx, err)
		}
		return nil, w.Close()
	case protocol.MethodCommUploadDir:
		var p protocol.CommUploadDirParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		comm, err := lookup(p.Communicator)
		if err != nil {
			return nil, err
		}
		r := conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		err = s.protect(req.Method, func() error { return comm.UploadDir(ctx, p.Path, r, p.Exclude) })
		return nil, componentError(ctx, err)
	default: // protocol.MethodCommDownloadDir
		var p protocol.CommDownloadDirParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		comm, err := lookup(p.Communicator)
		if err != nil {
			return nil, err
		}
		w := conn.RemoteWriter(ctx, p.Sink)
		err = s.protect(req.Method, func() error { return comm.DownloadDir(ctx, p.Path, w, p.Exclude) })
		if err != nil {
			return nil, componentError(ctx, err)
		}
		return nil, w.Close()
	}
}

// remoteComm is the Communicator a provisioner receives: communicator/*
// calls on the host with the handle the host minted for this provisioning,
// offering stream handles for the bytes.
type remoteComm struct {
	conn   *protocol.Conn
	handle string
}

var _ Communicator = (*remoteComm)(nil)

func (c *remoteComm) check(method string) error {
	if c.handle == "" {
		return fmt.Errorf("%s: %w", method, protocol.ErrUnsupported.WithMessage("the build has no communicator"))
	}
	return nil
}

func (c *remoteComm) call(ctx context.Context, method string, params, result any) error {
	if err := c.conn.Call(ctx, method, params, result); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// Start runs cmd on the host's communicator.
func (c *remoteComm) Start(ctx context.Context, cmd *RemoteCmd) (int, error) {
	if err := c.check(protocol.MethodCommStart); err != nil {
		return -1, err
	}
	p := protocol.CommStartParams{Communicator: c.handle, Command: cmd.Command}
	if cmd.Stdin != nil {
		h, release := c.conn.OfferReader(cmd.Stdin, nil)
		defer release()
		p.Stdin = h
	}
	if cmd.Stdout != nil {
		h, release := c.conn.OfferWriter(cmd.Stdout, nil)
		defer release()
		p.Stdout = h
	}
	if cmd.Stderr != nil {
		h, release := c.conn.OfferWriter(cmd.Stderr, nil)
		defer release()
		p.Stderr = h
	}
	var res protocol.CommStartResult
	if err := c.call(ctx, protocol.MethodCommStart, p, &res); err != nil {
		return -1, err
	}
	return res.ExitStatus, nil
}

// Upload sends src to dst on the host's communicator.
func (c *remoteComm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	if err := c.check(protocol.MethodCommUpload); err != nil {
		return err
	}
	h, release := c.conn.OfferReader(src, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommUpload, protocol.CommUploadParams{
		Communicator: c.handle, Path: dst, Source: h, Mode: wireMode(mode), Size: size,
	}, nil)
}

// Download receives src from the host's communicator into dst.
func (c *remoteComm) Download(ctx context.Context, src string, dst io.Writer) error {
	if err := c.check(protocol.MethodCommDownload); err != nil {
		return err
	}
	h, release := c.conn.OfferWriter(dst, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: c.handle, Path: src, Sink: h}, nil)
}

// UploadDir sends a tar stream to be extracted under dst.
func (c *remoteComm) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	if err := c.check(protocol.MethodCommUploadDir); err != nil {
		return err
	}
	h, release := c.conn.OfferReader(archive, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommUploadDir, protocol.CommUploadDirParams{
		Communicator: c.handle, Path: dst, Source: h, Exclude: exclude,
	}, nil)
}

// DownloadDir receives a tar stream of src into archive.
func (c *remoteComm) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error {
	if err := c.check(protocol.MethodCommDownloadDir); err != nil {
		return err
	}
	h, release := c.conn.OfferWriter(archive, nil)
	defer release()
	return c.call(ctx, protocol.MethodCommDownloadDir, protocol.CommDownloadDirParams{
		Communicator: c.handle, Path: src, Sink: h, Exclude: exclude,
	}, nil)
}
