package conformance

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// The scripted plugins' byte streams. With a [commPlan] in the scenario the
// scripted builder offers communicator [builderComm] in hook/run and serves
// communicator/* on it from an in-memory machine, and the scripted
// provisioner moves bytes through the communicator the host gives it, so
// that the host relays them (SPEC §7.7) and both scripted ends see it send
// and receive streams. Each end speaks the protocol version its session
// chose: version 2 (§7.5.2) pushes stream/data under credit, version 1
// (§7.5.1) pulls with stream/read and stream/write.
//
// The scripted ends are instruments, not model plugins: a receiver keeps
// every chunk it gets, even one beyond its credit, and never cancels for a
// broken rule, so that one mistake of the host fails one check (the judges
// in hoststreams.go read the rules off the logs) instead of stopping the
// transfer that the other checks look at.

// commPlan is what the scripted builder and provisioner do with bytes.
type commPlan struct {
	// Upload is the size of a file the provisioner uploads to
	// [uploadPath] and then downloads back.
	Upload int `json:"upload"`
	// Window is the credit a scripted receiver keeps open per stream
	// (version 2): it starts a source with this much, and tops the window
	// up to it as chunks are consumed. A sink's window starts at the
	// implicit [protocol.InitialSinkWindow] and shrinks to Window.
	Window int `json:"window"`
	// Chunk is the largest chunk a scripted sender sends.
	Chunk int `json:"chunk"`
	// CancelUpload, when not zero, is the size of a second upload, to
	// [cancelPath], that the builder cancels after its first chunk with
	// -32007 (the machine's disk is full), answering the upload -32007.
	CancelUpload int `json:"cancel_upload,omitempty"`
	// Start, when not zero, is the size of the input of a
	// communicator/start of `cat`, whose output comes back in a sink.
	Start int `json:"start,omitempty"`
	// NonCanonical: the provisioner spells the stream/data lines of its
	// upload in forms other than the canonical one (§7.5.2), in turn.
	NonCanonical bool `json:"non_canonical,omitempty"`
}

const (
	// builderComm is the communicator handle the scripted builder offers.
	builderComm = "bc1"
	uploadPath  = "conformance/upload.bin"
	cancelPath  = "conformance/cancel.bin"
	// streamWait bounds how long a scripted stream end waits for the
	// peer's next message.
	streamWait = 20 * time.Second
	// commWait bounds how long the provisioner waits for the answer to a
	// communicator request, and the builder for hook/run's: the check's
	// time limit (twice DefaultHostTimeout for host/stream-transfer) ends
	// a stuck host first.
	commWait = 2 * DefaultHostTimeout
	// endWait is how long the provisioner waits, after its request was
	// answered, for a sink's stream/end that should have come before.
	endWait = 3 * time.Second
)

// diskFull is the builder's error for the cancelled upload.
var diskFull = &wireError{Code: protocol.CodeComponentFailed, Message: "component failed: conformance: the scripted machine's disk is full"}

// transferNote records what one scripted end sent or got for a path.
type transferNote struct {
	// Op: "sent" (provisioner, upload), "stored" (builder, upload),
	// "received" (provisioner, download), "stdout" (provisioner, start),
	// "stdin" (builder, start), "answered" (provisioner: the answer's
	// error code, 0 for a result).
	Op     string `json:"op"`
	Path   string `json:"path"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`
	Code   int64  `json:"code,omitempty"`
	// Ended: a received stream's end arrived (with EndCode when aborted).
	Ended   bool  `json:"ended,omitempty"`
	EndCode int64 `json:"end_code,omitempty"`
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pattern returns n bytes that do not repeat within a chunk.
func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	b := make([]byte, 0, n+8)
	for len(b) < n {
		b = binary.LittleEndian.AppendUint64(b, r.Uint64())
	}
	return b[:n]
}

// skey names a stream in a scripted process's tables, as the notifications
// of §7.5.2 do: a source or a sink handle.
type skey struct {
	sink bool
	h    string
}

func (k skey) ref() protocol.StreamRef {
	if k.sink {
		return protocol.StreamRef{Sink: k.h}
	}
	return protocol.StreamRef{Source: k.h}
}

func (k skey) member() string {
	if k.sink {
		return "sink"
	}
	return "source"
}

// inbox holds the chunks of a stream this process receives.
type inbox struct {
	mu     sync.Mutex
	chunks [][]byte
	ended  bool
	endErr *wireError
	wake   chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// next returns the next chunk, or ok false once the stream has ended and
// every chunk was taken; it fails after streamWait without news.
func (b *inbox) next() (chunk []byte, ok bool, err error) {
	for {
		b.mu.Lock()
		if len(b.chunks) > 0 {
			c := b.chunks[0]
			b.chunks = b.chunks[1:]
			b.mu.Unlock()
			return c, true, nil
		}
		ended := b.ended
		b.mu.Unlock()
		if ended {
			return nil, false, nil
		}
		select {
		case <-b.wake:
		case <-time.After(streamWait):
			return nil, false, fmt.Errorf("no data and no end for %v", streamWait)
		}
	}
}

// outbox holds the credit of a stream this process sends.
type outbox struct {
	mu        sync.Mutex
	credit    int64
	cancelled bool
	released  bool // the request that carried it was answered
	wake      chan struct{}
}

func newOutbox(initial int64) *outbox { return &outbox{credit: initial, wake: make(chan struct{}, 1)} }

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// streamTables are a scripted process's streams.
type streamTables struct {
	mu  sync.Mutex
	in  map[skey]*inbox   // bytes this process receives (v2, and v1 sinks it offered)
	out map[skey]*outbox  // bytes this process sends (v2)
	src map[string][]byte // version 1 sources this process offered, unread part
}

func (t *streamTables) init() {
	t.in, t.out, t.src = map[skey]*inbox{}, map[skey]*outbox{}, map[string][]byte{}
}

// onFlow handles a notification of §7.5.2, parsed by parseNote; data is
// the chunk of a stream/data.
func (p *scripted) onFlow(n *streamNote, data []byte) {
	method, k := n.Method, n.key()
	p.st.mu.Lock()
	in, out := p.st.in[k], p.st.out[k]
	p.st.mu.Unlock()
	switch method {
	case protocol.MethodStreamData, protocol.MethodStreamEnd:
		if in == nil {
			return
		}
		in.mu.Lock()
		if method == protocol.MethodStreamData {
			in.chunks = append(in.chunks, data)
		} else if !in.ended {
			in.ended = true
			if n.Code != 0 {
				in.endErr = &wireError{Code: n.Code}
			}
		}
		in.mu.Unlock()
		in.poke()
	case protocol.MethodStreamCredit, protocol.MethodStreamCancel:
		if out == nil {
			return
		}
		out.mu.Lock()
		if method == protocol.MethodStreamCredit {
			out.credit += n.Bytes
		} else {
			out.cancelled = true
		}
		out.mu.Unlock()
		out.poke()
	}
}

// serveV1 serves stream/read, stream/write and stream/close on the streams
// this process offered in a version 1 session.
func (p *scripted) serveV1(id json.RawMessage, method string, raw json.RawMessage) {
	var prm struct {
		Stream string `json:"stream"`
		Max    int    `json:"max"`
		Data   []byte `json:"data"`
	}
	json.Unmarshal(raw, &prm)
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	switch method {
	case protocol.MethodStreamRead:
		rest, ok := p.st.src[prm.Stream]
		if !ok {
			p.answer(id, nil, errorOf(protocol.CodeUnknownHandle, "unknown handle: no source %q", prm.Stream))
			return
		}
		n := min(len(rest), max(prm.Max, 1), p.sc.Comm.Chunk)
		p.st.src[prm.Stream] = rest[n:]
		p.answer(id, protocol.StreamReadResult{Data: rest[:n], EOF: n == len(rest)}, nil)
	case protocol.MethodStreamWrite, protocol.MethodStreamClose:
		in := p.st.in[skey{sink: true, h: prm.Stream}]
		if in == nil {
			p.answer(id, nil, errorOf(protocol.CodeUnknownHandle, "unknown handle: no sink %q", prm.Stream))
			return
		}
		in.mu.Lock()
		if method == protocol.MethodStreamWrite {
			in.chunks = append(in.chunks, prm.Data)
		} else {
			in.ended = true
		}
		in.mu.Unlock()
		in.poke()
		p.answer(id, nil, nil)
	}
}

func (p *scripted) sessionVersion() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version
}

// grant sends stream/credit.
func (p *scripted) grant(k skey, n int64) {
	p.send(request{JSONRPC: "2.0", Method: protocol.MethodStreamCredit, Params: protocol.StreamCreditParams{StreamRef: k.ref(), Bytes: n}})
}

// receiveV2 receives a stream whose bytes come to this process: a source it
// reads (started with a credit of window) or a sink it offered (started by
// the writer within the implicit window). It returns credit as chunks are
// consumed, keeping window bytes open. stop, if not nil, is asked after
// each chunk and cancels the stream with its error when it says so.
func (p *scripted) receiveV2(k skey, in *inbox, window int, stop func(got int) *wireError) (data []byte, endErr *wireError, err error) {
	allowed := int64(protocol.InitialSinkWindow)
	if !k.sink {
		allowed = int64(window)
		p.grant(k, allowed)
	}
	var got int64
	for {
		c, ok, err := in.next()
		if err != nil || !ok {
			in.mu.Lock()
			endErr = in.endErr
			in.mu.Unlock()
			return data, endErr, err
		}
		data = append(data, c...)
		got += int64(len(c))
		if stop != nil {
			if e := stop(len(data)); e != nil {
				p.send(request{JSONRPC: "2.0", Method: protocol.MethodStreamCancel, Params: protocol.StreamCancelParams{StreamRef: k.ref(), Error: &protocol.Error{Code: e.Code, Message: e.Message}}})
				return data, nil, nil
			}
		}
		if open := allowed - got; open < int64(window) {
			more := int64(window) - max(open, 0)
			allowed += more
			p.grant(k, more)
		}
	}
}

// sendV2 sends data on a stream within the credit granted, in chunks of at
// most chunk bytes spelt by spell, then ends it. It stops when the
// receiver cancels, or when the request the stream belongs to was
// answered (then it aborts with -32006, rule 4).
func (p *scripted) sendV2(k skey, out *outbox, data []byte, chunk int, spell func(i int, k skey, b []byte) []byte) {
	started := k.sink // a source waits for the reader's first credit (rule 1)
	for i := 0; ; i++ {
		out.mu.Lock()
		started = started || out.credit > 0
		for (!started || out.credit <= 0 && len(data) > 0) && !out.cancelled && !out.released {
			out.mu.Unlock()
			select {
			case <-out.wake:
			case <-time.After(streamWait):
				return
			}
			out.mu.Lock()
			started = started || out.credit > 0
		}
		credit, cancelled, released := out.credit, out.cancelled, out.released
		n := min(int64(chunk), credit, int64(len(data)))
		out.credit -= n
		out.mu.Unlock()
		switch {
		case cancelled:
			return
		case released:
			p.send(request{JSONRPC: "2.0", Method: protocol.MethodStreamEnd, Params: protocol.StreamEndParams{StreamRef: k.ref(), Error: &protocol.Error{Code: protocol.CodeCancelled, Message: "request cancelled: answered before the stream ended"}}})
			return
		case len(data) == 0:
			p.send(request{JSONRPC: "2.0", Method: protocol.MethodStreamEnd, Params: protocol.StreamEndParams{StreamRef: k.ref()}})
			return
		}
		note := &streamNote{Method: protocol.MethodStreamData, Sink: k.sink, Handle: k.h, Bytes: n, Canonical: spell == nil}
		if spell == nil {
			p.sendNoted(canonicalData(ref2{sink: k.sink, handle: k.h}, data[:n]), note)
		} else {
			p.sendNoted(spell(i, k, data[:n]), note)
		}
		data = data[n:]
	}
}

// readHostStream reads a source the host offered this builder (version 2:
// under credit; version 1: with stream/read). cancelAfter, when not zero,
// stops after that many bytes: version 2 cancels the stream with
// [diskFull], version 1 closes it.
func (p *scripted) readHostStream(h string, cancelAfter int) ([]byte, *wireError, error) {
	plan := p.sc.Comm
	if p.sessionVersion() >= protocol.VersionFlowStreams {
		k := skey{h: h}
		in := newInbox()
		p.st.mu.Lock()
		p.st.in[k] = in
		p.st.mu.Unlock()
		defer func() {
			p.st.mu.Lock()
			delete(p.st.in, k)
			p.st.mu.Unlock()
		}()
		var stop func(int) *wireError
		if cancelAfter > 0 {
			stop = func(got int) *wireError {
				if got >= cancelAfter {
					return diskFull
				}
				return nil
			}
		}
		return p.receiveV2(k, in, plan.Window, stop)
	}
	var data []byte
	for {
		m := p.callWait(protocol.MethodStreamRead, protocol.StreamReadParams{Stream: h, Max: plan.Chunk}, streamWait)
		if m == nil {
			return data, nil, fmt.Errorf("stream/read %s: no answer", h)
		}
		if m["error"] != nil {
			return data, nil, fmt.Errorf("stream/read %s: %s", h, m["error"])
		}
		var r protocol.StreamReadResult
		json.Unmarshal(m["result"], &r)
		data = append(data, r.Data...)
		if r.EOF {
			return data, nil, nil
		}
		if cancelAfter > 0 && len(data) >= cancelAfter {
			p.callWait(protocol.MethodStreamClose, protocol.StreamCloseParams{Stream: h}, streamWait)
			return data, nil, nil
		}
	}
}

// writeHostStream writes data to a sink the host offered this builder,
// then ends (version 1: closes) it.
func (p *scripted) writeHostStream(h string, data []byte) error {
	plan := p.sc.Comm
	if p.sessionVersion() >= protocol.VersionFlowStreams {
		k := skey{sink: true, h: h}
		out := newOutbox(protocol.InitialSinkWindow)
		p.st.mu.Lock()
		p.st.out[k] = out
		p.st.mu.Unlock()
		p.sendV2(k, out, data, plan.Chunk, nil)
		p.st.mu.Lock()
		delete(p.st.out, k)
		p.st.mu.Unlock()
		return nil
	}
	for len(data) > 0 {
		n := min(len(data), plan.Chunk)
		if m := p.callWait(protocol.MethodStreamWrite, protocol.StreamWriteParams{Stream: h, Data: data[:n]}, streamWait); m == nil || m["error"] != nil {
			return fmt.Errorf("stream/write %s failed", h)
		}
		data = data[n:]
	}
	if m := p.callWait(protocol.MethodStreamClose, protocol.StreamCloseParams{Stream: h}, streamWait); m == nil || m["error"] != nil {
		return fmt.Errorf("stream/close %s failed", h)
	}
	return nil
}

// serveBuilderComm answers communicator/* on the builder's communicator,
// whose machine is a map of paths to contents.
func (p *scripted) serveBuilderComm(id json.RawMessage, method string, raw json.RawMessage) {
	var prm struct {
		Communicator string `json:"communicator"`
		Path         string `json:"path"`
		Source       string `json:"source"`
		Sink         string `json:"sink"`
		Command      string `json:"command"`
		Stdin        string `json:"stdin"`
		Stdout       string `json:"stdout"`
	}
	json.Unmarshal(raw, &prm)
	if prm.Communicator != builderComm || p.sc.Comm == nil {
		p.answer(id, nil, errorOf(protocol.CodeUnknownHandle, "unknown handle: no communicator %q", prm.Communicator))
		return
	}
	failed := func(err error) *wireError {
		return errorOf(protocol.CodeComponentFailed, "component failed: %s: %v", method, err)
	}
	switch method {
	case protocol.MethodCommUpload:
		cancelAfter := 0
		if prm.Path == cancelPath {
			cancelAfter = 1
		}
		data, endErr, err := p.readHostStream(prm.Source, cancelAfter)
		switch {
		case cancelAfter > 0:
			p.answer(id, nil, diskFull)
			return
		case err != nil:
			p.answer(id, nil, failed(err))
			return
		case endErr != nil:
			p.answer(id, nil, failed(fmt.Errorf("the source was aborted: %d %s", endErr.Code, endErr.Message)))
			return
		}
		p.mu.Lock()
		p.machine[prm.Path] = data
		p.mu.Unlock()
		p.record(event{Kind: "transfer", Transfer: &transferNote{Op: "stored", Path: prm.Path, Bytes: len(data), SHA256: digest(data)}})
		p.answer(id, nil, nil)
	case protocol.MethodCommDownload:
		p.mu.Lock()
		data, ok := p.machine[prm.Path]
		p.mu.Unlock()
		if !ok {
			p.answer(id, nil, failed(fmt.Errorf("no file %q", prm.Path)))
			return
		}
		if err := p.writeHostStream(prm.Sink, data); err != nil {
			p.answer(id, nil, failed(err))
			return
		}
		p.answer(id, nil, nil)
	case protocol.MethodCommStart:
		// The machine's shell knows one command, cat.
		var in []byte
		if prm.Stdin != "" {
			var err error
			in, _, err = p.readHostStream(prm.Stdin, 0)
			if err != nil {
				p.answer(id, nil, failed(err))
				return
			}
		}
		p.record(event{Kind: "transfer", Transfer: &transferNote{Op: "stdin", Path: prm.Command, Bytes: len(in), SHA256: digest(in)}})
		if prm.Stdout != "" {
			if err := p.writeHostStream(prm.Stdout, in); err != nil {
				p.answer(id, nil, failed(err))
				return
			}
		}
		p.answer(id, protocol.CommStartResult{ExitStatus: 0}, nil)
	default:
		p.answer(id, nil, errorOf(protocol.CodeUnsupported, "unsupported: the scripted communicator does not serve %s", method))
	}
}

// offer mints a stream handle for one of the provisioner's requests and
// sets it up for the session's version: a source with data to send, or a
// sink (data nil) to receive. The returned finish, called once the
// request is answered, waits for the stream's end and returns what a
// sink received.
func (p *scripted) offer(sink bool, data []byte, spell func(int, skey, []byte) []byte) (h string, finish func() ([]byte, *transferNote)) {
	p.mu.Lock()
	p.next++
	h = "ps" + strconv.FormatInt(p.next, 10)
	p.mu.Unlock()
	k := skey{sink: sink, h: h}
	plan := p.sc.Comm
	v2 := p.sessionVersion() >= protocol.VersionFlowStreams
	switch {
	case !sink && !v2:
		p.st.mu.Lock()
		p.st.src[h] = data
		p.st.mu.Unlock()
		return h, func() ([]byte, *transferNote) {
			p.st.mu.Lock()
			delete(p.st.src, h)
			p.st.mu.Unlock()
			return nil, nil
		}
	case !sink:
		out := newOutbox(0)
		p.st.mu.Lock()
		p.st.out[k] = out
		p.st.mu.Unlock()
		done := make(chan struct{})
		go func() { defer close(done); p.sendV2(k, out, data, plan.Chunk, spell) }()
		return h, func() ([]byte, *transferNote) {
			out.mu.Lock()
			out.released = true
			out.mu.Unlock()
			out.poke()
			<-done
			p.st.mu.Lock()
			delete(p.st.out, k)
			p.st.mu.Unlock()
			return nil, nil
		}
	}
	in := newInbox()
	p.st.mu.Lock()
	p.st.in[k] = in
	p.st.mu.Unlock()
	type got struct {
		data   []byte
		endErr *wireError
	}
	res := make(chan got, 1)
	if v2 {
		go func() {
			d, e, _ := p.receiveV2(k, in, plan.Window, nil)
			res <- got{d, e}
		}()
	}
	return h, func() ([]byte, *transferNote) {
		var g got
		if v2 {
			select {
			case g = <-res:
			case <-time.After(endWait):
				in.mu.Lock()
				in.ended = true // stop the receiver: the end never came
				in.mu.Unlock()
				in.poke()
				g = <-res
				g.endErr = nil
				p.st.mu.Lock()
				delete(p.st.in, k)
				p.st.mu.Unlock()
				return g.data, &transferNote{Bytes: len(g.data), SHA256: digest(g.data)}
			}
		} else {
			in.mu.Lock()
			for _, c := range in.chunks {
				g.data = append(g.data, c...)
			}
			in.mu.Unlock()
		}
		in.mu.Lock()
		ended := in.ended
		in.mu.Unlock()
		p.st.mu.Lock()
		delete(p.st.in, k)
		p.st.mu.Unlock()
		n := &transferNote{Bytes: len(g.data), SHA256: digest(g.data), Ended: ended}
		if g.endErr != nil {
			n.EndCode = g.endErr.Code
		}
		return g.data, n
	}
}

// answerCode is the error code of an answer, 0 for a result, -1 for none.
func answerCode(m map[string]json.RawMessage) int64 {
	if m == nil {
		return -1
	}
	if e := m["error"]; e != nil && string(e) != "null" {
		var we wireError
		json.Unmarshal(e, &we)
		return we.Code
	}
	return 0
}

// provisionComm moves the plan's bytes through the host's communicator
// comm, one request at a time, and logs what each end had.
func (p *scripted) provisionComm(comm string) {
	plan := p.sc.Comm
	answered := func(path string, m map[string]json.RawMessage) {
		p.record(event{Kind: "transfer", Transfer: &transferNote{Op: "answered", Path: path, Code: answerCode(m)}})
	}
	if plan.Upload > 0 {
		content := pattern(plan.Upload, 1)
		var spell func(int, skey, []byte) []byte
		if plan.NonCanonical {
			spell = func(i int, k skey, b []byte) []byte { return spellNonCanonical(i, k.member(), k.h, b) }
		}
		src, finish := p.offer(false, content, spell)
		p.record(event{Kind: "transfer", Transfer: &transferNote{Op: "sent", Path: uploadPath, Bytes: len(content), SHA256: digest(content)}})
		m := p.callWait(protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: uploadPath, Source: src, Mode: 0o644, Size: int64(len(content))}, commWait)
		finish()
		answered(uploadPath, m)

		sink, finish := p.offer(true, nil, nil)
		m = p.callWait(protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: comm, Path: uploadPath, Sink: sink}, commWait)
		_, n := finish()
		n.Op, n.Path = "received", uploadPath
		p.record(event{Kind: "transfer", Transfer: n})
		answered("download "+uploadPath, m)
	}
	if plan.CancelUpload > 0 {
		content := pattern(plan.CancelUpload, 2)
		src, finish := p.offer(false, content, nil)
		m := p.callWait(protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: cancelPath, Source: src, Mode: 0o644, Size: int64(len(content))}, commWait)
		finish()
		answered(cancelPath, m)
	}
	if plan.Start > 0 {
		content := pattern(plan.Start, 3)
		in, finishIn := p.offer(false, content, nil)
		out, finishOut := p.offer(true, nil, nil)
		p.record(event{Kind: "transfer", Transfer: &transferNote{Op: "sent", Path: "cat", Bytes: len(content), SHA256: digest(content)}})
		m := p.callWait(protocol.MethodCommStart, protocol.CommStartParams{Communicator: comm, Command: "cat", Stdin: in, Stdout: out}, commWait)
		finishIn()
		_, n := finishOut()
		n.Op, n.Path = "stdout", "cat"
		p.record(event{Kind: "transfer", Transfer: n})
		answered("cat", m)
	}
}
