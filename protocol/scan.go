package protocol

import "encoding/json"

// scanEnvelope checks that line is one JSON object, with surrounding
// whitespace, and fills env with the raw values of its top-level members
// of interest. It is one pass over the bytes that allocates nothing: the
// values are slices of line. It returns ok false when line is not valid
// JSON, and simple false when it met a member name it leaves to
// encoding/json (one with an escape or a non-ASCII byte, which
// encoding/json may match to a member under its case folding); env is then
// incomplete. Member names match as encoding/json matches them for ASCII:
// ignoring case; the last of duplicate members wins.
func scanEnvelope(line []byte, env *envelope) (ok, simple bool) {
	s := scanner{b: line}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false, true
	}
	s.i++
	s.depth = 1
	simple = true
	s.ws()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			if s.peek() != '"' {
				return false, simple
			}
			start := s.i
			if !s.str() {
				return false, simple
			}
			key := s.b[start+1 : s.i-1]
			s.ws()
			if s.peek() != ':' {
				return false, simple
			}
			s.i++
			s.ws()
			vstart := s.i
			if !s.value() {
				return false, simple
			}
			if field, plain := envelopeField(env, key); !plain {
				simple = false
			} else if field != nil {
				*field = json.RawMessage(s.b[vstart:s.i])
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				s.ws()
				continue
			case '}':
				s.i++
			default:
				return false, simple
			}
			break
		}
	}
	s.ws()
	return s.i == len(s.b), simple
}

// envelopeField returns the member of env that key names, or nil. plain is
// false for a key this function cannot match exactly as encoding/json does.
func envelopeField(env *envelope, key []byte) (field *json.RawMessage, plain bool) {
	for _, c := range key {
		if c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	switch {
	case asciiFold(key, "jsonrpc"):
		return &env.JSONRPC, true
	case asciiFold(key, "id"):
		return &env.ID, true
	case asciiFold(key, "method"):
		return &env.Method, true
	case asciiFold(key, "params"):
		return &env.Params, true
	case asciiFold(key, "result"):
		return &env.Result, true
	case asciiFold(key, "error"):
		return &env.Error, true
	}
	return nil, true
}

// asciiFold reports whether b equals the lower-case ASCII name, ignoring
// ASCII case. (encoding/json also folds "K" and "ſ" with k and s: names
// with non-ASCII bytes are left to it.)
func asciiFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// maxDepth is encoding/json's nesting limit, kept so that both accept the
// same lines.
const maxDepth = 10000

// scanner validates JSON values in place. The input is valid UTF-8 (the
// caller checked), so strings need only their escapes and control bytes
// checked.
type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value() bool {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return false
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

func (s *scanner) str() bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			s.i++
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if !isHex(s.peek()) {
						return false
					}
					s.i++
				}
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) number() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *scanner) enter() bool {
	s.depth++
	s.i++
	return s.depth <= maxDepth
}

func (s *scanner) object() bool {
	if !s.enter() {
		return false
	}
	s.ws()
	if s.peek() == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.peek() != '"' || !s.str() {
			return false
		}
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.value() {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array() bool {
	if !s.enter() {
		return false
	}
	s.ws()
	if s.peek() == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.value() {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}
