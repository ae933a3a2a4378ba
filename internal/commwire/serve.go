package commwire

import (
	"context"
	"io"

	"github.com/packer-stdio/packer/protocol"
)

// Serve answers one communicator/* request with the Communicator that lookup
// returns for the handle the request names. It reads the requester's source
// streams and writes its sink streams through req.Conn, chunk by chunk,
// under ctx, and finishes with every stream before it returns: sources are
// read to the end or closed, and sinks are closed (stream/close: the data is
// complete) once the method has succeeded. After a failure the sinks are
// left open, since their data is incomplete; the requester releases them
// when it gets the answer.
//
// lookup returns a non-nil Communicator or an error, normally
// protocol.ErrUnknownHandle. Params that do not decode are answered with
// protocol.ErrInvalidParams and a method that is not communicator/* with
// protocol.ErrMethodNotFound. The error of the Communicator method, or of
// closing a sink, is returned unchanged: the caller maps it to its answer.
// A panic in the Communicator propagates to the caller.
func Serve(ctx context.Context, req *protocol.Request, lookup func(handle string) (Communicator, error)) (any, error) {
	conn := req.Conn
	switch req.Method {
	case protocol.MethodCommStart:
		var p protocol.CommStartParams
		comm, err := open(req, &p, &p.Communicator, lookup)
		if err != nil {
			return nil, err
		}
		cmd := &RemoteCmd{Command: p.Command}
		if p.Stdin != "" {
			r := conn.RemoteReader(ctx, p.Stdin)
			defer r.Close()
			cmd.Stdin = r
		}
		var sinks []io.Closer
		if p.Stdout != "" {
			w := conn.RemoteWriter(ctx, p.Stdout)
			cmd.Stdout = w
			sinks = append(sinks, w)
		}
		if p.Stderr != "" {
			w := conn.RemoteWriter(ctx, p.Stderr)
			cmd.Stderr = w
			sinks = append(sinks, w)
		}
		status, err := comm.Start(ctx, cmd)
		if err := finish(err, sinks...); err != nil {
			return nil, err
		}
		return protocol.CommStartResult{ExitStatus: status}, nil
	case protocol.MethodCommUpload:
		var p protocol.CommUploadParams
		comm, err := open(req, &p, &p.Communicator, lookup)
		if err != nil {
			return nil, err
		}
		r := conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		return nil, comm.Upload(ctx, p.Path, r, FileMode(p.Mode), p.Size)
	case protocol.MethodCommDownload:
		var p protocol.CommDownloadParams
		comm, err := open(req, &p, &p.Communicator, lookup)
		if err != nil {
			return nil, err
		}
		w := conn.RemoteWriter(ctx, p.Sink)
		return nil, finish(comm.Download(ctx, p.Path, w), w)
	case protocol.MethodCommUploadDir:
		var p protocol.CommUploadDirParams
		comm, err := open(req, &p, &p.Communicator, lookup)
		if err != nil {
			return nil, err
		}
		r := conn.RemoteReader(ctx, p.Source)
		defer r.Close()
		return nil, comm.UploadDir(ctx, p.Path, r, p.Exclude)
	case protocol.MethodCommDownloadDir:
		var p protocol.CommDownloadDirParams
		comm, err := open(req, &p, &p.Communicator, lookup)
		if err != nil {
			return nil, err
		}
		w := conn.RemoteWriter(ctx, p.Sink)
		return nil, finish(comm.DownloadDir(ctx, p.Path, w, p.Exclude), w)
	}
	return nil, protocol.ErrMethodNotFound.WithMessage("%s", req.Method)
}

// open decodes req's params into params and looks up the communicator named
// by *handle, a field of params.
func open(req *protocol.Request, params any, handle *string, lookup func(string) (Communicator, error)) (Communicator, error) {
	if err := req.DecodeParams(params); err != nil {
		return nil, err
	}
	comm, err := lookup(*handle)
	if err == nil && comm == nil {
		err = protocol.ErrUnknownHandle.WithMessage("no communicator %q", *handle)
	}
	return comm, err
}

// finish closes sinks after the method succeeded (err == nil) and returns
// the first error of closing them. After a failure it returns err and
// leaves them open, except that a sink which can be aborted (protocol
// version 2) is ended with the error, so the requester knows at once.
func finish(err error, sinks ...io.Closer) error {
	if err != nil {
		for _, w := range sinks {
			if a, ok := w.(interface{ Abort(error) }); ok {
				a.Abort(err)
			}
		}
		return err
	}
	for _, w := range sinks {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
