// Package ctxio lets a copy that takes an io.Reader or io.Writer stop once
// its context is done: the communicators and builtin components use it to
// make io.Copy, tar and SFTP transfers honour cancellation.
package ctxio

import (
	"context"
	"io"
)

// Reader returns a reader that reads from r until ctx is done; after that
// Read returns ctx.Err() without calling r. A Read already blocked in r is
// not interrupted.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	return reader{ctx, r}
}

// Writer returns a writer that writes to w until ctx is done; after that
// Write returns ctx.Err() without calling w.
func Writer(ctx context.Context, w io.Writer) io.Writer {
	return writer{ctx, w}
}

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (r reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type writer struct {
	ctx context.Context
	w   io.Writer
}

func (w writer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}
