package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// message is one line the plugin wrote, with every member kept raw so that
// absence, null and JSON type can be told apart.
type message struct {
	Raw     []byte          `json:"-"`
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`

	method string // Method decoded
}

// wireError is the error member of a response.
type wireError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (m *message) isResponse() bool { return m.Method == nil }
func (m *message) isRequest() bool  { return m.Method != nil && m.ID != nil }

// idKey returns the id as compact JSON, the key under which the runner
// matches answers to requests; "" when there is no id.
func (m *message) idKey() string { return idKey(m.ID) }

func idKey(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// wireErr decodes the error member; nil when the message has none.
func (m *message) wireErr() *wireError {
	if m.Error == nil || string(m.Error) == "null" {
		return nil
	}
	var e wireError
	if err := json.Unmarshal(m.Error, &e); err != nil {
		return &wireError{Code: 0, Message: "undecodable error member: " + err.Error()}
	}
	return &e
}

// describe says in a few words what an answer was, for failure reasons.
func (m *message) describe() string {
	if e := m.wireErr(); e != nil {
		return fmt.Sprintf("error %d %q", e.Code, e.Message)
	}
	if m.Result != nil {
		return "result " + printable(m.Result)
	}
	return printable(m.Raw)
}

// parseMessage checks line against the JSON-RPC 2.0 rules SPEC.md §3 and
// §4 set for a sender, and decodes it. The error says what is wrong.
func parseMessage(line []byte) (*message, error) {
	if !utf8.Valid(line) {
		return nil, errors.New("not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, errors.New("not a JSON object")
	}
	m := &message{Raw: append([]byte(nil), line...)}
	if err := json.Unmarshal(trimmed, m); err != nil {
		return nil, err
	}
	if string(m.JSONRPC) != `"2.0"` {
		return nil, errors.New(`"jsonrpc" is not "2.0"`)
	}
	if m.Method != nil {
		if m.ID != nil {
			if err := checkID(m.ID); err != nil {
				return nil, err
			}
		}
		if err := json.Unmarshal(m.Method, &m.method); err != nil {
			return nil, errors.New(`"method" is not a string`)
		}
		if m.Result != nil || m.Error != nil {
			return nil, errors.New("message has both method and result or error")
		}
		if string(m.ID) == "null" {
			return nil, errors.New(`request "id" is null`)
		}
		if m.Params != nil && m.Params[0] != '{' && m.Params[0] != '[' {
			return nil, errors.New(`"params" is not an object or an array`)
		}
		return m, nil
	}
	switch {
	case m.Result == nil && m.Error == nil:
		return nil, errors.New(`message has neither "method" nor "result" nor "error"`)
	case m.Result != nil && m.Error != nil:
		return nil, errors.New(`response has both "result" and "error"`)
	case m.ID == nil:
		return nil, errors.New(`response has no "id"`)
	case m.ID[0] == '-' || (m.ID[0] >= '0' && m.ID[0] <= '9'):
		// Any number: SPEC §4.1 echoes refused numeric ids byte for byte.
	default:
		if err := checkID(m.ID); err != nil {
			return nil, err
		}
	}
	if m.Error != nil {
		var e struct {
			Code    *json.Number `json:"code"`
			Message *string      `json:"message"`
		}
		if err := json.Unmarshal(m.Error, &e); err != nil || e.Code == nil || e.Message == nil {
			return nil, errors.New(`"error" is not an object with an integer "code" and a string "message"`)
		}
		if _, err := e.Code.Int64(); err != nil {
			return nil, errors.New(`"error.code" is not an integer`)
		}
	}
	return m, nil
}

// checkID accepts null, a string or an integer from 0 to 2^63-1 (SPEC §4).
func checkID(raw json.RawMessage) error {
	switch {
	case string(raw) == "null" || raw[0] == '"':
		return nil
	case raw[0] >= '0' && raw[0] <= '9':
		if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return nil
		}
	}
	return fmt.Errorf(`"id" %s is not a string or an integer from 0 to 2^63-1`, raw)
}

// request is a JSON-RPC request or notification the runner sends.
type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  any             `json:"params,omitempty"`
}

// response is an answer the runner sends to a plugin's request.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *wireError      `json:"error,omitempty"`
}

// nullResult marshals as JSON null inside a response, where a nil any
// would be omitted.
type nullResult struct{}

func (nullResult) MarshalJSON() ([]byte, error) { return []byte("null"), nil }
