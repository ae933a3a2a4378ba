package protocol

import (
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
type Tracer struct {
	out  *traceOut
	peer string
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
func (t *Tracer) WithPeer(peer string) *Tracer {
	if t == nil {
		return nil
	}
	return &Tracer{out: t.out, peer: peer}
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
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	b = append(b, '\n')
	t.out.w.Write(b) //nolint:errcheck // tracing is best effort
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
