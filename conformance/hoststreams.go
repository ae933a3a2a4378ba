package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

// streamNote is what a scripted plugin's log keeps of a notification of
// §7.5.2, read from the whole line when it was received or sent: the log
// cuts long lines, and the judges need the decoded size of every chunk.
type streamNote struct {
	Method string `json:"method"`
	Sink   bool   `json:"sink,omitempty"`
	Handle string `json:"handle"`
	// Bytes: decoded bytes of stream/data, or the credit of stream/credit.
	Bytes int64 `json:"bytes,omitempty"`
	// Code is the error code of stream/end or stream/cancel, 0 for none.
	Code int64 `json:"code,omitempty"`
	// Canonical: stream/data written exactly in the canonical form.
	Canonical bool `json:"canonical,omitempty"`
	// Bad says why the line is not a valid notification of its method
	// (both or neither of source and sink, an undecodable payload).
	Bad string `json:"bad,omitempty"`
}

func (n *streamNote) key() skey { return skey{sink: n.Sink, h: n.Handle} }

// parseCanonicalData decodes a stream/data line in the canonical form
// straight from its bytes, as §7.5.2 allows a receiver to; ok is false for
// any other line, which parseNote then decodes as JSON.
func parseCanonicalData(line []byte) (n *streamNote, data []byte, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	const prefix = `{"jsonrpc":"2.0","method":"stream/data","params":{"`
	rest, found := bytes.CutPrefix(line, []byte(prefix))
	if !found {
		return nil, nil, false
	}
	n = &streamNote{Method: protocol.MethodStreamData, Canonical: true}
	switch {
	case bytes.HasPrefix(rest, []byte(`source":"`)):
		rest = rest[len(`source":"`):]
	case bytes.HasPrefix(rest, []byte(`sink":"`)):
		n.Sink, rest = true, rest[len(`sink":"`):]
	default:
		return nil, nil, false
	}
	handle, payload, found := bytes.Cut(rest, []byte(`","data":"`))
	if !found || len(handle) == 0 || bytes.ContainsAny(handle, "\\\"") {
		return nil, nil, false
	}
	for _, c := range handle {
		if c < 0x20 || c > 0x7e {
			return nil, nil, false
		}
	}
	payload, found = bytes.CutSuffix(payload, []byte(`"}}`))
	if !found {
		return nil, nil, false
	}
	data = make([]byte, base64.StdEncoding.DecodedLen(len(payload)))
	k, err := base64.StdEncoding.Strict().Decode(data, payload)
	if err != nil {
		return nil, nil, false
	}
	n.Handle, n.Bytes = string(handle), int64(k)
	return n, data[:k], true
}

// parseNote describes line when it is a notification of §7.5.2, and
// returns the chunk of a stream/data; nil if it is not one.
func parseNote(line []byte) (*streamNote, []byte) {
	if n, data, ok := parseCanonicalData(line); ok {
		return n, data
	}
	if !bytes.Contains(line, []byte(`stream/`)) {
		return nil, nil
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Source *string `json:"source"`
			Sink   *string `json:"sink"`
			Data   []byte  `json:"data"`
			Bytes  int64   `json:"bytes"`
			Error  *struct {
				Code int64 `json:"code"`
			} `json:"error"`
		} `json:"params"`
	}
	err := json.Unmarshal(line, &m)
	switch m.Method {
	case protocol.MethodStreamData, protocol.MethodStreamCredit, protocol.MethodStreamEnd, protocol.MethodStreamCancel:
	default:
		return nil, nil
	}
	if m.ID != nil {
		return nil, nil
	}
	n := &streamNote{Method: m.Method}
	switch {
	case err != nil:
		n.Bad = err.Error()
	case (m.Params.Source == nil) == (m.Params.Sink == nil):
		n.Bad = "names neither or both of source and sink"
	case m.Params.Sink != nil:
		n.Sink, n.Handle = true, *m.Params.Sink
	default:
		n.Handle = *m.Params.Source
	}
	switch m.Method {
	case protocol.MethodStreamData:
		n.Bytes = int64(len(m.Params.Data))
		// The one spelling of the canonical form is stream2.go's.
		n.Canonical = bytes.Equal(bytes.TrimSuffix(line, []byte("\n")), canonicalData(ref2{sink: n.Sink, handle: n.Handle}, m.Params.Data))
	case protocol.MethodStreamCredit:
		n.Bytes = m.Params.Bytes
	default:
		if m.Params.Error != nil {
			n.Code = m.Params.Error.Code
		}
	}
	return n, m.Params.Data
}

// The stream checks run the scripted builder and provisioner with a
// [commPlan]: the provisioner uploads a file through the communicator the
// host gave it, downloads it back, has an upload cancelled by the builder
// and runs `cat` with stdin and stdout, and the host relays each request
// and its streams to the builder's communicator (§7.7). The judges read the
// rules of §7.5.2 off both processes' logs: on the provisioner's
// connection the host receives the provisioner's sources and writes its
// sinks; on the builder's it offers streams of its own.

// hostStreamPlan is the scenario of most stream checks: a transfer bigger than
// a sink's initial window, received with a window of 4 KiB.
var hostStreamPlan = commPlan{Upload: 300<<10 + 7, Window: 4 << 10, Chunk: 64 << 10, CancelUpload: 64 << 10, Start: 20<<10 + 3}

var streamScenario = scenario{Run: "build", MaxMessageSize: protocol.DefaultMaxMessageSize, Comm: &hostStreamPlan}

// transferScenario moves a few MiB, more than any window, each way.
var transferScenario = scenario{Run: "build", MaxMessageSize: protocol.DefaultMaxMessageSize,
	Comm: &commPlan{Upload: 3<<20 + 5, Window: 64 << 10, Chunk: 128 << 10, Start: 100 << 10}}

// nonCanonicalScenario spells the provisioner's chunks in other forms.
var nonCanonicalScenario = scenario{Run: "build", MaxMessageSize: protocol.DefaultMaxMessageSize,
	Comm: &commPlan{Upload: 64<<10 + 1, Window: 4 << 10, Chunk: 4 << 10, NonCanonical: true}}

// mixScenario has the first scripted process speak only version 1, so
// that the relay joins a version 1 connection to a version 2 one.
var mixScenario = scenario{Run: "build", MaxMessageSize: protocol.DefaultMaxMessageSize, MixVersions: true,
	Comm: &commPlan{Upload: 300<<10 + 7, Window: 4 << 10, Chunk: 64 << 10, Start: 20<<10 + 3}}

var streamHostChecks = []hostCheck{
	{Check: Check{ID: "host/stream-first-message", Section: "§7.5.2", Level: Must, Title: "version 2: the side that did not offer a stream speaks first: the host starts a plugin's source with stream/credit, and sends no data on its own source before the plugin's credit nor credit for its own sink before the plugin's first data"},
		sc: streamScenario, judge: judgeStreamFirst},
	{Check: Check{ID: "host/stream-credit", Section: "§7.5.2", Level: Must, Title: "version 2: the host never sends a chunk larger than the credit left (a plugin's sink starts with 262144 bytes, then the plugin keeps a 4 KiB window), nor one of 0 or over 262144 bytes"},
		sc: streamScenario, judge: judgeStreamCredit},
	{Check: Check{ID: "host/stream-end", Section: "§7.5.2", Level: Must, Title: "version 2: the host ends every stream it sends with stream/end exactly once (at most once when the receiver cancelled), and sends nothing on it after"},
		sc: streamScenario, judge: judgeStreamEnd},
	{Check: Check{ID: "host/stream-finish-before-answer", Section: "§7.5.2", Level: Must, Title: "version 2: before the host answers a provisioner's communicator request, each of its sources has ended or been cancelled, and each of its sinks has got stream/end (or was cancelled by the provisioner)"},
		sc: streamScenario, judge: judgeStreamFinish},
	{Check: Check{ID: "host/stream-cancel", Section: "§7.5.2", Level: Must, Title: "version 2: when the builder cancels the host's source mid-upload with -32007, the provisioner's source gets stream/cancel with -32007, and its upload is answered with the builder's -32007"},
		sc: streamScenario, judge: judgeStreamCancel},
	{Check: Check{ID: "host/stream-transfer", Section: "§7.7", Level: Must, Title: "a 3 MiB upload relayed from provisioner to builder, its download back and a `cat` through communicator/start arrive intact (SHA-256 end to end), in either protocol version"},
		sc: transferScenario, timeScale: 2, judge: judgeStreamTransfer},
	{Check: Check{ID: "host/stream-version-mix", Section: "§7.7", Level: Must, Title: "offered [2, 1], a plugin that speaks only version 1 picks it, and the relay between its connection and a version 2 one still moves an upload, its download and a `cat` intact"},
		sc: mixScenario, judge: judgeStreamVersionMix},
	{Check: Check{ID: "host/stream-noncanonical-accepted", Section: "§7.5.2", Level: Must, Title: "version 2: stream/data in valid but not canonical spellings (members reordered, \\/ in the payload, whitespace, params first) is accepted: the upload arrives intact and is not cancelled"},
		sc: nonCanonicalScenario, judge: judgeStreamNonCanonical},
	{Check: Check{ID: "host/stream-canonical", Section: "§7.5.2", Level: Should, Title: "version 2: every stream/data the host writes is in the canonical form"},
		sc: streamScenario, judge: judgeStreamCanonical},
}

// conn is one scripted process's connection, as the stream judges see it.
type conn struct {
	pid     int
	role    string // "builder" or "provisioner"
	version int    // the version the process chose in initialize
	evs     []event
	reqs    []*commReq
}

// commReq is a communicator request on a connection, with the streams it
// offered (by the host on the builder's connection, by the plugin on the
// provisioner's).
type commReq struct {
	method, path string
	id           string
	streams      []skey
	at, answerAt int // event indexes; answerAt is -1 when unanswered
	answer       *message
}

// conns finds the scripted builder and provisioner of a stream check. With
// v2 it skips when either connection is not version 2.
func (h *hostRun) conns(v2 bool) (b, p *conn, err error) {
	pids, err := h.processes()
	if err != nil {
		return nil, nil, err
	}
	var offered []int
	for _, pid := range pids {
		c := &conn{pid: pid, evs: h.procs[pid]}
		for _, e := range c.evs {
			if e.Kind == "recv" && len(e.Line) == e.Size {
				m, err := parseMessage([]byte(e.Line))
				if err != nil || !m.isRequest() {
					continue
				}
				switch m.method {
				case protocol.MethodInitialize:
					var ip protocol.InitializeParams
					json.Unmarshal(m.Params, &ip)
					offered = ip.ProtocolVersions
				case protocol.MethodBuilderRun:
					c.role = "builder"
				case protocol.MethodProvision:
					var pp protocol.ProvisionParams
					json.Unmarshal(m.Params, &pp)
					if pp.Communicator != "" {
						c.role = "provisioner"
					}
				}
			}
			if e.Kind == "send" && strings.Contains(e.Line, `"protocol_version"`) {
				var r struct {
					Result protocol.InitializeResult `json:"result"`
				}
				json.Unmarshal([]byte(e.Line), &r)
				c.version = r.Result.ProtocolVersion
			}
		}
		c.reqs = c.commRequests()
		switch c.role {
		case "builder":
			b = c
		case "provisioner":
			p = c
		}
	}
	switch {
	case b == nil:
		return nil, nil, failf("the scripted builder never got builder/run: the host must prepare and run builder \"conformance\"")
	case p == nil:
		return nil, nil, failf("no provisioner/provision with a communicator: when the builder offers communicator %q in hook/run, the host runs provisioner \"conformance\" with a communicator that reaches it (§7.3, §7.7)", builderComm)
	case v2 && !slices.Contains(offered, protocol.VersionFlowStreams):
		return nil, nil, skipf("not applicable: the host offers protocol versions %v; version 2's streams (§7.5.2) apply to hosts that offer 2", offered)
	case v2 && (b.version < protocol.VersionFlowStreams || p.version < protocol.VersionFlowStreams):
		return nil, nil, skipf("not applicable: the builder's session uses version %d and the provisioner's %d; this check is about version 2", b.version, p.version)
	}
	return b, p, nil
}

// commRequests lists the communicator requests on c: those the plugin sent
// (a provisioner) or received (a builder), with their answers.
func (c *conn) commRequests() []*commReq {
	var out []*commReq
	open := map[string]*commReq{}
	for i, e := range c.evs {
		if len(e.Line) != e.Size || e.Stream != nil {
			continue
		}
		m, err := parseMessage([]byte(e.Line))
		if err != nil {
			continue
		}
		plugins := e.Kind == "send" // the plugin's own request, or its answer
		switch {
		case m.isRequest() && strings.HasPrefix(m.method, "communicator/"):
			var prm struct {
				Path, Source, Sink, Stdin, Stdout, Stderr string
			}
			json.Unmarshal(m.Params, &prm)
			r := &commReq{method: m.method, path: prm.Path, id: e.Kind + m.idKey(), at: i, answerAt: -1}
			for _, h := range []string{prm.Source, prm.Stdin} {
				if h != "" {
					r.streams = append(r.streams, skey{h: h})
				}
			}
			for _, h := range []string{prm.Sink, prm.Stdout, prm.Stderr} {
				if h != "" {
					r.streams = append(r.streams, skey{sink: true, h: h})
				}
			}
			if r.method == protocol.MethodCommStart {
				r.path = "cat"
			}
			out = append(out, r)
			open[r.id] = r
		case m.isResponse():
			// An answer travels the other way from its request.
			kind := "send"
			if plugins {
				kind = "recv"
			}
			if r := open[kind+m.idKey()]; r != nil && r.answerAt < 0 {
				r.answerAt, r.answer = i, m
			}
		}
	}
	return out
}

// hostOffers says whether the host offered the streams of c's requests.
func (c *conn) hostOffers() bool { return c.role == "builder" }

// notes returns the stream notes naming k from event index from on, up to
// the next request that offers k again, each with whether the host sent it.
func (c *conn) notes(k skey, from int) (out []noteAt) {
	for i := from + 1; i < len(c.evs); i++ {
		e := c.evs[i]
		for _, r := range c.reqs {
			if r.at == i && slices.Contains(r.streams, k) {
				return out
			}
		}
		if e.Stream != nil && e.Stream.key() == k {
			out = append(out, noteAt{streamNote: e.Stream, i: i, host: e.Kind == "recv"})
		}
	}
	return out
}

type noteAt struct {
	*streamNote
	i    int
	host bool // the host sent it
}

// hostSends says whether the host is the sender of stream k on c: it
// writes the plugin's sinks and sends the sources it offered itself.
func (c *conn) hostSends(k skey) bool { return k.sink != c.hostOffers() }

func (c *conn) name() string { return fmt.Sprintf("%s (process %d)", c.role, c.pid) }

// eachStream calls f for every stream of every communicator request on the
// provisioner's and the builder's connections of a stream run.
func (h *hostRun) eachStream(f func(c *conn, r *commReq, k skey) error) error {
	b, p, err := h.conns(true)
	if err != nil {
		return err
	}
	for _, c := range []*conn{p, b} {
		for _, r := range c.reqs {
			for _, k := range r.streams {
				if err := f(c, r, k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func judgeStreamFirst(h *hostRun) error {
	return h.eachStream(func(c *conn, r *commReq, k skey) error {
		ns := c.notes(k, r.at)
		switch {
		case !c.hostOffers() && !k.sink:
			// The plugin's source: the host reads it and speaks first.
			// A reader that gives up before reading (rule 5) may cancel
			// it without crediting it first.
			if len(ns) > 0 && (!ns[0].host || (ns[0].Method != protocol.MethodStreamCredit && ns[0].Method != protocol.MethodStreamCancel)) {
				who := "the host"
				if !ns[0].host {
					who = "the plugin"
				}
				return failf("%s: %s of %s: the first message naming %s %s is %s from %s; the host (its reader) starts it with stream/credit (or gives it up with stream/cancel)", c.name(), r.method, r.path, k.member(), k.h, ns[0].Method, who)
			}
		case c.hostOffers():
			// The host's own stream: the plugin speaks first.
			for _, n := range ns {
				if !n.host {
					break
				}
				return failf("%s: %s of %s: the host sent %s on its own %s %s before the builder sent anything on it (rule 1: the side that did not offer a stream speaks first)", c.name(), r.method, r.path, n.Method, k.member(), k.h)
			}
		}
		return nil
	})
}

func judgeStreamCredit(h *hostRun) error {
	return h.eachStream(func(c *conn, r *commReq, k skey) error {
		if !c.hostSends(k) {
			return nil
		}
		var allowed, sent int64
		if k.sink {
			allowed = protocol.InitialSinkWindow
		}
		for _, n := range c.notes(k, r.at) {
			switch {
			case !n.host && n.Method == protocol.MethodStreamCredit:
				allowed += n.Bytes
			case n.host && n.Method == protocol.MethodStreamData:
				if n.Bytes < 1 || n.Bytes > protocol.MaxChunkSize {
					return failf("%s: %s of %s: a chunk of %d bytes on %s %s; a chunk holds 1 to %d", c.name(), r.method, r.path, n.Bytes, k.member(), k.h, protocol.MaxChunkSize)
				}
				if sent+n.Bytes > allowed {
					return failf("%s: %s of %s: the host sent a chunk of %d bytes on %s %s with %d bytes of credit left (%d granted, %d sent)", c.name(), r.method, r.path, n.Bytes, k.member(), k.h, allowed-sent, allowed, sent)
				}
				sent += n.Bytes
			}
		}
		return nil
	})
}

func judgeStreamEnd(h *hostRun) error {
	return h.eachStream(func(c *conn, r *commReq, k skey) error {
		if !c.hostSends(k) {
			return nil
		}
		ends, cancelled := 0, false
		for _, n := range c.notes(k, r.at) {
			switch {
			case !n.host && n.Method == protocol.MethodStreamCancel:
				cancelled = true
			case n.host && ends > 0:
				return failf("%s: %s of %s: the host sent %s on %s %s after its stream/end (rule 3: stream/end is the last message, exactly once)", c.name(), r.method, r.path, n.Method, k.member(), k.h)
			case n.host && n.Method == protocol.MethodStreamEnd:
				ends++
			}
		}
		if ends == 0 && !cancelled {
			return failf("%s: %s of %s: the host never sent stream/end on %s %s", c.name(), r.method, r.path, k.member(), k.h)
		}
		return nil
	})
}

func judgeStreamFinish(h *hostRun) error {
	_, p, err := h.conns(true)
	if err != nil {
		return err
	}
	for _, r := range p.reqs {
		if r.answerAt < 0 {
			return failf("%s: %s of %s was never answered", p.name(), r.method, r.path)
		}
		for _, k := range r.streams {
			done := false
			for _, n := range p.notes(k, r.at) {
				if n.i > r.answerAt {
					break
				}
				if k.sink {
					done = done || n.host && n.Method == protocol.MethodStreamEnd || !n.host && n.Method == protocol.MethodStreamCancel
				} else {
					done = done || !n.host && n.Method == protocol.MethodStreamEnd || n.host && n.Method == protocol.MethodStreamCancel
				}
			}
			if !done {
				want := "the provisioner's stream/end or the host's stream/cancel"
				if k.sink {
					want = "the host's stream/end"
				}
				return failf("%s: %s of %s was answered before %s for %s %s (rule 5: the receiver of a request finishes its streams before it answers)", p.name(), r.method, r.path, want, k.member(), k.h)
			}
		}
	}
	return nil
}

func judgeStreamCancel(h *hostRun) error {
	_, p, err := h.conns(true)
	if err != nil {
		return err
	}
	for _, r := range p.reqs {
		if r.path != cancelPath || r.method != protocol.MethodCommUpload {
			continue
		}
		if r.answerAt < 0 {
			return failf("%s: the upload of %s, which the builder cancels, was never answered", p.name(), cancelPath)
		}
		k := r.streams[0]
		var cancel *noteAt
		for _, n := range p.notes(k, r.at) {
			switch {
			case n.host && n.Method == protocol.MethodStreamCancel && cancel == nil:
				cancel = &n
				if n.Code != diskFull.Code || n.i > r.answerAt {
					return failf("%s: the builder cancelled its source for %s with %d; the provisioner's source %s got stream/cancel with error code %d%s, want %d before the answer (§7.7: the cancel is forwarded with only the handle rewritten)", p.name(), cancelPath, diskFull.Code, k.h, n.Code, map[bool]string{true: " after the answer", false: ""}[n.i > r.answerAt], diskFull.Code)
				}
			}
		}
		if cancel == nil {
			return failf("%s: the builder cancelled the host's source for %s with %d, and the provisioner's source %s never got stream/cancel (rule 4: the sender must learn to stop)", p.name(), cancelPath, diskFull.Code, k.h)
		}
		if e := r.answer.wireErr(); e == nil || e.Code != diskFull.Code {
			return failf("%s: the upload of %s was answered %s; the builder answered error %d, which the host passes on unchanged (§7.7)", p.name(), cancelPath, r.answer.describe(), diskFull.Code)
		}
		return nil
	}
	return failf("%s: never sent the upload of %s: it did not get the host's credit for its earlier streams", p.name(), cancelPath)
}

// transfers returns the transfer notes of a process, by op and path.
func (c *conn) transfers() map[string]*transferNote {
	out := map[string]*transferNote{}
	for _, e := range c.evs {
		if e.Transfer != nil {
			out[e.Transfer.Op+" "+e.Transfer.Path] = e.Transfer
		}
	}
	return out
}

// intact compares what the provisioner sent with what the builder stored,
// what came back, and what `cat` printed.
func intact(b, p *conn, plan *commPlan) error {
	bt, pt := b.transfers(), p.transfers()
	sent, stored, back := pt["sent "+uploadPath], bt["stored "+uploadPath], pt["received "+uploadPath]
	describe := func(n *transferNote) string {
		if n == nil {
			return "nothing"
		}
		return fmt.Sprintf("%d bytes, SHA-256 %.12s…", n.Bytes, n.SHA256)
	}
	answered := func(what string) error {
		switch n := pt["answered "+what]; {
		case n == nil:
			return failf("%s: never got to %s: an earlier request was not answered in time", p.name(), what)
		case n.Code == -1:
			return failf("%s: %s got no answer", p.name(), what)
		case n.Code != 0:
			return failf("%s: %s was answered with error %d", p.name(), what, n.Code)
		}
		return nil
	}
	if plan.Upload > 0 {
		if err := answered(uploadPath); err != nil {
			return err
		}
		if err := answered("download " + uploadPath); err != nil {
			return err
		}
		if stored == nil || stored.SHA256 != sent.SHA256 {
			return failf("the provisioner uploaded %s (%s); the builder's machine stored %s", uploadPath, describe(sent), describe(stored))
		}
		if back == nil || back.SHA256 != sent.SHA256 || !back.Ended || back.EndCode != 0 {
			return failf("the provisioner downloaded %s back and got %s (ended: %v, end error %d); it holds %s", uploadPath, describe(back), back != nil && back.Ended, map[bool]int64{true: back.EndCode, false: 0}[back != nil], describe(sent))
		}
	}
	if plan.Start > 0 {
		if err := answered("cat"); err != nil {
			return err
		}
		in, out := pt["sent cat"], pt["stdout cat"]
		if out == nil || out.SHA256 != in.SHA256 {
			return failf("`cat` through communicator/start: stdin %s, stdout %s", describe(in), describe(out))
		}
	}
	return nil
}

func judgeStreamTransfer(h *hostRun) error {
	b, p, err := h.conns(false)
	if err != nil {
		return err
	}
	h.tr.notef("builder session version %d, provisioner session version %d", b.version, p.version)
	return intact(b, p, transferScenario.Comm)
}

func judgeStreamNonCanonical(h *hostRun) error {
	b, p, err := h.conns(true)
	if err != nil {
		return err
	}
	for _, r := range p.reqs {
		for _, k := range r.streams {
			for _, n := range p.notes(k, r.at) {
				if n.host && n.Method == protocol.MethodStreamCancel {
					return failf("%s: the host cancelled source %s (error %d) whose chunks are valid but not canonical", p.name(), k.h, n.Code)
				}
			}
		}
	}
	return intact(b, p, nonCanonicalScenario.Comm)
}

func judgeStreamCanonical(h *hostRun) error {
	b, p, err := h.conns(true)
	if err != nil {
		return err
	}
	for _, c := range []*conn{p, b} {
		for _, e := range c.evs {
			if e.Kind == "recv" && e.Stream != nil && e.Stream.Method == protocol.MethodStreamData && !e.Stream.Canonical {
				return failf("%s received stream/data not in the canonical form: %.200s", c.name(), e.Line)
			}
		}
	}
	return nil
}

func judgeStreamVersionMix(h *hostRun) error {
	b, p, err := h.conns(false)
	if err != nil {
		return err
	}
	var offered []int
	for _, m := range h.received(b.pid) {
		if m.method == protocol.MethodInitialize && m.isRequest() {
			var ip protocol.InitializeParams
			json.Unmarshal(m.Params, &ip)
			offered = ip.ProtocolVersions
		}
	}
	if !slices.Contains(offered, protocol.VersionFlowStreams) || !slices.Contains(offered, 1) {
		return skipf("not applicable: the host offers protocol versions %v; a relay across versions needs a host that offers 2 and 1", offered)
	}
	h.tr.notef("builder session version %d, provisioner session version %d", b.version, p.version)
	if b.version == p.version {
		return failf("the builder's and the provisioner's sessions both use version %d, though the first scripted process to answer initialize speaks only version 1: the host must start each plugin with its own handshake (§5.2)", b.version)
	}
	return intact(b, p, mixScenario.Comm)
}
