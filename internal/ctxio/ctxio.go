// Package ctxio lets a copy that takes an io.Reader or io.Writer stop once
// its context is done: the communicators and builtin components use it to
// make io.Copy, tar and SFTP transfers honour cancellation.
package ctxio

import (
	"context"
	"io"
	"os"
)

// Reader returns a reader that reads from r until ctx is done; after that
// Read returns ctx.Err() without calling r. A Read already blocked in r is
// not interrupted.
//
// When r has a WriteTo method (as the protocol's stream readers do), so has
// the returned reader: io.Copy then lets r write its own chunks, straight
// from where they already are, to a writer that stops once ctx is done,
// instead of copying them through a 32 KiB buffer. An *os.File is the
// exception: its WriteTo only helps towards sockets, and otherwise copies
// through such a buffer itself, hiding the destination's ReadFrom.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	if wt, ok := r.(io.WriterTo); ok {
		if _, file := r.(*os.File); !file {
			return writerToReader{reader{ctx, r}, wt}
		}
	}
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

type writerToReader struct {
	reader
	wt io.WriterTo
}

// WriteTo has r's WriteTo write to w through Writer, so the copy stops at
// the first write after ctx is done.
func (r writerToReader) WriteTo(w io.Writer) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.wt.WriteTo(writer{r.ctx, w})
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
