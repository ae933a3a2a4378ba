package host

import (
	"bufio"
	"errors"
	"io"
	"sync"
)

const (
	stderrBufSize = 64 << 10 // longest piece forwarded in one Write
	tailLines     = 20
	tailLineLen   = 512
)

// stderrMu serializes writes to Options.Stderr across all plugins, so that
// lines of plugins sharing a writer never interleave.
var stderrMu sync.Mutex

// stderrTail keeps the last lines a plugin wrote on stderr.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *stderrTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

func (t *stderrTail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return nil
	}
	return append([]string(nil), t.lines...)
}

// forwardStderr reads r line by line until EOF or an error, writes each line
// to w as "name: line\n" (lines longer than the buffer in pieces, each its own
// line) and keeps the last lines in tail. It uses a fixed buffer, so memory
// stays bounded whatever the plugin writes.
func forwardStderr(r io.Reader, w io.Writer, name string, tail *stderrTail) {
	br := bufio.NewReaderSize(r, stderrBufSize)
	prefix := []byte(name + ": ")
	out := make([]byte, 0, len(prefix)+stderrBufSize+1)
	continuing := false // the previous piece did not end its line
	for {
		piece, err := br.ReadSlice('\n')
		if len(piece) > 0 {
			text := piece
			if text[len(text)-1] == '\n' {
				text = text[:len(text)-1]
				if len(text) > 0 && text[len(text)-1] == '\r' {
					text = text[:len(text)-1]
				}
			}
			if !continuing {
				if len(text) > tailLineLen {
					tail.add(string(text[:tailLineLen]) + "...")
				} else {
					tail.add(string(text))
				}
			}
			wasContinuing := continuing
			continuing = errors.Is(err, bufio.ErrBufferFull)
			if wasContinuing && len(text) == 0 && !continuing {
				// The previous piece filled the buffer exactly up to
				// the newline: the line is already forwarded.
			} else if w != nil {
				out = append(append(append(out[:0], prefix...), text...), '\n')
				stderrMu.Lock()
				_, werr := w.Write(out)
				stderrMu.Unlock()
				if werr != nil {
					w = nil // keep reading so the plugin never blocks on us
				}
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
