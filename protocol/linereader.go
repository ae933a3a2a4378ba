package protocol

import (
	"bufio"
	"bytes"
	"io"
)

// lineReader is the buffered reader under a [LineStream]: ReadSlice as
// bufio.Reader's, but its buffer starts at minLineBuffer and grows, up to
// maxLineBuffer, when a line does not fit. A connection that carries stream
// chunks (lines of about 350 KB) so gets each of them as one slice of the
// buffer, which the line reader hands on without copying it, while one
// that carries only small messages keeps a small buffer.
//
// Data already read is moved to the front of the buffer only when there is
// less than minLineBuffer of room behind it, so a run of long lines is
// mostly read in place rather than moved once per line.
type lineReader struct {
	rd   io.Reader
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	err  error

	// limit is the size the buffer grows to at most, when below
	// maxLineBuffer: a line longer than the caller accepts is known for
	// what it is once limit bytes of it are in.
	limit int64
}

const (
	minLineBuffer = 64 << 10
	// maxLineBuffer holds the longest stream/data line this package
	// writes (a MaxChunkSize chunk in base64 with its envelope), twice.
	maxLineBuffer = 1 << 20
)

func newLineReader(rd io.Reader) *lineReader {
	return &lineReader{rd: rd, buf: make([]byte, minLineBuffer), limit: maxLineBuffer}
}

// ReadSlice returns the bytes up to and including the next newline, as a
// slice of the buffer that is valid until the next call. Like bufio's, it
// returns the bytes it has and bufio.ErrBufferFull when a line is longer
// than the largest buffer, and the bytes before the end and the read error
// when reading fails.
func (b *lineReader) ReadSlice(delim byte) ([]byte, error) {
	searched := 0 // bytes of buf[r:w] known to hold no delim
	for {
		if i := bytes.IndexByte(b.buf[b.r+searched:b.w], delim); i >= 0 {
			line := b.buf[b.r : b.r+searched+i+1]
			b.r += searched + i + 1
			return line, nil
		}
		searched = b.w - b.r
		if b.err != nil {
			line := b.buf[b.r:b.w]
			b.r = b.w
			err := b.err
			b.err = nil
			return line, err
		}
		if searched == len(b.buf) {
			if len(b.buf) >= maxLineBuffer || int64(len(b.buf)) >= b.limit {
				b.r = b.w
				return b.buf, bufio.ErrBufferFull
			}
			b.grow()
		}
		b.fill()
	}
}

// grow doubles the buffer, up to the limits, keeping the unread bytes.
func (b *lineReader) grow() {
	buf := make([]byte, min(2*len(b.buf), maxLineBuffer, int(max(b.limit, minLineBuffer))))
	b.w = copy(buf, b.buf[b.r:b.w])
	b.r = 0
	b.buf = buf
}

// fill reads once into the room behind the unread bytes, first moving them
// to the front when that room is short.
func (b *lineReader) fill() {
	if b.r == b.w {
		b.r, b.w = 0, 0
	} else if len(b.buf)-b.w < minLineBuffer && b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	for range 100 {
		n, err := b.rd.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	b.err = io.ErrNoProgress
}
