package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"sync"
	"time"
	"unicode/utf8"
)

// Tracer records every line a connection sends and receives, as JSON lines:
//
//	{"time":"2026-11-23T20:41:07.123456Z","peer":"packer-builder-file","dir":"send","msg":{...}}
//
// dir is "send" or "recv" from this side's point of view. A received line
// that is not valid JSON is recorded as a string in "raw" instead of "msg",
// shortened to 200 bytes, with its full length in "size".
//
// A nil *Tracer records nothing. One Tracer may serve many connections:
// [Tracer.WithPeer] gives each its own peer name over the same writer.
// Write errors are ignored: tracing never breaks a connection.
//
// A trace carries everything the plugins are told, configuration included;
// [Tracer.WithMask] hides sensitive values before anything is written.
// Stream payloads (the data of stream/write and stream/data params and of
// stream/read results: scripts, command output, uploaded files) are recorded as their
// length only, "data" replaced by "data_bytes", unless
// [Tracer.WithStreamData] asks for them.
type Tracer struct {
	out  *traceOut
	peer string
	mask func(string) string
	data bool
}

type traceOut struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewTracer returns a Tracer writing to w.
func NewTracer(w io.Writer) *Tracer {
	return &Tracer{out: &traceOut{w: w, now: time.Now}}
}

// WithPeer returns a Tracer over the same writer that labels records with peer.
// It keeps t's mask.
func (t *Tracer) WithPeer(peer string) *Tracer {
	if t == nil {
		return nil
	}
	return &Tracer{out: t.out, peer: peer, mask: t.mask, data: t.data}
}

// WithMask returns a Tracer over the same writer that passes every text it
// records through mask, which returns its argument with each secret
// replaced (a masker's Mask method, for example). The mask is applied to the
// decoded value of every string and object key in a message, so a secret is
// found even when the sender escaped some of its characters (\u0070, \"),
// then to the raw text of an unreadable line, and last to the whole record
// as written. A masked message is re-encoded: its members keep their values
// but not their order or spacing. mask must be safe for concurrent use; nil
// removes the mask. Tracers made from the result with [Tracer.WithPeer] keep
// it.
func (t *Tracer) WithMask(mask func(string) string) *Tracer {
	if t == nil {
		return nil
	}
	return &Tracer{out: t.out, peer: t.peer, mask: mask, data: t.data}
}

// WithStreamData returns a Tracer over the same writer that records stream
// payloads (on true) or only their length (on false, the default). With a
// mask, a recorded payload is decoded from base64, masked and encoded
// again; a secret split between two chunks is not found. Tracers made from
// the result keep the setting.
func (t *Tracer) WithStreamData(on bool) *Tracer {
	if t == nil {
		return nil
	}
	return &Tracer{out: t.out, peer: t.peer, mask: t.mask, data: on}
}

// streamPayload returns the object in msg that carries a stream payload in
// its "data" member: the params of stream/write and of stream/data (version
// 2's pushed chunks), or a result shaped like stream/read's ({"data": ...,
// "eof": ...}); nil when there is none.
func streamPayload(msg map[string]any) map[string]any {
	if m := msg["method"]; m == MethodStreamWrite || m == MethodStreamData {
		if p, ok := msg["params"].(map[string]any); ok {
			return p
		}
	}
	if r, ok := msg["result"].(map[string]any); ok {
		if _, eof := r["eof"].(bool); eof && len(r) == 2 {
			return r
		}
	}
	return nil
}

// traceStreams rewrites the stream payload of msg, if any: its length only
// when data is false, else its bytes masked after decoding.
func traceStreams(msg json.RawMessage, data bool, mask func(string) string) json.RawMessage {
	if msg == nil || (data && mask == nil) || !bytes.Contains(msg, []byte(`"data"`)) {
		return msg
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return msg
	}
	p := streamPayload(m)
	s, ok := p["data"].(string)
	if !ok {
		return msg
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	switch {
	case err != nil && !data:
		delete(p, "data")
		p["data_bytes"] = base64.StdEncoding.DecodedLen(len(s))
	case err != nil:
		p["data"] = mask(s)
	case !data:
		delete(p, "data")
		p["data_bytes"] = len(raw)
	default:
		p["data"] = base64.StdEncoding.EncodeToString([]byte(mask(string(raw))))
	}
	b, err := marshalNoEscape(m)
	if err != nil {
		return msg
	}
	return b
}

type traceRecord struct {
	Time string          `json:"time"`
	Peer string          `json:"peer,omitempty"`
	Dir  string          `json:"dir"`
	Msg  json.RawMessage `json:"msg,omitempty"`
	Raw  *string         `json:"raw,omitempty"`
	Size int64           `json:"size,omitempty"`
}

func (t *Tracer) write(r traceRecord) {
	if t == nil {
		return
	}
	t.out.mu.Lock()
	defer t.out.mu.Unlock()
	r.Time = t.out.now().UTC().Format(time.RFC3339Nano)
	r.Peer = t.peer
	r.Msg = traceStreams(r.Msg, t.data, t.mask)
	if t.mask != nil {
		r.Msg = maskJSON(r.Msg, t.mask)
		if r.Raw != nil {
			s := t.mask(*r.Raw)
			r.Raw = &s
		}
	}
	var b []byte
	var err error
	if t.mask == nil {
		b, err = json.Marshal(r)
	} else {
		// Unescaped, so that the last pass sees "<" as "<".
		b, err = marshalNoEscape(r)
		b = []byte(t.mask(string(b)))
	}
	if err != nil {
		return
	}
	b = append(b, '\n')
	t.out.w.Write(b) //nolint:errcheck // tracing is best effort
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// maskJSON returns msg with mask applied to every string and object key. A
// msg that cannot be decoded is returned as a JSON string of its masked text.
func maskJSON(msg json.RawMessage, mask func(string) string) json.RawMessage {
	if msg == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		b, _ := json.Marshal(mask(string(msg)))
		return b
	}
	b, err := marshalNoEscape(maskValue(v, mask))
	if err != nil {
		b, _ = json.Marshal(mask(string(msg)))
	}
	return b
}

func maskValue(v any, mask func(string) string) any {
	switch v := v.(type) {
	case string:
		return mask(v)
	case []any:
		for i := range v {
			v[i] = maskValue(v[i], mask)
		}
		return v
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[mask(k)] = maskValue(e, mask)
		}
		return m
	default:
		return v
	}
}

func (t *Tracer) send(line []byte) {
	if t == nil {
		return
	}
	t.write(traceRecord{Dir: "send", Msg: line})
}

func (t *Tracer) recv(line []byte) {
	if t == nil {
		return
	}
	if utf8.Valid(line) && json.Valid(line) {
		t.write(traceRecord{Dir: "recv", Msg: line})
		return
	}
	t.recvRaw(line, int64(len(line)))
}

func (t *Tracer) recvRaw(line []byte, size int64) {
	if t == nil {
		return
	}
	s := string(shorten(line))
	t.write(traceRecord{Dir: "recv", Raw: &s, Size: size})
}
