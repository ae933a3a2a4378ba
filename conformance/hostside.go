package conformance

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// askAnswer is what the runner answers to every ui/ask.
const askAnswer = "conformance"

// hostSide answers the plugin's callbacks the way a simple host does:
//
//   - ui/say, ui/message, ui/error, ui/machine, ui/progress are recorded
//     (they are in the transcript) and otherwise ignored;
//   - ui/ask is answered with "conformance";
//   - hook/run is answered with null at once: no provisioner runs, and the
//     builder's communicator is not called (a check may instead answer
//     -32011, or hold it until the plugin cancels it, see hookMode);
//   - communicator/* on a handle the runner minted for provisioner/provision
//     is served by a local communicator rooted in a temporary directory:
//     start runs the command with `sh -c` in that directory, upload and
//     download copy files in it (every path, absolute or not, resolves under
//     it), uploadDir and downloadDir answer -32011 (unsupported). Bytes move
//     through the plugin's offered streams with stream/read, stream/write and
//     stream/close, chunk by chunk; in protocol version 2 they move as
//     §7.5.2 says instead, through the runner's engine (stream2.go) and as
//     the check's streamPlan says;
//   - stream/read, stream/write and stream/close name only the streams the
//     runner offers in its own requests (exerciseComm), others get -32005;
//     any other method gets -32601.
type hostSide struct {
	dir string // root of the local communicator

	// version is the protocol version the plugin chose, 0 before the
	// handshake; flow is the version 2 engine, set by startSession.
	version int
	flow    *flow2
	// plan says how the runner's version 2 streams behave in this check.
	plan streamPlan
	// pre holds the streams of the plugin's communicator requests,
	// registered by the reader as the request arrives (so that a line
	// naming one right after it finds it), by request id.
	pre map[string]*reqStreams
	// pluginSources and pluginSinks count the streams the plugin offered
	// in its communicator requests (version 2).
	pluginSources, pluginSinks int
	// creditHeld says the first credit of one plugin source was held
	// back (streamPlan.holdCredit); later sources get theirs at once.
	creditHeld bool
	// oversized receives each plugin sink to which the runner sent an
	// oversized first chunk (streamPlan.oversize).
	oversized chan *outbound2

	mu    sync.Mutex
	next  int
	comms map[string]bool
	hook  hookMode
	// hookCalled is closed when the first hook/run arrives.
	hookCalled chan struct{}
	hookOnce   sync.Once
	// cancels holds, for each plugin request the runner is holding, a
	// channel closed when the plugin cancels it.
	cancels map[string]chan struct{}
	// early holds the ids of requests cancelled before they were held.
	early map[string]bool
	// held receives the id of every hook/run the runner starts holding.
	held chan string
	// release, when closed, answers every held hook/run with null.
	release chan struct{}

	// streams the runner offers the plugin in its own requests.
	streams map[string]*offered
	// commErr is what exerciseComm found, "" when all went well; commRan
	// says it ran.
	commErr string
	commRan bool
	// commUse, when not nil, replaces exerciseComm in hookComm mode.
	commUse func(ctx context.Context, s *session, comm string) error
	// watches holds, by request id, the streams the runner offered in
	// each of its requests in flight (version 2): checkFinished judges
	// them when the answer arrives.
	watches map[string]*offers
}

// offered is a stream the runner offers: a source the plugin reads, or a
// sink it writes and closes.
type offered struct {
	src    io.Reader
	sink   *bytes.Buffer
	closed bool
}

// hookMode says how the runner answers hook/run.
type hookMode int

const (
	// hookNull answers null at once: no provisioner runs.
	hookNull hookMode = iota
	// hookUnsupported answers -32011, as a host that runs no hooks does.
	hookUnsupported
	// hookBlock holds hook/run until the plugin cancels it (then -32006)
	// or the check ends: it keeps a builder's run busy.
	hookBlock
	// hookComm uses the communicator the builder offers in hook/run, as a
	// provisioner would through the host (see exerciseComm), then answers
	// null, or -32603 saying what went wrong.
	hookComm
)

func newHostSide(dir string) *hostSide {
	return &hostSide{dir: dir, comms: map[string]bool{}, hookCalled: make(chan struct{}), cancels: map[string]chan struct{}{},
		held: make(chan string, 16), release: make(chan struct{}), streams: map[string]*offered{}, early: map[string]bool{},
		pre: map[string]*reqStreams{}, oversized: make(chan *outbound2, 16), watches: map[string]*offers{}}
}

// setHook chooses how later hook/run requests are answered.
func (h *hostSide) setHook(m hookMode) {
	h.mu.Lock()
	h.hook = m
	h.mu.Unlock()
}

// mintComm mints a communicator handle for one provisioner/provision call.
func (h *hostSide) mintComm() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	c := "c" + strconv.Itoa(h.next)
	h.comms[c] = true
	return c
}

func (h *hostSide) releaseComm(c string) {
	h.mu.Lock()
	delete(h.comms, c)
	h.mu.Unlock()
}

func (h *hostSide) validComm(c string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.comms[c]
}

// v2 reports whether the plugin chose protocol version 2.
func (h *hostSide) v2() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.version == 2
}

// setVersion records the version the plugin chose in initialize.
func (h *hostSide) setVersion(v int) {
	h.mu.Lock()
	h.version = v
	h.mu.Unlock()
}

// notify handles a notification from the plugin: the streams of version 2
// go to the engine, $/cancelRequest to the request it names. Everything
// else worth keeping is already in the transcript.
func (h *hostSide) notify(s *session, m *message) {
	if isStream2(m.method) {
		h.flow.receive(m.Raw)
		return
	}
	if m.method != protocol.MethodCancelRequest {
		return
	}
	var p struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(m.Params, &p) != nil {
		return
	}
	key := string(bytes.TrimSpace(p.ID))
	h.mu.Lock()
	if ch, ok := h.cancels[key]; ok {
		close(ch)
		delete(h.cancels, key)
	} else {
		// The request's handler may not have started holding it yet:
		// notifications are handled inline, requests on goroutines.
		h.early[key] = true
	}
	h.mu.Unlock()
}

// hold blocks a plugin request until the plugin cancels it or ctx ends.
func (h *hostSide) hold(ctx context.Context, m *message) *wireError {
	ch := make(chan struct{})
	key := string(bytes.TrimSpace(m.ID))
	h.mu.Lock()
	if h.early[key] {
		delete(h.early, key)
		close(ch)
	} else {
		h.cancels[key] = ch
	}
	h.mu.Unlock()
	select {
	case h.held <- key:
	default:
	}
	select {
	case <-h.release:
		return nil
	case <-ch:
		return errorOf(protocol.CodeCancelled, "request cancelled")
	case <-ctx.Done():
		return errorOf(protocol.CodeInternalError, "the check ended")
	}
}

func errorOf(code int64, format string, args ...any) *wireError {
	return &wireError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes params, refusing unknown members.
func decodeStrict(raw json.RawMessage, v any) *wireError {
	if len(raw) == 0 || string(raw) == "null" {
		return errorOf(protocol.CodeInvalidParams, "invalid params: missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorOf(protocol.CodeInvalidParams, "invalid params: %v", err)
	}
	return nil
}

// handle answers a request from the plugin; a nil result means null. The
// streams of a communicator request are finished before it returns
// (§7.5.2 rule 5), whatever the answer.
func (h *hostSide) handle(s *session, m *message) (_ any, werr *wireError) {
	ctx := s.ctx
	if strings.HasPrefix(m.method, "communicator/") {
		defer func() { h.streamsOf(ctx, s, m).finish(werr != nil) }()
	}
	switch m.method {
	case protocol.MethodUIAsk:
		var p protocol.UIAskParams
		if e := decodeStrict(m.Params, &p); e != nil {
			return nil, e
		}
		return protocol.UIAskResult{Answer: askAnswer}, nil
	case protocol.MethodHookRun:
		var p protocol.HookRunParams
		if e := decodeStrict(m.Params, &p); e != nil {
			return nil, e
		}
		h.mu.Lock()
		mode := h.hook
		h.mu.Unlock()
		h.hookOnce.Do(func() { close(h.hookCalled) })
		switch mode {
		case hookUnsupported:
			return nil, errorOf(protocol.CodeUnsupported, "unsupported: this host runs no hooks")
		case hookBlock:
			return nil, h.hold(ctx, m)
		case hookComm:
			if p.Communicator == "" {
				return nil, nil
			}
			h.mu.Lock()
			use := h.commUse
			h.mu.Unlock()
			if use == nil {
				use = h.exerciseComm
			}
			err := use(ctx, s, p.Communicator)
			h.mu.Lock()
			h.commRan = true
			if err != nil {
				h.commErr = err.Error()
			}
			h.mu.Unlock()
			if err != nil {
				return nil, errorOf(protocol.CodeInternalError, "conformance runner: %v", err)
			}
		}
		return nil, nil
	case protocol.MethodStreamRead, protocol.MethodStreamWrite, protocol.MethodStreamClose:
		return h.serveStream(m)
	case protocol.MethodCommStart:
		var p protocol.CommStartParams
		if e := h.decodeComm(m.Params, &p, &p.Communicator); e != nil {
			return nil, e
		}
		return h.start(ctx, h.streamsOf(ctx, s, m), p)
	case protocol.MethodCommUpload:
		var p protocol.CommUploadParams
		if e := h.decodeComm(m.Params, &p, &p.Communicator); e != nil {
			return nil, e
		}
		return nil, h.upload(h.streamsOf(ctx, s, m), p)
	case protocol.MethodCommDownload:
		var p protocol.CommDownloadParams
		if e := h.decodeComm(m.Params, &p, &p.Communicator); e != nil {
			return nil, e
		}
		return nil, h.download(h.streamsOf(ctx, s, m), p)
	case protocol.MethodCommUploadDir, protocol.MethodCommDownloadDir:
		return nil, errorOf(protocol.CodeUnsupported, "unsupported: the conformance runner's communicator does not transfer directories")
	}
	return nil, errorOf(protocol.CodeMethodNotFound, "method not found: %s", m.method)
}

func (h *hostSide) decodeComm(raw json.RawMessage, v any, handle *string) *wireError {
	if e := decodeStrict(raw, v); e != nil {
		return e
	}
	if !h.validComm(*handle) {
		return errorOf(protocol.CodeUnknownHandle, "unknown handle: no communicator %q", *handle)
	}
	return nil
}

// localPath maps a communicator path into the temporary directory.
func (h *hostSide) localPath(p string) string {
	return filepath.Join(h.dir, filepath.Clean("/"+filepath.FromSlash(p)))
}

func (h *hostSide) start(ctx context.Context, rs *reqStreams, p protocol.CommStartParams) (any, *wireError) {
	cmd := exec.CommandContext(ctx, "sh", "-c", p.Command)
	cmd.Dir = h.dir
	setProcessGroup(cmd)
	if p.Stdin != "" {
		cmd.Stdin = rs.reader(p.Stdin)
	}
	var sinks []io.Closer
	if p.Stdout != "" {
		w := rs.writer(p.Stdout)
		cmd.Stdout = w
		sinks = append(sinks, w)
	}
	if p.Stderr != "" {
		w := rs.writer(p.Stderr)
		cmd.Stderr = w
		sinks = append(sinks, w)
	}
	err := cmd.Run()
	for _, w := range sinks {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return protocol.CommStartResult{ExitStatus: exit.ExitCode()}, nil
	case err != nil:
		return nil, errorOf(protocol.CodeInternalError, "communicator/start: %v", err)
	}
	return protocol.CommStartResult{ExitStatus: 0}, nil
}

func (h *hostSide) upload(rs *reqStreams, p protocol.CommUploadParams) *wireError {
	mode := fs.FileMode(p.Mode).Perm()
	if mode == 0 {
		mode = 0o644
	}
	dst := h.localPath(p.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/upload: %v", err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/upload: %v", err)
	}
	_, err = io.Copy(f, rs.reader(p.Source))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/upload: %v", err)
	}
	return nil
}

func (h *hostSide) download(rs *reqStreams, p protocol.CommDownloadParams) *wireError {
	f, err := os.Open(h.localPath(p.Path))
	if err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/download: %v", err)
	}
	defer f.Close()
	w := rs.writer(p.Sink)
	_, err = io.Copy(w, f)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/download: %v", err)
	}
	return nil
}

// remoteReader reads a source stream the plugin offered, with stream/read.
type remoteReader struct {
	ctx    context.Context
	s      *session
	handle string
	eof    bool
}

func (r *remoteReader) Read(p []byte) (int, error) {
	if r.eof {
		return 0, io.EOF
	}
	for {
		m, err := r.s.call(r.ctx, protocol.MethodStreamRead, protocol.StreamReadParams{Stream: r.handle, Max: min(len(p), protocol.MaxChunkSize)})
		if err != nil {
			return 0, err
		}
		if e := m.wireErr(); e != nil {
			return 0, fmt.Errorf("stream/read %s: error %d: %s", r.handle, e.Code, e.Message)
		}
		var res protocol.StreamReadResult
		if err := json.Unmarshal(m.Result, &res); err != nil {
			return 0, fmt.Errorf("stream/read %s: %w", r.handle, err)
		}
		if len(res.Data) > len(p) {
			return 0, fmt.Errorf("stream/read %s: %d bytes returned, %d asked", r.handle, len(res.Data), len(p))
		}
		n := copy(p, res.Data)
		r.eof = res.EOF
		switch {
		case n > 0:
			return n, nil
		case r.eof:
			return 0, io.EOF
		}
	}
}

// remoteWriter writes to a sink stream the plugin offered, with stream/write;
// Close sends stream/close.
type remoteWriter struct {
	ctx    context.Context
	s      *session
	handle string
	closed bool
}

func (w *remoteWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), protocol.MaxChunkSize)]
		m, err := w.s.call(w.ctx, protocol.MethodStreamWrite, protocol.StreamWriteParams{Stream: w.handle, Data: chunk})
		if err != nil {
			return n, err
		}
		if e := m.wireErr(); e != nil {
			return n, fmt.Errorf("stream/write %s: error %d: %s", w.handle, e.Code, e.Message)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (w *remoteWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	m, err := w.s.call(w.ctx, protocol.MethodStreamClose, protocol.StreamCloseParams{Stream: w.handle})
	if err != nil {
		return err
	}
	if e := m.wireErr(); e != nil {
		return fmt.Errorf("stream/close %s: error %d: %s", w.handle, e.Code, e.Message)
	}
	return nil
}

// offer registers a stream for one request; it returns the handle.
func (h *hostSide) offer(o *offered) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	handle := "s" + strconv.Itoa(h.next)
	h.streams[handle] = o
	return handle
}

func (h *hostSide) withdraw(handle string) {
	h.mu.Lock()
	delete(h.streams, handle)
	h.mu.Unlock()
}

// serveStream serves stream/* on the streams the runner offered.
func (h *hostSide) serveStream(m *message) (any, *wireError) {
	var p struct {
		Stream string `json:"stream"`
		Max    int    `json:"max"`
		Data   []byte `json:"data"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil {
		return nil, errorOf(protocol.CodeInvalidParams, "invalid params: %v", err)
	}
	h.mu.Lock()
	o := h.streams[p.Stream]
	h.mu.Unlock()
	if o == nil {
		return nil, errorOf(protocol.CodeUnknownHandle, "unknown handle: no stream %q", p.Stream)
	}
	switch m.method {
	case protocol.MethodStreamRead:
		if o.src == nil {
			return nil, errorOf(protocol.CodeInvalidParams, "invalid params: stream %q is a sink", p.Stream)
		}
		if p.Max <= 0 || p.Max > protocol.MaxChunkSize {
			p.Max = protocol.MaxChunkSize
		}
		buf := make([]byte, p.Max)
		n, err := io.ReadFull(o.src, buf)
		return protocol.StreamReadResult{Data: buf[:n], EOF: err != nil}, nil
	case protocol.MethodStreamWrite:
		if o.sink == nil || o.closed {
			return nil, errorOf(protocol.CodeInvalidParams, "invalid params: stream %q is not an open sink", p.Stream)
		}
		o.sink.Write(p.Data)
		return nil, nil
	default:
		o.closed = true
		return nil, nil
	}
}

// exerciseComm calls every communicator method on the builder's
// communicator handle, the way the host relays a provisioner's calls
// (SPEC §7.3, §7.4, §7.7), and checks what comes back.
func (h *hostSide) exerciseComm(ctx context.Context, s *session, comm string) error {
	call := func(o *offers, method string, params any) (*message, error) {
		m, err := o.call(method, params)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if m.wireErr() != nil {
			return nil, fmt.Errorf("%s answered %s", method, m.describe())
		}
		return m, nil
	}
	o := h.newOffers(ctx, s)
	var out bytes.Buffer
	m, err := call(o, protocol.MethodCommStart, protocol.CommStartParams{Communicator: comm, Command: "echo conformance", Stdout: o.sink(&out)})
	if err != nil {
		return err
	}
	var st protocol.CommStartResult
	if json.Unmarshal(m.Result, &st) != nil || st.ExitStatus != 0 || out.String() != "conformance\n" {
		return fmt.Errorf("communicator/start of `echo conformance`: %s, stdout %q", m.describe(), out.String())
	}
	const content = "uploaded by plugin-conformance\n"
	o = h.newOffers(ctx, s)
	if _, err := call(o, protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: "conformance-file.txt", Source: o.source(strings.NewReader(content)), Mode: 0o644, Size: int64(len(content))}); err != nil {
		return err
	}
	var back bytes.Buffer
	o = h.newOffers(ctx, s)
	if _, err := call(o, protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: comm, Path: "conformance-file.txt", Sink: o.sink(&back)}); err != nil {
		return err
	}
	if back.String() != content {
		return fmt.Errorf("communicator/download of the uploaded file returned %q, want %q", back.String(), content)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "sub/dir.txt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	o = h.newOffers(ctx, s)
	if _, err := call(o, protocol.MethodCommUploadDir, protocol.CommUploadDirParams{Communicator: comm, Path: "conformance-tree", Source: o.source(&tarball)}); err != nil {
		return err
	}
	var arch bytes.Buffer
	o = h.newOffers(ctx, s)
	if _, err := call(o, protocol.MethodCommDownloadDir, protocol.CommDownloadDirParams{Communicator: comm, Path: "conformance-tree", Sink: o.sink(&arch)}); err != nil {
		return err
	}
	tr := tar.NewReader(&arch)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return fmt.Errorf("communicator/downloadDir of the uploaded tree: no sub/dir.txt in the archive (%v)", err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == "sub/dir.txt" {
			b, _ := io.ReadAll(tr)
			if string(b) != content {
				return fmt.Errorf("communicator/downloadDir: sub/dir.txt holds %q, want %q", b, content)
			}
			return nil
		}
	}
}

// offers are the streams the runner offers in one request of its own (to
// a builder's communicator): in version 1 it serves stream/read,
// stream/write and stream/close on them, in version 2 its engine sends
// and receives them under the session's streamPlan. Use one offers per
// request: call sends it and releases the streams when it is answered.
type offers struct {
	h    *hostSide
	s    *session
	ctx  context.Context
	v2   bool
	plan streamPlan

	v1     []string       // version 1 handles
	outs   []*outbound2   // the runner's sources
	sent   []<-chan error // their copy goroutines
	ins    []*inbound2    // the runner's sinks
	copied []chan error   // their copy goroutines
	method string
	// afterV1 copies what a version 1 sink received to its writer.
	afterV1 []func()
}

func (h *hostSide) newOffers(ctx context.Context, s *session) *offers {
	return &offers{h: h, s: s, ctx: ctx, v2: h.v2(), plan: h.currentPlan()}
}

// mintStream mints a handle for a stream the runner offers. Handles are
// opaque strings (SPEC §7.6): the runner's hold a space, '/', '#', '%' and
// '?', on which a plugin treating them as identifiers, paths or URLs would
// trip. They stay printable ASCII without '"' and '\', and without the
// '<', '>' and '&' that common JSON encoders escape, so that the plugin's
// stream/data for them can be canonical (§7.5.2) whatever it encodes with.
func (h *hostSide) mintStream() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	return "s" + strconv.Itoa(h.next) + " /#%?"
}

// source offers r as a source stream and returns its handle.
func (o *offers) source(r io.Reader) string {
	if !o.v2 {
		hd := o.h.offer(&offered{src: r})
		o.v1 = append(o.v1, hd)
		return hd
	}
	hd := o.h.mintStream()
	out, done := o.h.flow.offerSource(o.ctx, hd, r, sendOptions{Spell: o.plan.spell, Chunk: o.plan.chunk})
	o.outs = append(o.outs, out)
	o.sent = append(o.sent, done)
	return hd
}

// sink offers w as a sink stream and returns its handle. w holds every
// byte received once call has returned.
func (o *offers) sink(w io.Writer) string {
	if !o.v2 {
		buf := &bytes.Buffer{}
		hd := o.h.offer(&offered{sink: buf})
		o.v1 = append(o.v1, hd)
		o.afterV1 = append(o.afterV1, func() { w.Write(buf.Bytes()) })
		return hd
	}
	hd := o.h.mintStream()
	in := o.h.flow.offerSink(o.ctx, hd, recvOptions{Window: o.plan.sinkWindow})
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, in)
		done <- err
	}()
	o.ins = append(o.ins, in)
	o.copied = append(o.copied, done)
	return hd
}

// sinkCancelling offers a sink whose first chunk the runner reads and then
// cancels (stream/cancel without error: it needs no more); it returns the
// handle and the stream.
func (o *offers) sinkCancelling() (string, *inbound2) {
	hd := o.h.mintStream()
	in := o.h.flow.offerSink(o.ctx, hd, recvOptions{Window: o.plan.sinkWindow})
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, protocol.MaxChunkSize)
		n, err := in.Read(buf)
		if n > 0 {
			in.cancel(nil)
			_, err = io.Copy(io.Discard, in)
		}
		done <- err
	}()
	o.ins = append(o.ins, in)
	o.copied = append(o.copied, done)
	return hd, in
}

// call sends the request, waits for its answer and releases the streams.
func (o *offers) call(method string, params any) (*message, error) {
	o.method = method
	id := o.s.newID()
	ch := o.s.expect(id, method)
	if o.v2 {
		o.h.mu.Lock()
		o.h.watches[idKey(id)] = o
		o.h.mu.Unlock()
	}
	var m *message
	err := o.s.writeJSON(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err == nil {
		m, err = o.s.await(o.ctx, id, ch)
	}
	o.h.mu.Lock()
	delete(o.h.watches, idKey(id))
	o.h.mu.Unlock()
	for _, hd := range o.v1 {
		o.h.withdraw(hd)
	}
	for _, f := range o.afterV1 {
		f()
	}
	for _, in := range o.ins {
		in.release()
	}
	for _, out := range o.outs {
		out.release()
	}
	for _, ch := range o.copied {
		if ch != nil {
			<-ch
		}
	}
	for _, ch := range o.sent {
		<-ch
	}
	return m, err
}

// checkFinished judges rule 5 of §7.5.2 when the answer m to one of the
// runner's requests arrives: the plugin has sent stream/end for every sink
// the runner offered (or the runner cancelled it), and has received the
// end of every source (or cancelled it). It runs on the reader goroutine,
// before later lines are taken.
func (h *hostSide) checkFinished(m *message) {
	h.mu.Lock()
	o := h.watches[m.idKey()]
	h.mu.Unlock()
	if o == nil {
		return
	}
	for _, in := range o.ins {
		if !in.settled() {
			h.flow.note2(violation2{Rule: v2Unfinished, Stream: in.ref, Line: append([]byte(nil), m.Raw...),
				Detail: fmt.Sprintf("%s answered before the plugin sent stream/end for the runner's sink", o.method)})
		}
	}
	for _, out := range o.outs {
		if !out.settled() {
			h.flow.note2(violation2{Rule: v2Unfinished, Stream: out.ref, Line: append([]byte(nil), m.Raw...),
				Detail: fmt.Sprintf("%s answered before the runner's source ended, and the plugin did not cancel it", o.method)})
		}
	}
}

// streamPlan says how the runner's version 2 streams behave in a check:
// the zero value is a host like the reference one.
type streamPlan struct {
	// sourceWindow is the first credit the runner grants each source the
	// plugin offers, and the window it keeps; 0 means
	// protocol.DefaultStreamWindow.
	sourceWindow int64
	// sinkWindow is the window of the sinks the runner offers (never less
	// than the implicit InitialSinkWindow); 0 means
	// protocol.DefaultStreamWindow.
	sinkWindow int64
	// holdCredit, when not zero, delays the first credit of the first
	// source the plugin offers: data that arrives meanwhile breaks rule
	// 1. Only the first: a plugin with many sources must not run out of
	// the check's time because of the runner's own waits.
	holdCredit time.Duration
	// spell, when not nil, spells the stream/data lines the runner sends.
	spell func(r ref2, data []byte) []byte
	// chunk is the largest chunk the runner sends; 0 means MaxChunkSize.
	chunk int
	// oversize makes the runner's first chunk to each sink the plugin
	// offers MaxChunkSize+1 bytes: more than the implicit credit. The
	// streams go to hostSide.oversized.
	oversize bool
}

// setPlan sets the stream plan of later transfers.
func (h *hostSide) setPlan(p streamPlan) {
	h.mu.Lock()
	h.plan = p
	h.mu.Unlock()
}

func (h *hostSide) currentPlan() streamPlan {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.plan
}

// reqStreams are the streams the plugin offered in one of its
// communicator requests, as the runner reads and writes them.
type reqStreams struct {
	h    *hostSide
	s    *session
	ctx  context.Context
	v2   bool
	plan streamPlan
	ins  map[string]*inbound2  // the plugin's sources, by handle (version 2)
	outs map[string]*outbound2 // the plugin's sinks, by handle (version 2)
}

// streamHandles returns the sources and sinks a communicator request
// names, whatever else its params hold.
func streamHandles(method string, params json.RawMessage) (sources, sinks []string) {
	var p struct {
		Stdin, Stdout, Stderr, Source, Sink string
	}
	json.Unmarshal(params, &p)
	switch method {
	case protocol.MethodCommStart:
		sources = append(sources, p.Stdin)
		sinks = append(sinks, p.Stdout, p.Stderr)
	case protocol.MethodCommUpload, protocol.MethodCommUploadDir:
		sources = append(sources, p.Source)
	case protocol.MethodCommDownload, protocol.MethodCommDownloadDir:
		sinks = append(sinks, p.Sink)
	}
	return slices.DeleteFunc(sources, func(h string) bool { return h == "" }), slices.DeleteFunc(sinks, func(h string) bool { return h == "" })
}

// preRegister registers the streams of a communicator request of the
// plugin's as the reader takes it, before its handler runs: in version 2
// the plugin may send a line for them right after the request (a sink's
// first credit is its business, a source's data waits for the runner's
// credit, but both are judged against what the runner registered).
func (h *hostSide) preRegister(s *session, m *message) {
	if !h.v2() || !strings.HasPrefix(m.method, "communicator/") {
		return
	}
	sources, sinks := streamHandles(m.method, m.Params)
	if len(sources)+len(sinks) == 0 {
		return
	}
	plan := h.currentPlan()
	rs := &reqStreams{h: h, s: s, ctx: s.ctx, v2: true, plan: plan, ins: map[string]*inbound2{}, outs: map[string]*outbound2{}}
	for _, hd := range sources {
		var hold <-chan struct{}
		h.mu.Lock()
		if plan.holdCredit > 0 && !h.creditHeld {
			h.creditHeld = true
			hold = afterChan(s.ctx, plan.holdCredit)
		}
		h.mu.Unlock()
		rs.ins[hd] = h.flow.registerSource(s.ctx, hd, recvOptions{Window: plan.sourceWindow, Hold: hold})
	}
	for _, hd := range sinks {
		rs.outs[hd] = h.flow.writeSink(s.ctx, hd, sendOptions{Spell: plan.spell, Chunk: plan.chunk})
	}
	h.mu.Lock()
	h.pre[m.idKey()] = rs
	h.pluginSources += len(sources)
	h.pluginSinks += len(sinks)
	h.mu.Unlock()
}

// afterChan returns a channel closed after d, or when ctx ends.
func afterChan(ctx context.Context, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		close(ch)
	}()
	return ch
}

// streamsOf returns the streams of the plugin's request m: those
// preRegister registered in version 2, or version 1 streams.
func (h *hostSide) streamsOf(ctx context.Context, s *session, m *message) *reqStreams {
	h.mu.Lock()
	rs := h.pre[m.idKey()]
	h.mu.Unlock()
	if rs == nil {
		return &reqStreams{h: h, s: s, ctx: ctx}
	}
	return rs
}

// answered releases the streams of the plugin's request m once the runner
// has answered it.
func (h *hostSide) answered(m *message) {
	h.mu.Lock()
	rs := h.pre[m.idKey()]
	delete(h.pre, m.idKey())
	h.mu.Unlock()
	if rs == nil {
		return
	}
	for _, in := range rs.ins {
		in.release()
	}
	for _, out := range rs.outs {
		out.release()
	}
}

// reader returns the plugin's source handle as a reader.
func (rs *reqStreams) reader(handle string) io.Reader {
	if !rs.v2 {
		return &remoteReader{ctx: rs.ctx, s: rs.s, handle: handle}
	}
	in := rs.ins[handle]
	if in == nil { // not in the params preRegister saw: cannot happen
		in = rs.h.flow.registerSource(rs.ctx, handle, recvOptions{Window: rs.plan.sourceWindow})
		rs.ins[handle] = in
	}
	in.start()
	return in
}

// writer returns the plugin's sink handle as a writer whose Close ends
// the stream.
func (rs *reqStreams) writer(handle string) io.WriteCloser {
	if !rs.v2 {
		return &remoteWriter{ctx: rs.ctx, s: rs.s, handle: handle}
	}
	out := rs.outs[handle]
	if out == nil { // not in the params preRegister saw: cannot happen
		out = rs.h.flow.writeSink(rs.ctx, handle, sendOptions{Spell: rs.plan.spell, Chunk: rs.plan.chunk})
		rs.outs[handle] = out
	}
	if rs.plan.oversize {
		data := bytes.Repeat([]byte("x"), protocol.MaxChunkSize+1)
		if out.sendRawChunk(data, canonicalData(out.ref, data)) == nil {
			select {
			case rs.h.oversized <- out:
			default:
			}
		}
	}
	return out
}

// finish does what §7.5.2 rule 5 asks of the runner before it answers:
// every source read to its end or cancelled, every sink ended, with an
// error when the request failed. It may be called again: what is
// finished stays so.
func (rs *reqStreams) finish(failed bool) {
	if !rs.v2 {
		return
	}
	for _, in := range rs.ins {
		if !in.settled() {
			var werr *wireError
			if failed {
				werr = errorOf(protocol.CodeComponentFailed, "component failed: the request failed")
			}
			in.cancel(werr)
		}
	}
	for _, out := range rs.outs {
		if failed {
			out.abort(errorOf(protocol.CodeComponentFailed, "component failed: the request failed"))
		} else {
			out.Close()
		}
	}
}
