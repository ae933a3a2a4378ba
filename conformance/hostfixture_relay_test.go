package conformance_test

// The fixture host's relay (SPEC §7.7): when the builder offers a
// communicator in hook/run, the fixture runs the provisioner in a second
// process of the same plugin and passes its communicator requests to the
// builder, each stream under a handle of its own on the builder's
// connection. Version 2 notifications are forwarded with the handle
// rewritten and the chunk re-encoded in the canonical form; when the
// builder's session uses version 1 and the provisioner's version 2 (the
// builder starts first, so it claims version 1 in host/stream-version-mix),
// fixtureBridge joins the two. Every mode whose name starts with "stream-"
// breaks one rule on the way.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// fkey names a stream on one connection: a source or a sink handle.
type fkey struct {
	sink bool
	h    string
}

// fixtureRelay joins the builder's connection b to the provisioner's p.
type fixtureRelay struct {
	mode   string
	plugin string
	b, p   *fixtureHost
	comm   string // the builder's communicator handle

	mu   sync.Mutex
	next int
	toB  map[fkey]fkey // the provisioner's streams: the fixture's handle on b
	toP  map[fkey]fkey // and back
	// start marks the builder-side handles of communicator/start's
	// streams (mode stream-corrupts).
	start map[fkey]bool
	// held are builder stream/end lines for the provisioner's sinks,
	// forwarded only after the answer (mode stream-answer-first).
	held map[fkey][]byte
	// ownWindow: the sinks whose window the fixture took over (mode
	// stream-own-window).
	ownWindow map[fkey]bool
	// emptied: the fixture sent its chunk of 0 bytes (mode
	// stream-empty-chunk).
	emptied bool
	// bridged are the provisioner's streams when its session uses version
	// 2 and the builder's version 1 (fixtureBridge).
	bridged map[fkey]*fixtureBridge
}

// fixtureBridge joins a builder's version 1 requests on one of the
// fixture's streams to the provisioner's version 2 stream: the fixture
// reads the provisioner's source with a window of its own and answers the
// builder's stream/read from it, and writes the builder's stream/write to
// the provisioner's sink within the credit it grants.
type fixtureBridge struct {
	mu        sync.Mutex
	chunks    [][]byte
	ended     bool
	credit    int64
	cancelled bool
	wake      chan struct{}
	reads     int
}

func (br *fixtureBridge) poke() {
	select {
	case br.wake <- struct{}{}:
	default:
	}
}

// bridges says whether a request from h is a version 1 stream request the
// bridge answers.
func (r *fixtureRelay) bridges(h *fixtureHost, method string) bool {
	if h != r.b || r.p == nil || r.b.version == r.p.version {
		return false
	}
	switch method {
	case protocol.MethodStreamRead, protocol.MethodStreamWrite, protocol.MethodStreamClose:
		return true
	}
	return false
}

// bridge answers the builder's stream/read, stream/write or stream/close
// on one of the fixture's streams.
func (r *fixtureRelay) bridge(id json.RawMessage, method string, raw json.RawMessage) {
	var prm struct {
		Stream string `json:"stream"`
		Max    int    `json:"max"`
		Data   []byte `json:"data"`
	}
	json.Unmarshal(raw, &prm)
	answer := func(result any, code int64) {
		m := map[string]any{"jsonrpc": "2.0", "id": id}
		if code != 0 {
			m["error"] = map[string]any{"code": code, "message": "fixture bridge: " + method}
		} else {
			m["result"] = result
		}
		r.b.send(m)
	}
	sink := method != protocol.MethodStreamRead
	r.mu.Lock()
	pk, ok := r.toP[fkey{sink: sink, h: prm.Stream}]
	br := r.bridged[pk]
	r.mu.Unlock()
	if !ok || br == nil {
		answer(nil, protocol.CodeUnknownHandle)
		return
	}
	switch method {
	case protocol.MethodStreamRead:
		go func() {
			br.mu.Lock()
			defer br.mu.Unlock()
			for len(br.chunks) == 0 && !br.ended {
				br.mu.Unlock()
				select {
				case <-br.wake:
				case <-time.After(time.Minute):
				}
				br.mu.Lock()
			}
			br.reads++
			data := []byte{} // "data": "" at the end, never null
			if len(br.chunks) > 0 {
				n := min(len(br.chunks[0]), max(prm.Max, 1))
				data = br.chunks[0][:n]
				if br.chunks[0] = br.chunks[0][n:]; len(br.chunks[0]) == 0 {
					br.chunks = br.chunks[1:]
				}
				r.p.writeLine(flowMessage(protocol.MethodStreamCredit, pk, map[string]any{"bytes": n}))
			}
			eof := br.ended && len(br.chunks) == 0
			if r.mode == "stream-bridge-truncates" && br.reads == 1 {
				eof = true // the rest is dropped
			}
			answer(map[string]any{"data": data, "eof": eof}, 0)
		}()
	case protocol.MethodStreamWrite:
		data := prm.Data
		for len(data) > 0 {
			br.mu.Lock()
			for br.credit <= 0 && !br.cancelled {
				br.mu.Unlock()
				select {
				case <-br.wake:
				case <-time.After(time.Minute):
					answer(nil, protocol.CodeComponentFailed)
					return
				}
				br.mu.Lock()
			}
			if br.cancelled {
				br.mu.Unlock()
				answer(nil, protocol.CodeComponentFailed)
				return
			}
			n := min(int64(len(data)), br.credit, protocol.MaxChunkSize)
			br.credit -= n
			br.mu.Unlock()
			r.p.writeLine(flowMessage(protocol.MethodStreamData, pk, map[string]any{"data": data[:n]}))
			data = data[n:]
		}
		answer(nil, 0)
	default:
		r.p.writeLine(flowMessage(protocol.MethodStreamEnd, pk, nil))
		answer(nil, 0)
	}
}

// serves says whether the relay answers this request from h.
func (r *fixtureRelay) serves(h *fixtureHost, method string, params json.RawMessage) bool {
	if h == r.b && method == protocol.MethodHookRun {
		var p protocol.HookRunParams
		json.Unmarshal(params, &p)
		return p.Communicator != ""
	}
	return h != r.b && strings.HasPrefix(method, "communicator/")
}

func (r *fixtureRelay) request(h *fixtureHost, id json.RawMessage, method string, params json.RawMessage) {
	if h == r.b {
		var p protocol.HookRunParams
		json.Unmarshal(params, &p)
		r.comm = p.Communicator
		r.provision(p.Data)
		h.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": nil})
		return
	}
	r.relayComm(id, method, params)
}

// provision runs the provisioner with a communicator of the fixture's.
func (r *fixtureRelay) provision(data map[string]any) {
	p, cmd, exited, err := launchFixturePlugin(r.mode, r.plugin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixture host: provisioner:", err)
		return
	}
	r.mu.Lock()
	r.p, r.toB, r.toP = p, map[fkey]fkey{}, map[fkey]fkey{}
	r.start, r.held, r.ownWindow, r.bridged = map[fkey]bool{}, map[fkey][]byte{}, map[fkey]bool{}, map[fkey]*fixtureBridge{}
	r.mu.Unlock()
	p.relay = r
	p.initialize()
	prep := p.call(protocol.MethodPrepare, map[string]any{"type": "provisioner", "name": "conformance", "configs": []any{map[string]any{}}}, 5*time.Second)
	var pr protocol.PrepareResult
	json.Unmarshal(prep["result"], &pr)
	p.call(protocol.MethodProvision, map[string]any{"instance": pr.Instance, "communicator": "fc1", "data": data}, time.Minute)
	_, ch := p.startRaw(map[string]any{"jsonrpc": "2.0", "method": protocol.MethodShutdown})
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
	}
	p.stdin.Close()
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		signalGroup(cmd, syscall.SIGKILL)
		<-exited
	}
}

// relayComm passes a provisioner's communicator request to the builder.
func (r *fixtureRelay) relayComm(id json.RawMessage, method string, raw json.RawMessage) {
	var params map[string]any
	json.Unmarshal(raw, &params)
	if params["communicator"] != "fc1" {
		r.p.send(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": protocol.CodeUnknownHandle, "message": "unknown handle"}})
		return
	}
	params["communicator"] = r.comm
	var mine []fkey
	r.mu.Lock()
	for member, sink := range map[string]bool{"source": false, "stdin": false, "sink": true, "stdout": true, "stderr": true} {
		h, _ := params[member].(string)
		if h == "" {
			continue
		}
		r.next++
		pk, bk := fkey{sink: sink, h: h}, fkey{sink: sink, h: "f" + strconv.Itoa(r.next)}
		r.toB[pk], r.toP[bk] = bk, pk
		params[member] = bk.h
		mine = append(mine, pk)
		if r.b.version != r.p.version {
			br := &fixtureBridge{credit: protocol.InitialSinkWindow, wake: make(chan struct{}, 1)}
			r.bridged[pk] = br
			if !sink {
				// The reader of a source speaks first (rule 1).
				r.p.writeLine(flowMessage(protocol.MethodStreamCredit, pk, map[string]any{"bytes": protocol.DefaultStreamWindow}))
			}
		}
		if method == protocol.MethodCommStart {
			r.start[bk] = true
		}
	}
	r.mu.Unlock()
	if r.mode == "stream-data-on-plugin-source" && r.b.version == r.p.version {
		// The fixture sends a byte on the provisioner's source before
		// the credit that starts it: its reader speaks first, with
		// stream/credit (rule 1). A sender ignores data for its own
		// source, so nothing else changes.
		for _, pk := range mine {
			if !pk.sink {
				r.p.writeLine(flowMessage(protocol.MethodStreamData, pk, map[string]any{"data": []byte("x")}))
			}
		}
	}
	_, ch := r.b.start(method, params)
	if r.mode == "stream-eager-credit" && method == protocol.MethodCommStart {
		// Credit for the fixture's stdout sink before the builder wrote
		// to it: the offerer of a sink speaks second (rule 1). The
		// output of cat fits in the initial window, so the byte is never
		// used.
		if out, _ := params["stdout"].(string); out != "" {
			r.b.writeLine(flowMessage(protocol.MethodStreamCredit, fkey{sink: true, h: out}, map[string]any{"bytes": 1}))
		}
	}
	var answer map[string]json.RawMessage
	select {
	case answer = <-ch:
	case <-time.After(time.Minute):
		answer = map[string]json.RawMessage{"error": json.RawMessage(`{"code":-32007,"message":"fixture: the builder never answered"}`)}
	}
	out := map[string]any{"jsonrpc": "2.0", "id": id}
	if e, ok := answer["error"]; ok && r.mode == "stream-cancel-rewrites-answer" {
		// The builder's error, replaced by one of the fixture's own.
		out["error"] = map[string]any{"code": protocol.CodeInternalError, "message": "internal error: fixture: the builder failed"}
	} else if ok {
		out["error"] = e
	} else {
		out["result"] = answer["result"]
	}
	r.p.send(out)
	r.mu.Lock()
	var late [][]byte
	for _, pk := range mine {
		bk := r.toB[pk]
		if l, ok := r.held[bk]; ok {
			late = append(late, l)
		}
		delete(r.toB, pk)
		delete(r.toP, bk)
		delete(r.bridged, pk)
	}
	r.mu.Unlock()
	for _, l := range late {
		r.p.writeLine(l)
	}
}

// flowMessage is a notification of §7.5.2 with its members in the
// canonical order: the stream's member first, data last.
func flowMessage(method string, k fkey, extra map[string]any) []byte {
	member := "source"
	if k.sink {
		member = "sink"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"jsonrpc":"2.0","method":%q,"params":{%q:%q`, method, member, k.h)
	for _, name := range []string{"bytes", "error", "data"} {
		if v, ok := extra[name]; ok {
			enc, _ := json.Marshal(v)
			fmt.Fprintf(&b, ",%q:%s", name, enc)
		}
	}
	b.WriteString("}}")
	return b.Bytes()
}

// notification forwards a notification of §7.5.2 that arrived on from.
func (r *fixtureRelay) notification(from *fixtureHost, method string, line []byte, raw json.RawMessage) {
	var prm struct {
		Source string          `json:"source"`
		Sink   string          `json:"sink"`
		Data   []byte          `json:"data"`
		Bytes  int64           `json:"bytes"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &prm) != nil {
		return
	}
	k := fkey{sink: prm.Sink != "", h: prm.Source + prm.Sink}
	r.mu.Lock()
	defer r.mu.Unlock()
	to, table := r.b, r.toB
	if from == r.b {
		to, table = r.p, r.toP
	}
	if to == nil {
		return
	}
	if br := r.bridged[k]; br != nil && from == r.p {
		br.mu.Lock()
		switch method {
		case protocol.MethodStreamData:
			br.chunks = append(br.chunks, prm.Data)
		case protocol.MethodStreamEnd:
			br.ended = true
		case protocol.MethodStreamCredit:
			br.credit += prm.Bytes
		case protocol.MethodStreamCancel:
			br.cancelled = true
		}
		br.mu.Unlock()
		br.poke()
		return
	}
	dst, ok := table[k]
	if !ok {
		return // a stream nobody relays: dropped, as rule 3 says
	}
	extra := map[string]any{}
	switch method {
	case protocol.MethodStreamData:
		if from == r.p && r.mode == "stream-rejects-noncanonical" && !bytes.Equal(bytes.TrimSpace(line), flowMessage(method, k, map[string]any{"data": prm.Data})) {
			// A reader that only knows the canonical prefix: it
			// refuses the chunk, and aborts the builder's copy.
			from.writeLine(flowMessage(protocol.MethodStreamCancel, k, map[string]any{"error": map[string]any{"code": protocol.CodeInvalidParams, "message": "invalid params: stream/data not in the canonical form"}}))
			to.writeLine(flowMessage(protocol.MethodStreamEnd, dst, map[string]any{"error": map[string]any{"code": protocol.CodeInvalidParams, "message": "invalid params: the provisioner's chunk was refused"}}))
			delete(table, k)
			return
		}
		data := prm.Data
		if r.mode == "stream-corrupts" && from == r.p && r.start[dst] {
			data = bytes.Clone(data)
			data[0] ^= 0xff
		}
		if r.mode == "stream-own-window" && from == r.b && k.sink && !r.ownWindow[k] {
			// The fixture grants the builder a window of its own instead
			// of passing on the provisioner's credit.
			r.ownWindow[k] = true
			from.writeLine(flowMessage(protocol.MethodStreamCredit, k, map[string]any{"bytes": 1 << 30}))
		}
		if r.mode == "stream-empty-chunk" && !r.emptied {
			// A chunk of 0 bytes: within any credit, but a chunk holds
			// 1 to 262144 bytes.
			r.emptied = true
			to.writeLine(flowMessage(method, dst, map[string]any{"data": []byte{}}))
		}
		if r.mode == "stream-reorders-members" {
			member := map[bool]string{true: "sink", false: "source"}[dst.sink]
			to.writeLine(fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"stream/data","params":{"data":%q,%q:%q}}`, encodeB64(data), member, dst.h))
			return
		}
		extra["data"] = data
	case protocol.MethodStreamCredit:
		if r.ownWindow[dst] {
			return
		}
		extra["bytes"] = prm.Bytes
		if r.mode == "stream-zero-credit" {
			// A credit of 0 bytes after each one forwarded: it changes
			// no window, and its params break the schema (bytes ≥ 1).
			to.writeLine(flowMessage(method, dst, extra))
			extra["bytes"] = 0
		}
	case protocol.MethodStreamEnd, protocol.MethodStreamCancel:
		if len(prm.Error) > 0 && !(method == protocol.MethodStreamCancel && r.mode == "stream-cancel-drops-error") {
			extra["error"] = json.RawMessage(prm.Error)
		}
	}
	msg := flowMessage(method, dst, extra)
	switch {
	case method == protocol.MethodStreamEnd && from == r.b && r.mode == "stream-answer-first":
		r.held[k] = msg
		return
	case method == protocol.MethodStreamEnd && from == r.b && r.mode == "stream-double-end":
		to.writeLine(msg)
	}
	to.writeLine(msg)
}

// canonicalPrefix starts every stream/data line in the canonical form.
const canonicalPrefix = `{"jsonrpc":"2.0","method":"stream/data","params":{"`

// forwardCanonical forwards a canonical stream/data line as packer does,
// with the handle rewritten and the payload passed on as it is, when the
// fixture's mode does not look at chunks. It reports whether it did.
func (r *fixtureRelay) forwardCanonical(from *fixtureHost, line []byte) bool {
	switch r.mode {
	case "stream-corrupts", "stream-own-window", "stream-reorders-members", "stream-rejects-noncanonical", "stream-empty-chunk":
		return false
	}
	rest, ok := bytes.CutPrefix(line, []byte(canonicalPrefix))
	if !ok {
		return false
	}
	member, rest, ok := bytes.Cut(rest, []byte(`":"`))
	if !ok || (string(member) != "source" && string(member) != "sink") {
		return false
	}
	handle, tail, ok := bytes.Cut(rest, []byte(`"`))
	if !ok || !bytes.HasPrefix(tail, []byte(`,"data":"`)) {
		return false
	}
	k := fkey{sink: string(member) == "sink", h: string(handle)}
	r.mu.Lock()
	defer r.mu.Unlock()
	to, table := r.b, r.toB
	if from == r.b {
		to, table = r.p, r.toP
	}
	dst, ok := table[k]
	if to == nil || !ok || r.bridged[k] != nil || r.bridged[dst] != nil {
		return false
	}
	out := make([]byte, 0, len(line)+len(dst.h))
	out = append(out, canonicalPrefix...)
	out = append(out, member...)
	out = append(out, `":"`...)
	out = append(out, dst.h...)
	out = append(out, '"')
	out = append(out, bytes.TrimSuffix(tail, []byte("\n"))...)
	to.writeLine(out)
	return true
}

func encodeB64(b []byte) string {
	enc, _ := json.Marshal(b)
	return string(enc[1 : len(enc)-1])
}

// writeLine writes one line as it is.
func (h *fixtureHost) writeLine(b []byte) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.stdin.Write(append(bytes.Clone(b), '\n'))
}
