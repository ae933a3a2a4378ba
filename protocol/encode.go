package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/sourcegraph/jsonrpc2"
)

// The jsonrpc2 connection hands WriteObject a value of its own unexported
// message type, whose MarshalJSON runs encoding/json over the request or
// response once more and puts "jsonrpc" last. Through the exported OnSend
// hook, which jsonrpc2 calls with the *jsonrpc2.Request or
// *jsonrpc2.Response just before WriteObject, under the same send lock, the
// stream learns what is being sent and encodes it itself in one pass, with
// the member order every message of this package uses: jsonrpc, id,
// method, params / result, error.

// outgoing is the message OnSend announced, consumed by the WriteObject
// that follows it, which also records a request's id (see answers.go).
// jsonrpc2 serialises both calls under its send lock.
type outgoing struct {
	req  *jsonrpc2.Request
	resp *jsonrpc2.Response
}

// onSend is the jsonrpc2.OnSend hook of a LineStream.
func (s *LineStream) onSend(req *jsonrpc2.Request, resp *jsonrpc2.Response) {
	s.next = outgoing{req, resp}
}

// appendMessage appends the JSON of the announced message to b. ok is false
// when the message has members this encoder leaves to jsonrpc2 (Meta,
// ExtraFields), and then nothing is appended.
func (m outgoing) appendMessage(b []byte) ([]byte, bool) {
	b = append(b, `{"jsonrpc":"2.0"`...)
	switch {
	case m.req != nil:
		r := m.req
		if r.Meta != nil || len(r.ExtraFields) > 0 {
			return b, false
		}
		if !r.Notif {
			b = append(b, `,"id":`...)
			b = appendID(b, r.ID)
		}
		b = append(b, `,"method":`...)
		b = appendString(b, r.Method)
		if r.Params != nil {
			b = append(b, `,"params":`...)
			b = append(b, *r.Params...)
		}
	case m.resp != nil:
		r := m.resp
		if r.Meta != nil {
			return b, false
		}
		b = append(b, `,"id":`...)
		b = appendID(b, r.ID)
		switch {
		case r.Error != nil:
			b = append(b, `,"error":{"code":`...)
			b = strconv.AppendInt(b, r.Error.Code, 10)
			b = append(b, `,"message":`...)
			b = appendString(b, r.Error.Message)
			if r.Error.Data != nil {
				b = append(b, `,"data":`...)
				b = append(b, *r.Error.Data...)
			}
			b = append(b, '}')
		case r.Result != nil:
			b = append(b, `,"result":`...)
			b = append(b, *r.Result...)
		default:
			b = append(b, `,"result":null`...)
		}
	default:
		return b, false
	}
	return append(b, '}'), true
}

func appendID(b []byte, id jsonrpc2.ID) []byte {
	if id.IsString {
		return appendString(b, id.Str)
	}
	return strconv.AppendUint(b, id.Num, 10)
}

// appendString appends s as a JSON string: as is when it is printable
// ASCII without quote or backslash, else as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// encode encodes the message OnSend announced into buf as one line ending
// in a newline. ok is false when there was none, or it is one the generic
// path must encode.
func (m outgoing) encode(buf []byte) ([]byte, bool) {
	if m.req == nil && m.resp == nil {
		return buf, false
	}
	start := len(buf)
	b, ok := m.appendMessage(buf)
	if !ok {
		return buf[:start], false
	}
	if bytes.IndexByte(b[start:], '\n') >= 0 {
		// Raw members with a newline inside (never from encoding/json):
		// compact them.
		var c bytes.Buffer
		if err := json.Compact(&c, b[start:]); err != nil {
			return buf[:start], false
		}
		b = append(buf[:start], c.Bytes()...)
	}
	return append(b, '\n'), true
}
