package conformance

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Direction says where a transcript entry came from.
type Direction string

// Directions of transcript entries.
const (
	// Sent is a line the runner wrote to the plugin's stdin.
	Sent Direction = "send"
	// Received is a line the plugin wrote to its stdout.
	Received Direction = "recv"
	// Stderr is a line the plugin wrote to its stderr.
	Stderr Direction = "stderr"
	// Note is a remark of the runner: process started, exited, killed.
	Note Direction = "note"
)

// Entry is one line of a check's transcript.
type Entry struct {
	// Dir is the line's direction.
	Dir Direction `json:"dir"`
	// Text is the line without its newline, shortened when very long, with
	// invalid UTF-8 bytes escaped.
	Text string `json:"text"`
}

// String formats the entry as it is printed under a failed check.
func (e Entry) String() string {
	switch e.Dir {
	case Sent:
		return "→ " + e.Text
	case Received:
		return "← " + e.Text
	case Stderr:
		return "stderr: " + e.Text
	}
	return "# " + e.Text
}

// maxEntryText is the most bytes of one line kept in a transcript.
const maxEntryText = 1000

// transcript records the lines of one check, from every process it started.
// It is safe for concurrent use.
type transcript struct {
	mu      sync.Mutex
	entries []Entry
}

func (t *transcript) add(dir Direction, line []byte) {
	t.addText(dir, printable(line))
}

func (t *transcript) addText(dir Direction, text string) {
	t.mu.Lock()
	t.entries = append(t.entries, Entry{Dir: dir, Text: text})
	t.mu.Unlock()
}

func (t *transcript) notef(format string, args ...any) {
	t.addText(Note, fmt.Sprintf(format, args...))
}

func (t *transcript) snapshot() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Entry(nil), t.entries...)
}

// printable shortens line to maxEntryText bytes and escapes invalid UTF-8,
// so that a transcript can always be printed and encoded as JSON.
func printable(line []byte) string {
	size := len(line)
	cut := line
	if len(cut) > maxEntryText {
		cut = cut[:maxEntryText]
	}
	var b strings.Builder
	for len(cut) > 0 {
		r, n := utf8.DecodeRune(cut)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, `\x%02x`, cut[0])
		} else {
			b.Write(cut[:n])
		}
		cut = cut[n:]
	}
	if size > maxEntryText {
		fmt.Fprintf(&b, "... (%d bytes)", size)
	}
	return b.String()
}
