package template

import (
	"bytes"
	"cmp"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Redacted replaces a sensitive value in output.
const Redacted = "<sensitive>"

// ShortSecret is the length, in bytes, under which a secret is masked only
// where it stands as a whole word: a value of one to three characters
// would otherwise replace that letter or syllable everywhere in the
// output. A short secret is found where each of its ends that is a
// letter, digit or '_' is not next to another letter, digit or '_' ("pw"
// in "pw=x" but not in "pwd"). Packer masks it everywhere.
const ShortSecret = 4

// Masker hides secret values in text. A nil *Masker masks nothing.
//
// Besides each value, it masks the forms a template can derive from it
// with its functions: upper case, lower case, and title case (each word's
// first letter upper case, as Packer's HCL title function). Other
// derivations (a part of the value taken with split, an encoding) are not
// recognised.
type Masker struct {
	replacer *strings.Replacer // secrets of ShortSecret bytes or more
	short    []string          // shorter secrets, longest first
	longest  int
	secrets  []string // every form, longest first
}

// NewMasker returns a Masker for the given values and their derived forms.
// Empty values are ignored; when values overlap, the longest match wins.
func NewMasker(values []string) *Masker {
	var secrets []string
	add := func(v string) {
		if v != "" && !slices.Contains(secrets, v) {
			secrets = append(secrets, v)
		}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		add(v)
		for _, f := range derivedForms(v) {
			add(f)
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	// strings.Replacer tries the old strings in argument order at each
	// position, so longest first means the longest match wins.
	slices.SortStableFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	m := &Masker{longest: len(secrets[0]), secrets: secrets}
	var pairs []string
	for _, s := range secrets {
		if len(s) >= ShortSecret {
			pairs = append(pairs, s, Redacted)
		} else {
			m.short = append(m.short, s)
		}
	}
	if len(pairs) > 0 {
		m.replacer = strings.NewReplacer(pairs...)
	}
	return m
}

// derivedForms returns the case changes of v a template can produce.
func derivedForms(v string) []string {
	return []string{
		strings.ToUpper(v),
		strings.ToLower(v),
		cases.Title(language.Und, cases.NoLower).String(v),
		cases.Title(language.Und).String(v),
	}
}

// ShortSecrets returns the names of the template's sensitive variables
// whose value in vars is shorter than [ShortSecret] bytes (and not empty):
// they are masked only as whole words.
func (t *Template) ShortSecrets(vars map[string]string) []string {
	var out []string
	for _, name := range t.SensitiveVariables {
		if v := vars[name]; v != "" && len(v) < ShortSecret {
			out = append(out, name)
		}
	}
	return out
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

// Mask returns s with every secret replaced by [Redacted] (a short one
// only where it is a whole word; see [ShortSecret]).
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	if m.replacer != nil {
		s = m.replacer.Replace(s)
	}
	for _, sec := range m.short {
		s = maskWords(s, sec)
	}
	return s
}

// maskWords replaces each occurrence of sec in s that is a whole word at
// the ends where sec has a word character.
func maskWords(s, sec string) string {
	if !strings.Contains(s, sec) {
		return s
	}
	first, _ := utf8.DecodeRuneInString(sec)
	last, _ := utf8.DecodeLastRuneInString(sec)
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(s[i:], sec)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(sec)
		before, _ := utf8.DecodeLastRuneInString(s[:start])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (!isWord(first) || start == 0 || !isWord(before)) && (!isWord(last) || end == len(s) || !isWord(after)) {
			b.WriteString(s[i:start])
			b.WriteString(Redacted)
			i = end
			continue
		}
		b.WriteString(s[i : start+1])
		i = start + 1
	}
	b.WriteString(s[i:])
	return b.String()
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// SafeCut returns how many bytes at the start of b can be masked on their
// own: every secret that starts in them ends in them, and every secret
// that later bytes may complete is left in the rest, which is shorter than
// the longest secret. It is len(b) for a nil Masker. A caller that must
// cut a long line (the host cutting a plugin's stderr into pieces) masks
// b[:SafeCut(b)] and keeps the rest for the next piece.
func (m *Masker) SafeCut(b []byte) int {
	if m == nil {
		return len(b)
	}
	return m.safeCut(string(b))
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
		cut = mw.m.safeCut(string(mw.pending))
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

// safeCut returns where to split buf so that every secret in the first
// part is complete and every secret that may still be completed by later
// bytes lies in the second part.
func (m *Masker) safeCut(buf string) int {
	cut := max(len(buf)-(m.longest-1), 0)
	for moved := true; moved; {
		moved = false
		for _, s := range m.secrets {
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

// InputMasker returns a Masker for every value the template's sensitive
// variables have or may have: their values in resolved (nil before the
// variables are resolved), and the raw values the inputs give them (their
// defaults, the var files, cliVars), which is what an error raised while
// resolving them can show. Unreadable var files are skipped.
func (t *Template) InputMasker(resolved, cliVars map[string]string, varFiles []string) *Masker {
	sensitive := map[string]bool{}
	for _, name := range t.SensitiveVariables {
		sensitive[name] = true
	}
	var values []string
	for _, v := range t.Variables {
		if sensitive[v.Name] {
			values = append(values, v.Default)
		}
	}
	for _, f := range varFiles {
		members, _, err := parseVarFile(f)
		if err != nil {
			continue
		}
		for _, m := range members {
			if s, ok := m.val.val.(string); ok && sensitive[m.key] {
				values = append(values, s)
			}
		}
	}
	for name := range sensitive {
		values = append(values, cliVars[name], resolved[name])
	}
	return NewMasker(values)
}
