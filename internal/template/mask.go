package template

import (
	"bytes"
	"cmp"
	"io"
	"slices"
	"strings"
	"sync"
)

// Redacted replaces a sensitive value in output.
const Redacted = "<sensitive>"

// Masker hides secret values in text. A nil *Masker masks nothing.
type Masker struct {
	replacer *strings.Replacer
	longest  int
	secrets  []string
}

// NewMasker returns a Masker for the given values. Empty values are
// ignored; when values overlap, the longest match wins.
func NewMasker(values []string) *Masker {
	var secrets []string
	for _, v := range values {
		if v != "" && !slices.Contains(secrets, v) {
			secrets = append(secrets, v)
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	// strings.Replacer tries the old strings in argument order at each
	// position, so longest first means the longest match wins.
	slices.SortStableFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, Redacted)
	}
	return &Masker{replacer: strings.NewReplacer(pairs...), longest: len(secrets[0]), secrets: secrets}
}

// Masker returns a Masker for the values vars gives the template's
// sensitive-variables.
func (t *Template) Masker(vars map[string]string) *Masker {
	values := make([]string, 0, len(t.SensitiveVariables))
	for _, name := range t.SensitiveVariables {
		values = append(values, vars[name])
	}
	return NewMasker(values)
}

// Mask returns s with every secret replaced by [Redacted].
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	return m.replacer.Replace(s)
}

// maxPending is how many bytes a masking writer holds while it waits for
// the end of a line.
const maxPending = 64 << 10

// Writer returns a writer that masks what it writes to w one line at a
// time, so that a secret split across two Write calls is still found. A
// line ends at '\n' or '\r' (progress output redraws with '\r'). A line
// longer than 64 KiB is passed on in pieces cut where no secret can
// straddle. Close writes what is left of an unfinished line; it does not
// close w. A secret that spans a line break is not masked.
//
// The writer may be used by several goroutines; each Write is passed on
// whole lines at a time.
func (m *Masker) Writer(w io.Writer) io.WriteCloser {
	return &maskWriter{m: m, w: w}
}

type maskWriter struct {
	m       *Masker
	w       io.Writer
	mu      sync.Mutex
	pending []byte
}

func (mw *maskWriter) Write(p []byte) (int, error) {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if mw.m == nil {
		return mw.w.Write(p)
	}
	mw.pending = append(mw.pending, p...)
	cut := bytes.LastIndexAny(mw.pending, "\r\n") + 1
	if cut == 0 && len(mw.pending) > maxPending {
		cut = mw.safeCut()
	}
	if cut == 0 {
		return len(p), nil
	}
	out := mw.m.Mask(string(mw.pending[:cut]))
	mw.pending = append(mw.pending[:0], mw.pending[cut:]...)
	if _, err := io.WriteString(mw.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// safeCut returns where to split pending so that every secret in the
// first part is complete and every secret that may still be completed by
// later bytes lies in the second part.
func (mw *maskWriter) safeCut() int {
	buf := string(mw.pending)
	cut := len(buf) - (mw.m.longest - 1)
	for moved := true; moved; {
		moved = false
		for _, s := range mw.m.secrets {
			// Any occurrence that straddles cut starts in
			// [cut-len(s)+1, cut).
			from := max(cut-len(s)+1, 0)
			if i := strings.Index(buf[from:min(cut+len(s)-1, len(buf))], s); i >= 0 && from+i < cut {
				cut = from + i + len(s)
				moved = true
			}
		}
	}
	return cut
}

// Close writes the rest of an unfinished line, masked.
func (mw *maskWriter) Close() error {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if len(mw.pending) == 0 {
		return nil
	}
	out := mw.m.Mask(string(mw.pending))
	mw.pending = mw.pending[:0]
	_, err := io.WriteString(mw.w, out)
	return err
}
