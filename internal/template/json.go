package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxDepth bounds the nesting of arrays and objects, so that hostile input
// cannot make the recursive walk below use unbounded stack.
const maxDepth = 512

// node is a JSON value with the offset where it starts. val is one of nil,
// bool, string, json.Number, []*node or *object.
type node struct {
	off int
	val any
}

// object keeps members in input order.
type object struct {
	members []member
}

type member struct {
	key    string
	keyOff int
	val    *node
}

// source is the raw input and its name, used to turn offsets into
// positions and to build errors.
type source struct {
	file string
	data []byte
	// lines holds the offset of the start of every line after the
	// first, built on the first call to pos: a template with 100,000
	// variables asks for 100,000 positions.
	lines []int
}

// pos returns the position of byte offset off.
func (s *source) pos(off int) Pos {
	if off < 0 {
		off = 0
	}
	if off > len(s.data) {
		off = len(s.data)
	}
	if s.lines == nil {
		s.lines = []int{}
		for i, c := range s.data {
			if c == '\n' {
				s.lines = append(s.lines, i+1)
			}
		}
	}
	// The number of line starts at or before off is the 0-based line.
	n, _ := slices.BinarySearch(s.lines, off+1)
	start := 0
	if n > 0 {
		start = s.lines[n-1]
	}
	return Pos{Line: n + 1, Col: off - start + 1}
}

func (s *source) errorf(off int, kind error, format string, args ...any) *Error {
	return &Error{File: s.file, Pos: s.pos(off), Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// decode parses s.data as exactly one JSON value. Syntax errors and
// duplicate keys are reported with their position; the first one ends the
// walk.
func (s *source) decode() (*node, error) {
	if err := s.checkUTF8(); err != nil {
		return nil, err
	}
	// encoding/json's Decoder.Token reports syntax error offsets relative to
	// its buffer, not the input, so validate the whole input first with
	// Unmarshal, whose offsets are absolute.
	var raw json.RawMessage
	if err := json.Unmarshal(s.data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off := int(se.Offset) - 1 // Offset counts the bad byte
			if strings.HasPrefix(se.Error(), "unexpected end") {
				off = len(s.data)
			}
			return nil, &Error{File: s.file, Pos: s.pos(off), Kind: ErrSyntax, Msg: se.Error()}
		}
		return nil, &Error{File: s.file, Kind: ErrSyntax, Msg: err.Error()}
	}
	w := walker{src: s, dec: json.NewDecoder(bytes.NewReader(s.data))}
	w.dec.UseNumber()
	return w.value(0)
}

type walker struct {
	src *source
	dec *json.Decoder
}

// start returns the offset of the next token: the decoder's offset moved
// past white space and the separators the decoder consumes silently.
func (w *walker) start() int {
	off := int(w.dec.InputOffset())
	for off < len(w.src.data) {
		switch w.src.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (w *walker) token() (json.Token, int, error) {
	off := w.start()
	tok, err := w.dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, off, &Error{File: w.src.file, Pos: w.src.pos(off), Kind: ErrSyntax, Msg: err.Error()}
	}
	return tok, off, nil
}

func (w *walker) value(depth int) (*node, error) {
	tok, off, err := w.token()
	if err != nil {
		return nil, err
	}
	return w.rest(tok, off, depth)
}

// rest finishes the value that starts with tok at off.
func (w *walker) rest(tok json.Token, off, depth int) (*node, error) {
	d, ok := tok.(json.Delim)
	if !ok {
		return &node{off: off, val: tok}, nil
	}
	if depth >= maxDepth {
		return nil, w.src.errorf(off, ErrSyntax, "nesting deeper than %d levels", maxDepth)
	}
	switch d {
	case '[':
		var elems []*node
		for w.dec.More() {
			n, err := w.value(depth + 1)
			if err != nil {
				return nil, err
			}
			elems = append(elems, n)
		}
		if _, _, err := w.token(); err != nil { // ']'
			return nil, err
		}
		if elems == nil {
			elems = []*node{}
		}
		return &node{off: off, val: elems}, nil
	case '{':
		obj := &object{}
		seen := make(map[string]int)
		for w.dec.More() {
			tok, keyOff, err := w.token()
			if err != nil {
				return nil, err
			}
			key, _ := tok.(string)
			if first, dup := seen[key]; dup {
				return nil, w.src.errorf(keyOff, ErrDuplicateKey, "duplicate key %q (first at %s)", key, w.src.pos(first))
			}
			seen[key] = keyOff
			v, err := w.value(depth + 1)
			if err != nil {
				return nil, err
			}
			obj.members = append(obj.members, member{key: key, keyOff: keyOff, val: v})
		}
		if _, _, err := w.token(); err != nil { // '}'
			return nil, err
		}
		return &node{off: off, val: obj}, nil
	}
	return nil, w.src.errorf(off, ErrSyntax, "unexpected %v", d)
}

// plain converts n to the values encoding/json produces with UseNumber:
// map[string]any, []any, string, json.Number, bool and nil. Maps are always
// non-nil.
func (n *node) plain() any {
	switch v := n.val.(type) {
	case []*node:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e.plain()
		}
		return out
	case *object:
		out := make(map[string]any, len(v.members))
		for _, m := range v.members {
			out[m.key] = m.val.plain()
		}
		return out
	default:
		return v
	}
}

// kind names n's JSON type for error messages.
func (n *node) kind() string {
	switch n.val.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []*node:
		return "array"
	case *object:
		return "object"
	}
	return fmt.Sprintf("%T", n.val)
}
