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
	"strconv"
	"strings"
	"sync"

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
//     stream/close, chunk by chunk;
//   - the runner offers no streams, so stream/* gets -32005, and any other
//     method gets -32601.
type hostSide struct {
	dir string // root of the local communicator

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
		held: make(chan string, 16), release: make(chan struct{}), streams: map[string]*offered{}, early: map[string]bool{}}
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

// notify handles a notification from the plugin. Everything worth keeping
// is already in the transcript.
func (h *hostSide) notify(s *session, m *message) {
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

// handle answers a request from the plugin; a nil result means null.
func (h *hostSide) handle(s *session, m *message) (any, *wireError) {
	ctx := s.ctx
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
			err := h.exerciseComm(ctx, s, p.Communicator)
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
		return h.start(ctx, s, p)
	case protocol.MethodCommUpload:
		var p protocol.CommUploadParams
		if e := h.decodeComm(m.Params, &p, &p.Communicator); e != nil {
			return nil, e
		}
		return nil, h.upload(ctx, s, p)
	case protocol.MethodCommDownload:
		var p protocol.CommDownloadParams
		if e := h.decodeComm(m.Params, &p, &p.Communicator); e != nil {
			return nil, e
		}
		return nil, h.download(ctx, s, p)
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

func (h *hostSide) start(ctx context.Context, s *session, p protocol.CommStartParams) (any, *wireError) {
	cmd := exec.CommandContext(ctx, "sh", "-c", p.Command)
	cmd.Dir = h.dir
	setProcessGroup(cmd)
	if p.Stdin != "" {
		cmd.Stdin = &remoteReader{ctx: ctx, s: s, handle: p.Stdin}
	}
	var sinks []*remoteWriter
	if p.Stdout != "" {
		w := &remoteWriter{ctx: ctx, s: s, handle: p.Stdout}
		cmd.Stdout = w
		sinks = append(sinks, w)
	}
	if p.Stderr != "" {
		w := &remoteWriter{ctx: ctx, s: s, handle: p.Stderr}
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

func (h *hostSide) upload(ctx context.Context, s *session, p protocol.CommUploadParams) *wireError {
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
	_, err = io.Copy(f, &remoteReader{ctx: ctx, s: s, handle: p.Source})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/upload: %v", err)
	}
	return nil
}

func (h *hostSide) download(ctx context.Context, s *session, p protocol.CommDownloadParams) *wireError {
	f, err := os.Open(h.localPath(p.Path))
	if err != nil {
		return errorOf(protocol.CodeInternalError, "communicator/download: %v", err)
	}
	defer f.Close()
	w := &remoteWriter{ctx: ctx, s: s, handle: p.Sink}
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
	call := func(method string, params any, streams ...string) (*message, error) {
		defer func() {
			for _, st := range streams {
				h.withdraw(st)
			}
		}()
		m, err := s.call(ctx, method, params)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if m.wireErr() != nil {
			return nil, fmt.Errorf("%s answered %s", method, m.describe())
		}
		return m, nil
	}
	out := &offered{sink: &bytes.Buffer{}}
	so := h.offer(out)
	m, err := call(protocol.MethodCommStart, protocol.CommStartParams{Communicator: comm, Command: "echo conformance", Stdout: so}, so)
	if err != nil {
		return err
	}
	var st protocol.CommStartResult
	if json.Unmarshal(m.Result, &st) != nil || st.ExitStatus != 0 || out.sink.String() != "conformance\n" {
		return fmt.Errorf("communicator/start of `echo conformance`: %s, stdout %q", m.describe(), out.sink.String())
	}
	const content = "uploaded by plugin-conformance\n"
	src := h.offer(&offered{src: strings.NewReader(content)})
	if _, err := call(protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: "conformance-file.txt", Source: src, Mode: 0o644, Size: int64(len(content))}, src); err != nil {
		return err
	}
	back := &offered{sink: &bytes.Buffer{}}
	sk := h.offer(back)
	if _, err := call(protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: comm, Path: "conformance-file.txt", Sink: sk}, sk); err != nil {
		return err
	}
	if back.sink.String() != content {
		return fmt.Errorf("communicator/download of the uploaded file returned %q, want %q", back.sink.String(), content)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "sub/dir.txt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	src = h.offer(&offered{src: &tarball})
	if _, err := call(protocol.MethodCommUploadDir, protocol.CommUploadDirParams{Communicator: comm, Path: "conformance-tree", Source: src}, src); err != nil {
		return err
	}
	arch := &offered{sink: &bytes.Buffer{}}
	sk = h.offer(arch)
	if _, err := call(protocol.MethodCommDownloadDir, protocol.CommDownloadDirParams{Communicator: comm, Path: "conformance-tree", Sink: sk}, sk); err != nil {
		return err
	}
	tr := tar.NewReader(arch.sink)
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
