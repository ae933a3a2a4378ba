package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// LineStream frames JSON-RPC 2.0 messages as lines: one JSON value per line,
// UTF-8, terminated by "\n". It implements jsonrpc2.ObjectStream.
//
// Reading enforces a size cap and validates every line before the jsonrpc2
// connection sees it, because the jsonrpc2 package closes the connection on
// any malformed message. What happens to a bad line depends on the mode:
//
//   - Lenient (the plugin side): a bad request is answered on the spot with
//     -32700 (not JSON, not UTF-8), -32600 (not a valid request, or a batch)
//     or [CodeMessageTooLarge], and reading goes on with the next line. A bad
//     response cannot be answered; it is reported to OnMalformed and dropped.
//   - Strict (the host side): the first bad line ends the stream; ReadObject
//     returns a *[ViolationError] that quotes the line, shortened.
//
// Under a [Conn], a well-formed answer that answers no request the Conn
// awaits an answer to (never sent, already answered, a null id) counts as
// a bad line too, and an answer to a request whose caller gave up is
// dropped; see [Conn.Call].
//
// Empty lines are skipped, and a "\r" before the "\n" is removed. Lines longer
// than the cap are never held in memory: their bytes are discarded up to the
// next newline.
type LineStream struct {
	r      *lineReader
	w      io.Writer
	closer io.Closer
	strict bool

	maxIn  atomic.Int64 // largest line accepted
	maxOut atomic.Int64 // largest line the peer accepts

	// OnMalformed, if set, is called with a description of every bad line
	// the stream skips in lenient mode. It must not block.
	OnMalformed func(err error)

	trace *Tracer

	// onData, if set, is offered every line before it is validated; it
	// returns true when it took the line (a stream chunk), which then
	// never reaches the jsonrpc2 connection.
	onData func(line []byte) bool

	wmu  sync.Mutex
	wbuf []byte
	line []byte
	next outgoing // announced by jsonrpc2's OnSend, see encode.go

	// hold has ReadObject hold back params and results for onRecv, see
	// decode.go; NewConn sets it with the hook. held and small belong to
	// the read loop.
	hold  bool
	held  json.RawMessage
	small []byte

	// sent, when set (NewConn sets it with the OnSend hook), records the
	// requests written and judges every answer read, see answers.go.
	sent *sentTable
}

// NewLineStream returns a LineStream reading from r and writing to w. Close
// closes c. strict selects the strict mode described on [LineStream]. Both
// size limits start at [DefaultMaxMessageSize]. tr may be nil.
func NewLineStream(r io.Reader, w io.Writer, c io.Closer, strict bool, tr *Tracer) *LineStream {
	s := &LineStream{r: newLineReader(r), w: w, closer: c, strict: strict, trace: tr}
	s.maxIn.Store(DefaultMaxMessageSize)
	s.maxOut.Store(DefaultMaxMessageSize)
	return s
}

// SetLimits sets the largest line this side accepts (in) and the largest
// line the peer accepts (out). A value <= 0 leaves that limit unchanged.
// It is safe to call concurrently with reads and writes.
func (s *LineStream) SetLimits(in, out int64) {
	if in > 0 {
		s.maxIn.Store(in)
	}
	if out > 0 {
		s.maxOut.Store(out)
	}
}

// ViolationError reports a line the peer sent that breaks the framing or
// JSON-RPC rules. Line holds its first bytes.
type ViolationError struct {
	Err  *Error // the JSON-RPC error code the line deserves
	Line []byte // the offending bytes, shortened to at most 200 bytes
	Size int64  // the length of the whole line

	// ID is set when the line is a well-formed answer that answers no
	// request this side awaits an answer to (one never sent, one already
	// answered, or a null id): the answer's id as the peer wrote it.
	ID json.RawMessage

	response bool // the line was a response, which is never answered
}

func (e *ViolationError) Error() string {
	return fmt.Sprintf("%s: %s", e.Err.Message, Quote(e.Line, e.Size))
}

// Unwrap returns the protocol error, so errors.Is(err, ErrParse) works.
func (e *ViolationError) Unwrap() error { return e.Err }

// Quote formats the first bytes of a line of length size for an error
// message, marking the cut when there is one.
func Quote(b []byte, size int64) string {
	if int64(len(b)) < size {
		return fmt.Sprintf("%q... (%d bytes)", b, size)
	}
	return strconv.Quote(string(b))
}

const quoteLen = 200

func shorten(b []byte) []byte {
	if len(b) > quoteLen {
		b = b[:quoteLen]
	}
	return append([]byte(nil), b...)
}

// ReadObject reads the next valid message into v, which jsonrpc2 gives as
// its own message type. See [LineStream] for what happens to bad lines.
func (s *LineStream) ReadObject(v any) error {
	if s.sent != nil {
		if id, ok := s.sent.nextRetire(); ok {
			return s.retireCall(id, v)
		}
	}
	for {
		line, size, whole, err := s.readLine()
		if err != nil {
			return err
		}
		if size > s.maxIn.Load() {
			s.trace.recvRaw(line, size)
			msg := ErrMessageTooLarge.WithMessage("line of %d bytes exceeds the limit of %d", size, s.maxIn.Load())
			if !whole {
				msg = ErrMessageTooLarge.WithMessage("line of more than %d bytes, its newline not yet read, exceeds the limit of %d", size, s.maxIn.Load())
			}
			verr := &ViolationError{Err: msg, Line: shorten(line), Size: size}
			if err := s.reject(verr, nil); err != nil {
				return err
			}
			if !whole {
				if err := s.discardLine(); err != nil {
					return err
				}
			}
			continue
		}
		if s.onData != nil && len(line) > len(dataPrefixSink) && line[0] == '{' && line[1] == '"' {
			if s.onData(line) {
				s.trace.recv(line)
				continue
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s.trace.recv(line)
		env, id, werr := validate(line)
		var answerID json.RawMessage
		if werr == nil && s.sent != nil && env.Method == nil {
			switch verdict := s.sent.answer(env.ID); verdict {
			case answerAwaited:
			case answerLate:
				continue // its caller gave up; jsonrpc2 was told (retireCall)
			default:
				werr = unexpectedAnswer(verdict, env.ID)
				answerID = append(json.RawMessage(nil), env.ID...)
			}
		}
		if werr == nil {
			msg := line
			if s.hold {
				msg = s.holdBack(&env)
			}
			if err := unmarshalValid(msg, v); err != nil {
				// validate accepted what jsonrpc2 refuses; treat as invalid.
				werr = ErrInvalidRequest.WithMessage("%v", err)
			} else {
				return nil
			}
		}
		verr := &ViolationError{Err: werr, Line: shorten(line), Size: size, ID: answerID, response: werr.Code == codeBadResponse}
		if verr.response {
			verr.Err = ErrInvalidRequest.WithMessage("%s", werr.Message)
		}
		if err := s.reject(verr, id); err != nil {
			return err
		}
	}
}

// reject handles a bad line: in strict mode it ends the stream, in lenient
// mode it answers (when the line was a request, or unreadable) and goes on.
func (s *LineStream) reject(verr *ViolationError, id json.RawMessage) error {
	if s.strict {
		return verr
	}
	if s.OnMalformed != nil {
		s.OnMalformed(verr)
	}
	if verr.response {
		return nil // a bad response is never answered
	}
	if id == nil {
		id = json.RawMessage("null")
	}
	return s.writeRaw(errorResponse{JSONRPC: "2.0", ID: id, Error: verr.Err})
}

type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   *Error          `json:"error"`
}

// readLine returns the next line without its terminator. A line longer
// than the cap is returned as its first bytes with a size over the cap as
// soon as that is known, whether or not its newline has arrived: whole is
// then false when the rest of the line is still to be read (discardLine
// drops it). The returned slice is valid until the next call.
func (s *LineStream) readLine() (line []byte, size int64, whole bool, err error) {
	s.line = s.line[:0]
	max := s.maxIn.Load()
	s.r.limit = max + 2
	for {
		chunk, err := s.r.ReadSlice('\n')
		size += int64(len(chunk))
		if size > max+2 { // longer than max bytes and "\r\n", newline or not
			if len(s.line) < quoteLen {
				n := min(quoteLen-len(s.line), len(chunk))
				s.line = append(s.line, chunk[:n]...)
			}
			if err == nil {
				return s.line, size - 1, true, nil
			}
			if errors.Is(err, bufio.ErrBufferFull) || errors.Is(err, io.EOF) {
				return s.line, size, false, nil
			}
			return nil, 0, false, err
		}
		if err == nil && len(s.line) == 0 {
			// The whole line in one slice of the buffer, which stays
			// valid until the next read: handed on without a copy.
			return trimLine(chunk, size)
		}
		s.line = append(s.line, chunk...)
		switch {
		case err == nil:
			return trimLine(s.line, size)
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if size > 0 {
				return nil, 0, false, fmt.Errorf("%w: stream ended inside a message (%s)", io.ErrUnexpectedEOF, Quote(shorten(s.line), size))
			}
			return nil, 0, false, io.EOF
		default:
			return nil, 0, false, err
		}
	}
}

// trimLine returns the line of size bytes, newline included, that line
// holds, without its "\n" or "\r\n", as readLine returns it.
func trimLine(line []byte, size int64) ([]byte, int64, bool, error) {
	size--
	if size < int64(len(line)) {
		line = line[:size] // drop "\n"
	}
	if size > 0 && len(line) > 0 && line[len(line)-1] == '\r' && int64(len(line)) == size {
		line = line[:len(line)-1]
		size--
	}
	return line, size, true, nil
}

// discardLine reads and drops the rest of a line whose start readLine
// refused, up to and including its newline.
func (s *LineStream) discardLine() error {
	for {
		_, err := s.r.ReadSlice('\n')
		switch {
		case err == nil:
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: stream ended inside an over-size message", io.ErrUnexpectedEOF)
		default:
			return err
		}
	}
}

// codeBadResponse marks, inside this file only, a validation failure of a
// response, which is never answered; callers see it as ErrInvalidRequest.
const codeBadResponse = 1

var errIsResponse = NewError(codeBadResponse, "invalid response")

// envelope is the shape of any JSON-RPC 2.0 message, with every member raw
// so that presence, null and type can all be told apart.
type envelope struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// validate checks one line against the framing and JSON-RPC 2.0 rules. On
// failure it returns the error the line deserves and, when the line is a
// request whose id could be read, that id verbatim.
func validate(line []byte) (envelope, json.RawMessage, *Error) {
	var env envelope
	id, err := validateInto(line, &env)
	return env, id, err
}

// validateInto is validate, filling env with the line's members.
func validateInto(line []byte, env *envelope) (json.RawMessage, *Error) {
	if !utf8.Valid(line) {
		return nil, ErrParse.WithMessage("message is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(line, " \t\r")
	if trimmed[0] != '{' {
		// json.Valid only here, off the common path: an object is checked
		// by the Unmarshal below, which validates before decoding.
		switch {
		case !json.Valid(line):
			return nil, ErrParse.WithMessage("message is not valid JSON")
		case trimmed[0] == '[':
			return nil, ErrInvalidRequest.WithMessage("batches are not supported")
		default:
			return nil, ErrInvalidRequest.WithMessage("message is not a JSON object")
		}
	}
	// One pass that allocates nothing over the line's top-level members;
	// encoding/json only for what it leaves (a bad line, for its error
	// message, or a member name with escapes or non-ASCII bytes).
	if ok, simple := scanEnvelope(line, env); !ok || !simple {
		// Into a variable of its own, so that env, on the common path,
		// stays on its caller's stack.
		var slow envelope
		err := json.Unmarshal(line, &slow)
		*env = slow
		if err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				return nil, ErrParse.WithMessage("message is not valid JSON: %v", err)
			}
			return nil, ErrInvalidRequest.WithMessage("%v", err)
		}
		if !ok {
			return nil, ErrParse.WithMessage("message is not valid JSON")
		}
	}
	isRequest := env.Method != nil
	isResponse := env.Result != nil || env.Error != nil
	var idErr *Error
	if env.ID != nil {
		idErr = checkID(env.ID)
	}
	// id is what an error answer echoes: the raw id when it is a string or a
	// number (even one refused), else nothing (the answer's id is null).
	var id json.RawMessage
	if env.ID != nil && (env.ID[0] == '"' || env.ID[0] == '-' || (env.ID[0] >= '0' && env.ID[0] <= '9')) {
		id = append(json.RawMessage(nil), env.ID...)
	}
	if !bytes.Equal(env.JSONRPC, []byte(`"2.0"`)) {
		if isResponse && !isRequest {
			return nil, errIsResponse.WithMessage(`"jsonrpc" must be "2.0"`)
		}
		return id, ErrInvalidRequest.WithMessage(`"jsonrpc" must be "2.0"`)
	}
	switch {
	case isRequest && isResponse:
		return id, ErrInvalidRequest.WithMessage("message has both method and result or error")
	case isRequest:
		if env.Method[0] != '"' {
			return id, ErrInvalidRequest.WithMessage(`"method" must be a string`)
		}
		if env.Params != nil && env.Params[0] != '{' && env.Params[0] != '[' {
			return id, ErrInvalidRequest.WithMessage(`"params" must be an object or an array`)
		}
		if env.ID != nil && isNull(env.ID) {
			return nil, ErrInvalidRequest.WithMessage(`"id" must not be null`)
		}
		if idErr != nil {
			return id, idErr
		}
		return id, nil
	case isResponse:
		if env.ID == nil {
			return nil, errIsResponse.WithMessage(`response has no "id"`)
		}
		if idErr != nil {
			return nil, errIsResponse.WithMessage("%s", idErr.Message)
		}
		if env.Result != nil && env.Error != nil {
			return nil, errIsResponse.WithMessage("response has both result and error")
		}
		if env.Error != nil {
			var e struct {
				Code    *json.Number `json:"code"`
				Message *string      `json:"message"`
			}
			if err := json.Unmarshal(env.Error, &e); err != nil || e.Code == nil || e.Message == nil {
				return nil, errIsResponse.WithMessage(`"error" must be an object with an integer "code" and a string "message"`)
			}
			if _, err := e.Code.Int64(); err != nil {
				return nil, errIsResponse.WithMessage(`"error.code" must be an integer`)
			}
		}
		return nil, nil
	default:
		return id, ErrInvalidRequest.WithMessage(`message has neither "method" nor "result" nor "error"`)
	}
}

func isNull(b json.RawMessage) bool { return string(b) == "null" }

// checkID accepts a string id or an integer id from 0 to 2^63-1, the ids
// this implementation can echo with their exact JSON type. null is checked
// by the caller.
func checkID(raw json.RawMessage) *Error {
	switch {
	case isNull(raw):
		return nil
	case raw[0] == '"':
		return nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil || raw[0] == '-' {
			return ErrInvalidRequest.WithMessage(`"id" must be a string or an integer from 0 to 9223372036854775807, got %s`, raw)
		}
		return nil
	default:
		return ErrInvalidRequest.WithMessage(`"id" must be a string or an integer, got %s`, raw)
	}
}

// WriteObject encodes v as one line and writes it with a single Write call.
// It returns an error wrapping [ErrMessageTooLarge], without writing, when
// the line would exceed the peer's limit. It is safe for concurrent use.
//
// A message announced through the jsonrpc2 connection's OnSend hook (as
// [NewConn] arranges) is encoded by this package in one pass, "jsonrpc"
// first; anything else goes through encoding/json.
//
// A request announced that way, with an id, is recorded as awaiting an
// answer before it is written (and forgotten again if it cannot be), so
// that the answer is expected however soon it comes.
func (s *LineStream) WriteObject(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	m := s.next
	s.next = outgoing{}
	if s.sent != nil && m.req != nil && !m.req.Notif {
		s.sent.add(m.req.ID)
		if err := s.writeObject(m, v); err != nil {
			s.sent.drop(m.req.ID)
			return err
		}
		return nil
	}
	return s.writeObject(m, v)
}

// writeObject writes v, which m announced (when it is not empty), with
// s.wmu held.
func (s *LineStream) writeObject(m outgoing, v any) error {
	if b, ok := m.encode(s.wbuf[:0]); ok {
		return s.writeLocked(b)
	}
	b, err := marshalLine(s.wbuf[:0], v)
	if err != nil {
		return err
	}
	return s.writeLocked(b)
}

func (s *LineStream) writeRaw(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b, err := marshalLine(s.wbuf[:0], v)
	if err != nil {
		return err
	}
	return s.writeLocked(b)
}

// writeLine writes the line build appends to its argument (without the
// newline), as one Write call under the same lock and limit as WriteObject.
func (s *LineStream) writeLine(build func(b []byte) []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := append(build(s.wbuf[:0]), '\n')
	return s.writeLocked(b)
}

// writeFrom writes the line b, which ends in a newline and belongs to the
// caller, as one Write call under the same lock and limit as WriteObject.
func (s *LineStream) writeFrom(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeOut(b)
}

// writeLocked writes the line b, which ends in a newline, with s.wmu held,
// and keeps b's array as the buffer of the next line.
func (s *LineStream) writeLocked(b []byte) error {
	if cap(b) <= 1<<20 {
		s.wbuf = b[:0]
	} else {
		s.wbuf = nil // do not pin a large buffer
	}
	return s.writeOut(b)
}

// writeOut writes the line b, which ends in a newline, with s.wmu held.
func (s *LineStream) writeOut(b []byte) error {
	if n := int64(len(b) - 1); n > s.maxOut.Load() {
		return ErrMessageTooLarge.WithMessage("message of %d bytes exceeds the peer's limit of %d", n, s.maxOut.Load())
	}
	s.trace.send(b[:len(b)-1])
	if _, err := s.w.Write(b); err != nil {
		return &writeError{err}
	}
	return nil
}

// writeError is a failure to write to the peer (a broken pipe, a closed
// file), as opposed to a message that could not be encoded or was too
// large: after one, the connection is unusable.
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing to peer: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// Close closes the underlying closer.
func (s *LineStream) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

// unmarshalValid decodes a line validate has accepted. jsonrpc2's message
// type decodes itself, so its UnmarshalJSON is called directly: going
// through json.Unmarshal would scan the whole line once more first, which
// for a stream chunk is the bulk of the work.
func unmarshalValid(line []byte, v any) error {
	if u, ok := v.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(line)
	}
	return json.Unmarshal(line, v)
}

// marshalLine appends v's JSON and a newline to buf. A value that encodes
// itself with encoding/json (as jsonrpc2's messages do) already produces
// compact, newline-free JSON, so its output is used as is rather than
// validated and compacted once more by an Encoder.
func marshalLine(buf []byte, v any) ([]byte, error) {
	if m, ok := v.(json.Marshaler); ok {
		b, err := m.MarshalJSON()
		if err != nil {
			return nil, err
		}
		if bytes.IndexByte(b, '\n') < 0 {
			return append(append(buf, b...), '\n'), nil
		}
	}
	w := bytes.NewBuffer(buf)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}
