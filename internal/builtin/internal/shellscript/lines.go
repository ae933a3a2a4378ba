package shellscript

import (
	"bytes"
	"strings"
	"sync"
)

// maxLine is the longest line LineWriter holds back; a longer run of bytes
// without a newline is handed over in pieces of this size.
const maxLine = 64 << 10

// LineWriter is an io.Writer that calls a function once per line written to
// it, without the line ending ("\n" or "\r\n"). It is safe for concurrent
// use. Call Flush when the output has ended to hand over a last line that
// had no newline.
type LineWriter struct {
	mu  sync.Mutex
	fn  func(line string)
	buf []byte
}

// NewLineWriter returns a LineWriter that calls fn for each line.
func NewLineWriter(fn func(line string)) *LineWriter {
	return &LineWriter{fn: fn}
}

// Write implements io.Writer. It never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLine {
		w.emit(w.buf[:maxLine])
		w.buf = w.buf[maxLine:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

// Flush hands over what is left after the last newline, if anything.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *LineWriter) emit(line []byte) {
	w.fn(strings.TrimSuffix(string(line), "\r"))
}
