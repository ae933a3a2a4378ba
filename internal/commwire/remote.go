package commwire

import (
	"context"
	"io"
	"io/fs"

	"github.com/packer-stdio/packer/protocol"
)

// SendFunc sends one communicator/* request and waits for its answer, with
// the contract of [protocol.Conn.Call]. It is where a side puts its policy:
// refusing a request (a handle that expired or was never given) and
// wrapping the error the peer answered with.
type SendFunc func(ctx context.Context, method string, params, result any) error

// Remote is a [Communicator] reached through the peer: each method sends a
// communicator/* request naming the peer's communicator handle and offers
// stream handles of its own for the bytes (a source for what it sends, a
// sink for what it receives), which it releases once the request is
// answered. Its methods may be called concurrently.
type Remote struct {
	conn   *protocol.Conn
	handle string
	send   SendFunc
}

var _ Communicator = (*Remote)(nil)

// NewRemote returns the Communicator the peer holds under handle on conn.
// Requests go through send; nil means conn.Call.
func NewRemote(conn *protocol.Conn, handle string, send SendFunc) *Remote {
	if send == nil {
		send = conn.Call
	}
	return &Remote{conn: conn, handle: handle, send: send}
}

// Start runs cmd through communicator/start. Its streams are offered only
// when set. On error the exit status is -1.
func (c *Remote) Start(ctx context.Context, cmd *RemoteCmd) (status int, err error) {
	p := protocol.CommStartParams{Communicator: c.handle, Command: cmd.Command}
	if cmd.Stdin != nil {
		h, release := c.conn.OfferReader(cmd.Stdin, nil)
		defer release()
		p.Stdin = h
	}
	if cmd.Stdout != nil {
		h, release := c.conn.OfferWriter(cmd.Stdout, nil)
		defer settle(&err, release)
		p.Stdout = h
	}
	if cmd.Stderr != nil {
		h, release := c.conn.OfferWriter(cmd.Stderr, nil)
		defer settle(&err, release)
		p.Stderr = h
	}
	var res protocol.CommStartResult
	if err := c.send(ctx, protocol.MethodCommStart, p, &res); err != nil {
		return -1, err
	}
	return res.ExitStatus, nil
}

// settle releases a sink and, when the request succeeded, reports the
// error of writing what it received.
func settle(err *error, release func() error) {
	if rerr := release(); *err == nil && rerr != nil {
		*err = rerr
	}
}

// Upload sends src through communicator/upload, with mode as [WireMode].
func (c *Remote) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	h, release := c.conn.OfferReader(src, nil)
	defer release()
	return c.send(ctx, protocol.MethodCommUpload, protocol.CommUploadParams{
		Communicator: c.handle, Path: dst, Source: h, Mode: WireMode(mode), Size: size,
	}, nil)
}

// Download receives src through communicator/download.
func (c *Remote) Download(ctx context.Context, src string, dst io.Writer) (err error) {
	h, release := c.conn.OfferWriter(dst, nil)
	defer settle(&err, release)
	return c.send(ctx, protocol.MethodCommDownload, protocol.CommDownloadParams{
		Communicator: c.handle, Path: src, Sink: h,
	}, nil)
}

// UploadDir sends archive through communicator/uploadDir.
func (c *Remote) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	h, release := c.conn.OfferReader(archive, nil)
	defer release()
	return c.send(ctx, protocol.MethodCommUploadDir, protocol.CommUploadDirParams{
		Communicator: c.handle, Path: dst, Source: h, Exclude: exclude,
	}, nil)
}

// DownloadDir receives a tar stream of src through communicator/downloadDir.
func (c *Remote) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) (err error) {
	h, release := c.conn.OfferWriter(archive, nil)
	defer settle(&err, release)
	return c.send(ctx, protocol.MethodCommDownloadDir, protocol.CommDownloadDirParams{
		Communicator: c.handle, Path: src, Sink: h, Exclude: exclude,
	}, nil)
}
