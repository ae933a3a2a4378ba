package protocol

import (
	"encoding/json"

	"github.com/sourcegraph/jsonrpc2"
)

// The jsonrpc2 connection decodes each message it reads with encoding/json
// several times over: its own message type decodes the line into
// interface{} values to tell a request from a response, then a request
// decodes itself into a map whose params it encodes again, and a response
// decodes itself once more. At 16 concurrent callers of a small method
// that was the largest item of a call's CPU (perf record of plugin-bench's
// scenario 3: 35% of the caller's CPU, 47% of the plugin's).
//
// The one member jsonrpc2 never looks into, a request's params or a
// response's result, is held back: the line reader, which has already
// checked the line and found its members, gives jsonrpc2 the message
// without it, and the exported OnRecv hook, which jsonrpc2 calls on its
// read loop with the decoded *jsonrpc2.Request or *jsonrpc2.Response right
// after ReadObject and before it dispatches the request or wakes the
// caller, puts it back verbatim. jsonrpc2 still decodes every message,
// matches every answer to its call and dispatches every request.

// holdBack returns the message env describes without its params or
// result, for jsonrpc2 to decode, and keeps that member in s.held for
// onRecv. env is a message validate accepted. The result is valid until
// the next call.
func (s *LineStream) holdBack(env *envelope) []byte {
	// No "jsonrpc" member: validate checked it, and jsonrpc2 reads
	// nothing from it.
	b := append(s.small[:0], '{')
	if env.ID != nil {
		b = append(append(b, `"id":`...), env.ID...)
		b = append(b, ',')
	}
	var held json.RawMessage
	switch {
	case env.Method != nil:
		b = append(append(b, `"method":`...), env.Method...)
		held = env.Params
	case env.Error != nil:
		b = append(append(b, `"error":`...), env.Error...)
	default:
		b = append(b, `"result":null`...)
		held = env.Result
	}
	b = append(b, '}')
	if cap(b) <= 64<<10 {
		s.small = b
	}
	s.held = nil
	if held != nil {
		// A copy: the line's buffer is read into again, while the
		// handler or the caller uses the member later.
		s.held = append(json.RawMessage(nil), held...)
	}
	return b
}

// onRecv is the jsonrpc2.OnRecv hook of a LineStream that holds members
// back: it gives the message jsonrpc2 decoded the member holdBack kept.
func (s *LineStream) onRecv(req *jsonrpc2.Request, resp *jsonrpc2.Response) {
	held := s.held
	s.held = nil
	if held == nil {
		return
	}
	// For an answer, req is the call it answers: resp comes first.
	switch {
	case resp != nil:
		resp.Result = &held
	case req != nil:
		req.Params = &held
	}
}
