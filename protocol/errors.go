package protocol

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sourcegraph/jsonrpc2"
)

// Error is a JSON-RPC 2.0 error object. It is both what travels on the wire
// and a Go error: two *Error values match under errors.Is when their codes
// are equal, so callers compare with the sentinels below, never by message.
type Error struct {
	// Code is the JSON-RPC error code; see the Code constants.
	Code int64 `json:"code"`
	// Message is a short, lower-case description.
	Message string `json:"message"`
	// Data carries structured detail; its shape depends on Code.
	Data json.RawMessage `json:"data,omitempty"`
}

// NewError returns an *Error with the given code and message and no data.
func NewError(code int64, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Error implements error.
func (e *Error) Error() string {
	return e.Message
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithMessage returns a copy of e with message appended to its message,
// keeping the code, so that the result still matches e under errors.Is.
func (e *Error) WithMessage(format string, args ...any) *Error {
	c := *e
	c.Message = e.Message + ": " + fmt.Sprintf(format, args...)
	return &c
}

// WithData returns a copy of e whose Data is v encoded as JSON.
// It panics if v cannot be encoded, which is a programming error.
func (e *Error) WithData(v any) *Error {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: error data: %v", err))
	}
	c := *e
	c.Data = b
	return &c
}

// Wire returns e as the jsonrpc2 package's error type.
func (e *Error) Wire() *jsonrpc2.Error {
	w := &jsonrpc2.Error{Code: e.Code, Message: e.Message}
	if len(e.Data) > 0 {
		d := json.RawMessage(e.Data)
		w.Data = &d
	}
	return w
}

// FromWire converts a jsonrpc2 error into an *Error. Other errors are
// returned unchanged.
func FromWire(err error) error {
	var w *jsonrpc2.Error
	if !errors.As(err, &w) {
		return err
	}
	e := &Error{Code: w.Code, Message: w.Message}
	if w.Data != nil {
		e.Data = append(json.RawMessage(nil), *w.Data...)
	}
	return e
}

// AsError returns the *Error in err's chain, or nil if there is none.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Codes defined by JSON-RPC 2.0.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Codes defined by this protocol, in the range JSON-RPC 2.0 reserves for
// implementations (-32000 to -32099). SPEC.md lists them in one table.
const (
	CodeNotInitialized     = -32001
	CodeUnsupportedVersion = -32002
	CodeConfigInvalid      = -32003
	CodeUnknownComponent   = -32004
	CodeUnknownHandle      = -32005
	CodeCancelled          = -32006
	CodeComponentFailed    = -32007
	CodeComponentPanicked  = -32008
	CodeMessageTooLarge    = -32009
	CodeShuttingDown       = -32010
	CodeUnsupported        = -32011
	CodeTooManyRequests    = -32012
)

// ErrParse is answered, with a null id, to a line that is not valid JSON or
// not valid UTF-8.
var ErrParse = NewError(CodeParseError, "parse error")

// ErrInvalidRequest is answered to a line that is JSON but not a valid
// JSON-RPC 2.0 request, including any batch.
var ErrInvalidRequest = NewError(CodeInvalidRequest, "invalid request")

// ErrMethodNotFound is answered to a request for a method the receiver does
// not implement.
var ErrMethodNotFound = NewError(CodeMethodNotFound, "method not found")

// ErrInvalidParams is answered to a request whose params do not match the
// method's schema.
var ErrInvalidParams = NewError(CodeInvalidParams, "invalid params")

// ErrInternal is answered when the receiver failed for a reason of its own
// that no other code describes.
var ErrInternal = NewError(CodeInternalError, "internal error")

// ErrNotInitialized is answered to any request other than initialize that
// arrives before a successful initialize.
var ErrNotInitialized = NewError(CodeNotInitialized, "not initialized")

// ErrUnsupportedVersion is answered to initialize when the plugin speaks
// none of the offered protocol versions; its data is [UnsupportedVersionData].
var ErrUnsupportedVersion = NewError(CodeUnsupportedVersion, "unsupported protocol version")

// ErrConfigInvalid is answered to component/prepare when the configuration
// is rejected; its data is [ConfigInvalidData].
var ErrConfigInvalid = NewError(CodeConfigInvalid, "configuration invalid")

// ErrUnknownComponent is answered to component/prepare for a type and name
// the plugin did not advertise.
var ErrUnknownComponent = NewError(CodeUnknownComponent, "unknown component")

// ErrUnknownHandle is answered when a request names an instance, artifact,
// communicator or stream handle the receiver does not hold (never minted,
// already released, or minted on another connection).
var ErrUnknownHandle = NewError(CodeUnknownHandle, "unknown handle")

// ErrCancelled is answered to a request that stopped early because the
// sender cancelled it with $/cancelRequest.
var ErrCancelled = NewError(CodeCancelled, "request cancelled")

// ErrComponentFailed is answered when a component's own code returned an
// error; the message is that error's text.
var ErrComponentFailed = NewError(CodeComponentFailed, "component failed")

// ErrComponentPanicked is answered when a component's code panicked; its
// data is [PanicData]. The plugin logs the stack on stderr and stays usable.
var ErrComponentPanicked = NewError(CodeComponentPanicked, "component panicked")

// ErrMessageTooLarge is answered, with a null id, to a line longer than the
// receiver's declared limit. A sender gets it as a Go error, before anything
// is written, when a message would exceed the peer's limit.
var ErrMessageTooLarge = NewError(CodeMessageTooLarge, "message too large")

// ErrShuttingDown is answered to requests that arrive after shutdown.
var ErrShuttingDown = NewError(CodeShuttingDown, "shutting down")

// ErrUnsupported is answered when the receiver understands the request but
// cannot do it, for example a communicator call to a build that has none.
var ErrUnsupported = NewError(CodeUnsupported, "unsupported")

// ErrTooManyRequests is answered, at once and without handling it, to a
// request that arrives while the receiver already handles as many of the
// sender's requests as it allows ([Options.MaxHandlers]).
var ErrTooManyRequests = NewError(CodeTooManyRequests, "too many requests")

// ErrConnClosed is returned by calls on a connection that has closed, or
// that closed while the call was in flight. The connection's Err method
// tells why.
var ErrConnClosed = errors.New("connection closed")
