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

// Redactor hides secrets in what a plugin writes on stderr, before the host
// cuts long lines into pieces, forwards them or keeps them for errors. Its
// methods must be safe for concurrent use. A template masker implements it.
type Redactor interface {
	// Mask returns s with every secret replaced.
	Mask(s string) string
	// SafeCut returns how many bytes at the start of b can be masked on
	// their own: a secret that later bytes could complete is left in the
	// rest, b[SafeCut(b):], which the host masks with the next piece.
	SafeCut(b []byte) int
}

// forwardStderr reads r line by line until EOF or an error, writes each line
// to w as "name: line\n" (lines longer than the buffer in pieces, each its own
// line) and keeps the last lines in tail. With red, each piece is masked
// before it is forwarded or kept: a piece ends where red says no secret is
// cut (the rest goes with the next piece), and the tail keeps masked text,
// shortened after masking. It uses a fixed buffer (plus, with red, less
// than the longest secret carried over), so memory stays bounded whatever
// the plugin writes.
func forwardStderr(r io.Reader, w io.Writer, name string, tail *stderrTail, red Redactor) {
	br := bufio.NewReaderSize(r, stderrBufSize)
	prefix := []byte(name + ": ")
	out := make([]byte, 0, len(prefix)+stderrBufSize+1)
	var carry, joined []byte // with red: the unmasked end of the previous piece
	continuing := false      // the previous piece did not end its line
	for {
		piece, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if len(piece) == 0 && len(carry) > 0 {
			// The line ended at end of file right after a full piece.
			piece, full = nil, false
		} else if len(piece) == 0 {
			if err != nil && !full {
				return
			}
			continue
		}
		text := piece
		if len(text) > 0 && text[len(text)-1] == '\n' {
			text = text[:len(text)-1]
			if len(text) > 0 && text[len(text)-1] == '\r' {
				text = text[:len(text)-1]
			}
		}
		if red != nil {
			joined = append(append(joined[:0], carry...), text...)
			cut := len(joined)
			if full {
				if cut = red.SafeCut(joined); cut <= 0 {
					cut = len(joined)
				}
			}
			carry = append(carry[:0], joined[cut:]...)
			text = []byte(red.Mask(string(joined[:cut])))
		}
		if !continuing {
			if len(text) > tailLineLen {
				tail.add(string(text[:tailLineLen]) + "...")
			} else {
				tail.add(string(text))
			}
		}
		wasContinuing := continuing
		continuing = full
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
		if err != nil && !full && len(carry) == 0 {
			return
		}
	}
}
