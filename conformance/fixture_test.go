package conformance_test

// The fixture plugin: the test binary re-runs itself with CONFORMANCE_FIXTURE
// set to a mode, and TestMain serves the protocol instead of running tests.
// Mode "baseline" is a small correct plugin with one component of each type;
// every other mode breaks exactly one rule, and TestFixtures asserts that
// the runner reports exactly the check for that rule as failed.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/internal/commwire"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
	"github.com/packer-stdio/packer/protocol"
)

const fixtureEnv = "CONFORMANCE_FIXTURE"

// fixtureConfig is the configuration of every fixture component.
type fixtureConfig struct {
	Message string `json:"message"`
	Wait    string `json:"wait"`

	BuildName          string            `json:"packer_build_name"`
	BuilderType        string            `json:"packer_builder_type"`
	Debug              bool              `json:"packer_debug"`
	Force              bool              `json:"packer_force"`
	OnError            string            `json:"packer_on_error"`
	UserVariables      map[string]string `json:"packer_user_variables"`
	SensitiveVariables []string          `json:"packer_sensitive_variables"`
}

func fixtureSchema(mode string) json.RawMessage {
	props := map[string]any{
		"message": map[string]any{"type": "string"},
		"wait":    map[string]any{"type": "string"},
	}
	if mode == "invalid-config-schema" {
		props["message"] = map[string]any{"type": 12}
	}
	if mode != "no-packer-keys" {
		props["packer_build_name"] = map[string]any{"type": "string"}
		props["packer_builder_type"] = map[string]any{"type": "string"}
		props["packer_debug"] = map[string]any{"type": "boolean"}
		props["packer_force"] = map[string]any{"type": "boolean"}
		props["packer_on_error"] = map[string]any{"type": "string"}
		props["packer_user_variables"] = map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
		props["packer_sensitive_variables"] = map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	}
	sch := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if mode == "key-rule-in-code" {
		sch["allOf"] = keyRuleInCodeSchema
	}
	b, _ := json.Marshal(sch)
	return b
}

type fixture struct {
	mode   string
	out    *fixtureWriter
	exit   chan struct{}
	logger *log.Logger

	initialized  atomic.Bool
	shuttingDown atomic.Bool
	exitOnce     sync.Once

	serial    sync.Mutex // held by every builder/run in mode serial-handlers
	mu        sync.Mutex
	comm      commwire.Communicator // offered as c1 while hook/run is in flight
	next      int
	instances map[string]fixtureInstance
	artifacts map[string]bool
}

type fixtureInstance struct {
	typ string
	cfg fixtureConfig
}

// runFixture serves the protocol on stdin/stdout in the given mode and exits.
func runFixture(mode string) {
	if mode != "serves-without-cookie" && os.Getenv(protocol.EnvMagicCookie) != protocol.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "This is a packer plugin (conformance fixture). It is started by packer; do not run it by hand.")
		os.Exit(1)
	}
	f := &fixture{
		mode:      mode,
		exit:      make(chan struct{}),
		logger:    log.New(os.Stderr, "fixture: ", 0),
		instances: map[string]fixtureInstance{},
		artifacts: map[string]bool{},
	}
	f.out = &fixtureWriter{w: os.Stdout, mode: mode, seen: map[string]bool{}}
	var in io.Reader = os.Stdin
	switch mode {
	case "batch-split", "answers-notifications", "negative-id-accepted", "crlf-rejected", "cancel-with-id-answered",
		"ignores-credit", "accepts-oversize", "canonical-only", "data-before-credit", "sends-after-cancel":
		in = f.readFilter(os.Stdin)
	}
	f.logger.Printf("started in mode %s", mode)
	if mode != "dies-on-sigterm" {
		// SIGTERM is like end of input (SPEC §9.3).
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			f.logger.Printf("SIGTERM: exiting")
			f.exitOnce.Do(func() { close(f.exit) })
		}()
	}
	if mode == "talks-before-initialize" {
		f.out.writeRaw(`{"jsonrpc":"2.0","method":"ui/say","params":{"message":"fixture: starting"}}` + "\n")
	}
	// Work around a race in protocol.NewConn: a request read before NewConn
	// returns is answered through a nil jsonrpc2.Conn. Hold input back
	// until it has returned.
	gate := make(chan struct{})
	conn := protocol.NewConn(gatedReader{in, gate}, f.out, os.Stdin, f, protocol.Options{Logger: f.logger})
	close(gate)
	select {
	case <-conn.Done():
		if mode == "ignores-eof" {
			time.Sleep(time.Hour)
		}
	case <-f.exit:
	}
	os.Exit(0)
}

// gatedReader blocks reads until gate is closed.
type gatedReader struct {
	r    io.Reader
	gate chan struct{}
}

func (g gatedReader) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}

// fixtureWriter is the plugin's stdout. LineStream writes one line per
// Write; some modes rewrite or copy those lines.
type fixtureWriter struct {
	mu   sync.Mutex
	w    io.Writer
	mode string

	// inject, in mode data-before-credit, feeds a line to the plugin's
	// own input.
	inject func(line []byte)
	// held is a stream/end that mode answers-before-end writes after the
	// next answer; seen holds the sources mode keeps-credit has credited.
	held [][]byte
	seen map[string]bool
}

func (w *fixtureWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range w.streamLines(p) {
		line = w.rewrite(line)
		if w.mode == "stderr-protocol" {
			os.Stderr.Write(line)
		}
		if _, err := w.w.Write(line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// outLine is what the stream modes look at in an outgoing line.
type outLine struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Source, Sink, Stdin, Stdout, Stderr, Data string
		Bytes                                     int64
	} `json:"params"`
}

// streamLines breaks one rule of version 2 streams (SPEC §7.5.2) in the
// plugin's output, as the mode says, and returns the lines to write in
// place of p. It copies what it keeps: p is the stream's buffer.
func (w *fixtureWriter) streamLines(p []byte) [][]byte {
	var m outLine
	if json.Unmarshal(p, &m) != nil {
		return [][]byte{p}
	}
	line := func(method string, params any) []byte {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
		return append(b, '\n')
	}
	switch {
	case w.mode == "end-twice" && m.Method == protocol.MethodStreamEnd:
		return [][]byte{p, p}
	case w.mode == "empty-chunk" && m.Method == protocol.MethodStreamEnd:
		// In the canonical form, so that only the size is wrong.
		ref, h := "source", m.Params.Source
		if m.Params.Sink != "" {
			ref, h = "sink", m.Params.Sink
		}
		hq, _ := json.Marshal(h)
		return [][]byte{[]byte(`{"jsonrpc":"2.0","method":"stream/data","params":{"` + ref + `":` + string(hq) + `,"data":""}}` + "\n"), p}
	case w.mode == "answers-before-end" && m.Method == protocol.MethodStreamEnd && m.Params.Sink != "":
		w.held = append(w.held, append([]byte(nil), p...))
		return nil
	case w.mode == "answers-before-end" && m.Method == "" && m.ID != nil:
		out := append([][]byte{p}, w.held...)
		w.held = nil
		return out
	case w.mode == "data-member-order" && m.Method == protocol.MethodStreamData:
		ref, h := "source", m.Params.Source
		if m.Params.Sink != "" {
			ref, h = "sink", m.Params.Sink
		}
		hq, _ := json.Marshal(h)
		return [][]byte{[]byte(`{"jsonrpc":"2.0","method":"stream/data","params":{"data":"` + m.Params.Data + `","` + ref + `":` + string(hq) + "}}\n")}
	case w.mode == "keeps-credit" && m.Method == protocol.MethodStreamCredit && m.Params.Source != "":
		if w.seen[m.Params.Source] {
			return nil
		}
		w.seen[m.Params.Source] = true
	case w.mode == "credits-sink-early" && m.ID != nil && strings.HasPrefix(m.Method, "communicator/"):
		// The credit goes just before the request that offers the sink:
		// written after it, it could cross the host's first chunk and
		// be indistinguishable from a legitimate credit.
		var out [][]byte
		for _, h := range []string{m.Params.Stdout, m.Params.Stderr, m.Params.Sink} {
			if h != "" {
				out = append(out, line(protocol.MethodStreamCredit, map[string]any{"sink": h, "bytes": protocol.InitialSinkWindow}))
			}
		}
		return append(out, p)
	case w.mode == "data-before-credit" && m.ID != nil && strings.HasPrefix(m.Method, "communicator/"):
		// The plugin credits its own sources, as if the host had: its
		// data then goes before the host's credit.
		for _, h := range []string{m.Params.Stdin, m.Params.Source} {
			if h != "" {
				w.inject(line(protocol.MethodStreamCredit, map[string]any{"source": h, "bytes": protocol.MaxChunkSize}))
			}
		}
	}
	return [][]byte{p}
}

// rewrite breaks an outgoing line as the mode says.
func (w *fixtureWriter) rewrite(p []byte) []byte {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return p
	}
	code := ""
	msg := ""
	if e, ok := m["error"].(map[string]any); ok {
		code = fmt.Sprint(e["code"])
		msg = fmt.Sprint(e["message"])
	}
	changed := false
	switch {
	case w.mode == "parse-error-wrong-code" && code == "-32700" && strings.Contains(msg, "JSON"),
		w.mode == "utf8-wrong-code" && code == "-32700" && strings.Contains(msg, "UTF-8"),
		w.mode == "too-large-wrong-code" && code == "-32009":
		m["error"].(map[string]any)["code"] = protocol.CodeInvalidRequest
		changed = true
	case w.mode == "invalid-request-null-id" && code == "-32600" && m["id"] != nil && strings.Contains(msg, "neither"):
		m["id"] = nil
		changed = true
	case w.mode == "string-id-as-number":
		if s, ok := m["id"].(string); ok {
			if _, err := strconv.Atoi(s); err == nil {
				m["id"] = json.Number(s)
				changed = true
			}
		}
	}
	if !changed {
		return p
	}
	b, _ := json.Marshal(m)
	return append(b, '\n')
}

// writeRaw writes bytes to stdout as they are.
func (w *fixtureWriter) writeRaw(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	io.WriteString(w.w, s)
}

// readFilter rewrites incoming lines as the mode says.
func (f *fixture) readFilter(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	// Writes to a pipe are gated one at a time: an injected line never
	// splits another.
	f.out.inject = func(line []byte) { go pw.Write(line) }
	go func() {
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				pw.Write(f.rewriteIn(line))
			}
			if err != nil {
				pw.Close()
				return
			}
		}
	}()
	return pr
}

func (f *fixture) rewriteIn(line []byte) []byte {
	switch f.mode {
	case "batch-split":
		var batch []json.RawMessage
		if bytes.HasPrefix(line, []byte("[")) && json.Unmarshal(line, &batch) == nil {
			var out []byte
			for _, m := range batch {
				out = append(append(out, m...), '\n')
			}
			return out
		}
	case "answers-notifications":
		var m map[string]json.RawMessage
		if json.Unmarshal(line, &m) == nil && m["method"] != nil && m["id"] == nil {
			f.out.writeRaw(`{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"method not found"}}` + "\n")
		}
	case "negative-id-accepted":
		return bytes.Replace(line, []byte(`"id":-1,`), []byte(`"id":1,`), 1)
	case "crlf-rejected":
		if bytes.HasSuffix(line, []byte("\r\n")) {
			return []byte("{broken\n")
		}
	case "ignores-credit", "accepts-oversize", "canonical-only", "sends-after-cancel":
		return f.rewriteStreamIn(line)
	case "cancel-with-id-answered":
		var m map[string]json.RawMessage
		if json.Unmarshal(line, &m) == nil && string(m["method"]) == `"$/cancelRequest"` && m["id"] != nil {
			f.out.writeRaw(`{"jsonrpc":"2.0","id":` + string(m["id"]) + `,"result":null}` + "\n")
			return nil
		}
	}
	return line
}

// canonicalDataLine matches a stream/data line in the canonical form of
// SPEC §7.5.2.
var canonicalDataLine = regexp.MustCompile(`^\{"jsonrpc":"2\.0","method":"stream/data","params":\{"(source|sink)":"[ !#-\[\]-~]+","data":"[A-Za-z0-9+/=]*"\}\}\r?\n$`)

// rewriteStreamIn breaks a rule of a receiver of version 2 streams in what
// the plugin reads, as the mode says.
func (f *fixture) rewriteStreamIn(line []byte) []byte {
	var m struct {
		Method string                     `json:"method"`
		Params map[string]json.RawMessage `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil {
		return line
	}
	switch {
	case f.mode == "ignores-credit" && m.Method == protocol.MethodStreamCredit:
		// The plugin believes it was granted 16 times the credit.
		var n int64
		json.Unmarshal(m.Params["bytes"], &n)
		m.Params["bytes"], _ = json.Marshal(min(n*16, 1<<30))
	case f.mode == "accepts-oversize" && m.Method == protocol.MethodStreamData:
		// A chunk larger than a chunk may be reaches the plugin as two.
		var data []byte
		json.Unmarshal(m.Params["data"], &data)
		if len(data) <= protocol.MaxChunkSize {
			return line
		}
		var out []byte
		for _, part := range [][]byte{data[:protocol.MaxChunkSize], data[protocol.MaxChunkSize:]} {
			m.Params["data"], _ = json.Marshal(part)
			b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": m.Method, "params": m.Params})
			out = append(append(out, b...), '\n')
		}
		return out
	case f.mode == "canonical-only" && m.Method == protocol.MethodStreamData:
		// A reader that knows only the canonical form loses the rest.
		if !canonicalDataLine.Match(line) {
			return nil
		}
		return line
	case f.mode == "sends-after-cancel" && m.Method == protocol.MethodStreamCancel:
		// The plugin takes a cancel for the largest credit and goes on
		// sending: it answers as soon as it is done, but with more
		// bytes than it was ever granted.
		m.Method = protocol.MethodStreamCredit
		delete(m.Params, "error")
		m.Params["bytes"] = json.RawMessage(`1073741824`)
	default:
		return line
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": m.Method, "params": m.Params})
	return append(b, '\n')
}

func (f *fixture) mint(prefix string) string {
	f.next++
	return prefix + strconv.Itoa(f.next)
}

func (f *fixture) components() []protocol.Component {
	sch := fixtureSchema(f.mode)
	comps := []protocol.Component{
		{Type: protocol.TypeBuilder, Name: "fixture", ConfigSchema: sch},
		{Type: protocol.TypeProvisioner, Name: "fixture-shell", ConfigSchema: sch},
		{Type: protocol.TypePostProcessor, Name: "fixture-pp", ConfigSchema: sch},
	}
	if f.mode == "bad-initialize" {
		comps = append(comps, comps[0])
	}
	return comps
}

// Handle implements protocol.Handler.
func (f *fixture) Handle(ctx context.Context, req *protocol.Request) (any, error) {
	if req.Notification {
		return nil, nil
	}
	if req.Method != protocol.MethodInitialize && !f.initialized.Load() && f.mode != "no-init-guard" {
		return nil, protocol.ErrNotInitialized
	}
	if f.mode == "initialize-after-shutdown-invalid" && req.Method == protocol.MethodInitialize && f.initialized.Load() {
		return nil, protocol.ErrInvalidRequest.WithMessage("already initialized")
	}
	if f.shuttingDown.Load() && (f.mode != "serves-after-shutdown" || req.Method == protocol.MethodInitialize) {
		return nil, protocol.ErrShuttingDown
	}
	switch req.Method {
	case protocol.MethodInitialize:
		return f.initialize(req)
	case protocol.MethodShutdown:
		if p := bytes.TrimSpace(req.Params); len(p) > 0 && string(p) != "{}" && f.mode != "lenient-shutdown" {
			return nil, protocol.ErrInvalidParams.WithMessage("shutdown takes no params")
		}
		f.shuttingDown.Store(true)
		if f.mode != "shutdown-waits-eof" {
			delay := 100 * time.Millisecond
			if f.mode == "serves-after-shutdown" {
				delay = time.Second
			}
			time.AfterFunc(delay, func() { f.exitOnce.Do(func() { close(f.exit) }) })
		}
		return nil, nil
	case protocol.MethodPrepare:
		return f.prepare(req)
	case protocol.MethodBuilderRun:
		if f.mode == "serial-handlers" {
			f.serial.Lock()
			defer f.serial.Unlock()
		}
		var p protocol.InstanceParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if p.Instance == "" && f.mode != "lookups-first" {
			return nil, protocol.ErrInvalidParams.WithMessage("instance must not be empty")
		}
		inst, err := f.instance(p.Instance, protocol.TypeBuilder)
		if err != nil {
			return nil, err
		}
		return f.build(ctx, req.Conn, inst)
	case protocol.MethodProvision:
		var p protocol.ProvisionParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if _, err := f.instance(p.Instance, protocol.TypeProvisioner); err != nil {
			return nil, err
		}
		return nil, f.provision(ctx, req.Conn, p.Communicator)
	case protocol.MethodPostProcess:
		var p protocol.PostProcessParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if _, err := f.instance(p.Instance, protocol.TypePostProcessor); err != nil {
			return nil, err
		}
		if f.mode == "postprocessor-fails" {
			return nil, protocol.ErrComponentFailed.WithMessage("fixture post-processor fails")
		}
		return protocol.PostProcessResult{Artifact: &protocol.Artifact{BuilderID: "fixture.pp", ID: p.Artifact.ID, Files: p.Artifact.Files, String: "processed " + p.Artifact.String}, Keep: true}, nil
	case protocol.MethodArtifactDestroy:
		var p protocol.ArtifactDestroyParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if p.Artifact == "" && f.mode != "lookups-first" {
			return nil, protocol.ErrInvalidParams.WithMessage("artifact must not be empty")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.artifacts[p.Artifact] {
			return nil, f.unknownHandle(p.Artifact)
		}
		delete(f.artifacts, p.Artifact)
		return nil, nil
	}
	switch req.Method {
	case protocol.MethodCommStart, protocol.MethodCommUpload, protocol.MethodCommDownload, protocol.MethodCommUploadDir, protocol.MethodCommDownloadDir:
		if f.mode == "comm-no-dirs" && (req.Method == protocol.MethodCommUploadDir || req.Method == protocol.MethodCommDownloadDir) {
			return nil, protocol.ErrUnsupported.WithMessage("this communicator moves no directories")
		}
		return commwire.Serve(ctx, req, func(h string) (commwire.Communicator, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if h != "c1" || f.comm == nil {
				return nil, protocol.ErrUnknownHandle.WithMessage("no communicator %q", h)
			}
			return f.comm, nil
		})
	}
	if f.mode == "unknown-method-internal" {
		return nil, errors.New("no such method")
	}
	return nil, protocol.ErrMethodNotFound.WithMessage("%s", req.Method)
}

func (f *fixture) unknownHandle(h string) error {
	if f.mode == "unknown-handle-internal" {
		return fmt.Errorf("no %s here", h)
	}
	return protocol.ErrUnknownHandle.WithMessage("%q", h)
}

func (f *fixture) initialize(req *protocol.Request) (any, error) {
	var p protocol.InitializeParams
	if err := req.DecodeParams(&p); err != nil {
		return nil, err
	}
	if f.initialized.Load() && f.mode != "reinitialize" {
		return nil, protocol.ErrInvalidRequest.WithMessage("already initialized")
	}
	if f.mode != "lookups-first" {
		var shape struct {
			Limits struct {
				MaxMessageSize *int64 `json:"max_message_size"`
			} `json:"limits"`
			Capabilities struct {
				Ask      *bool `json:"ask"`
				Progress *bool `json:"progress"`
			} `json:"capabilities"`
		}
		json.Unmarshal(req.Params, &shape)
		if m := shape.Limits.MaxMessageSize; m == nil || *m < protocol.MinMaxMessageSize {
			return nil, protocol.ErrInvalidParams.WithMessage("limits.max_message_size missing or too small")
		}
		if shape.Capabilities.Ask == nil || shape.Capabilities.Progress == nil {
			return nil, protocol.ErrInvalidParams.WithMessage("capabilities.ask and capabilities.progress are required")
		}
	}
	version := 0
	for _, v := range p.ProtocolVersions {
		for _, s := range protocol.SupportedVersions {
			if v == s && version == 0 {
				version = v
			}
		}
	}
	if version == 0 {
		if f.mode == "talks-after-failed-initialize" {
			time.AfterFunc(50*time.Millisecond, func() {
				f.out.writeRaw(`{"jsonrpc":"2.0","method":"ui/error","params":{"message":"fixture: no common version"}}` + "\n")
			})
		}
		if f.mode != "any-version" || len(p.ProtocolVersions) == 0 {
			return nil, protocol.ErrUnsupportedVersion.WithData(protocol.UnsupportedVersionData{Supported: protocol.SupportedVersions})
		}
		version = p.ProtocolVersions[0]
	}
	f.initialized.Store(true)
	req.Conn.SetLimits(protocol.DefaultMaxMessageSize, p.Limits.MaxMessageSize)
	req.Conn.SetProtocolVersion(version)
	return protocol.InitializeResult{
		ProtocolVersion: version,
		Plugin:          protocol.Peer{Name: "conformance-fixture", Version: "0.0.1"},
		Components:      f.components(),
		Limits:          protocol.Limits{MaxMessageSize: protocol.DefaultMaxMessageSize},
		Capabilities:    protocol.PluginCapabilities{Cancel: true},
	}, nil
}

func (f *fixture) prepare(req *protocol.Request) (any, error) {
	var p protocol.PrepareParams
	if f.mode == "lenient-params" {
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, protocol.ErrInvalidParams.WithMessage("%v", err)
		}
	} else if err := req.DecodeParams(&p); err != nil {
		return nil, err
	}
	if f.mode != "lookups-first" {
		switch p.Type {
		case protocol.TypeBuilder, protocol.TypeProvisioner, protocol.TypePostProcessor:
		default:
			return nil, protocol.ErrInvalidParams.WithMessage("type %q", p.Type)
		}
		for i, c := range p.Configs {
			if len(c) == 0 || c[0] != '{' {
				return nil, protocol.ErrInvalidParams.WithMessage("configs[%d] is not an object", i)
			}
		}
	}
	found := false
	for _, c := range f.components() {
		found = found || (c.Type == p.Type && c.Name == p.Name)
	}
	if !found {
		if f.mode == "unknown-component-wrong-code" {
			return nil, protocol.ErrConfigInvalid.WithData(protocol.ConfigInvalidData{Errors: []protocol.ConfigError{{Message: "no such component"}}, Warnings: []string{}})
		}
		return nil, protocol.ErrUnknownComponent.WithMessage("%s %s", p.Type, p.Name)
	}
	if f.mode == "prepare-internal-error" && p.Type == protocol.TypePostProcessor && len(p.Configs) == 1 && string(p.Configs[0]) == "{}" {
		return nil, errors.New("fixture post-processor cannot prepare")
	}
	merged := map[string]json.RawMessage{}
	var errs []protocol.ConfigError
	for i, c := range p.Configs {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c, &obj); err != nil || obj == nil {
			if f.mode == "no-type-check" {
				continue
			}
			return nil, protocol.ErrInvalidParams.WithMessage("configs[%d] is not an object", i)
		}
		for k, v := range obj {
			merged[k] = v
		}
	}
	var cfg fixtureConfig
	b, _ := json.Marshal(merged)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var te *json.UnmarshalTypeError
		path := ""
		if errors.As(err, &te) {
			path = "/" + te.Field
		}
		errs = append(errs, protocol.ConfigError{Path: path, Message: err.Error()})
	}
	if f.mode == "no-type-check" {
		errs = nil
	}
	if f.mode == "key-rule-in-code" {
		errs = append(errs, keyRuleInCode(merged)...)
	}
	if len(errs) > 0 {
		return nil, protocol.ErrConfigInvalid.WithData(protocol.ConfigInvalidData{Errors: errs, Warnings: []string{}})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.mint("i")
	f.instances[h] = fixtureInstance{typ: p.Type, cfg: cfg}
	return protocol.PrepareResult{Instance: h, Warnings: []string{}}, nil
}

func (f *fixture) instance(h, typ string) (fixtureInstance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.instances[h]
	if !ok || inst.typ != typ {
		return fixtureInstance{}, f.unknownHandle(h)
	}
	return inst, nil
}

func (f *fixture) build(ctx context.Context, conn *protocol.Conn, inst fixtureInstance) (any, error) {
	conn.Notify(ctx, protocol.MethodUISay, protocol.UIMessageParams{Message: "fixture: building"})
	if f.mode == "bad-ui-params" {
		conn.Notify(ctx, protocol.MethodUISay, map[string]any{"message": 42})
	}
	if f.mode == "stdout-garbage" {
		f.out.writeRaw("fixture: a stray print on stdout\n")
	}
	hookCtx := ctx
	if f.mode == "ignores-cancel" {
		hookCtx = context.WithoutCancel(ctx)
	}
	// The builder's machine is a temporary directory, reached through a
	// local communicator offered as c1 while hook/run is in flight.
	machine, err := os.MkdirTemp("", "fixture-machine-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(machine)
	f.mu.Lock()
	f.comm = localcomm.New(machine)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.comm = nil
		f.mu.Unlock()
	}()
	if err := conn.Call(hookCtx, protocol.MethodHookRun, protocol.HookRunParams{Name: protocol.HookProvision, Communicator: "c1", Data: map[string]any{"ID": "fixture"}}, nil); err != nil {
		if !errors.Is(err, protocol.ErrUnsupported) || f.mode == "hook-unsupported-fails" {
			return nil, err
		}
	}
	wait := 100 * time.Millisecond
	if d, err := time.ParseDuration(inst.cfg.Wait); err == nil {
		wait = d
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(wait):
	}
	if f.mode == "builder-fails" {
		return nil, protocol.ErrComponentFailed.WithMessage("fixture builder fails")
	}
	f.mu.Lock()
	h := f.mint("a")
	f.artifacts[h] = true
	f.mu.Unlock()
	return protocol.BuilderRunResult{Artifact: &protocol.Artifact{Handle: h, BuilderID: "fixture.builder", ID: "fixture", Files: []string{}, String: "fixture artifact"}}, nil
}

// provision uses every file operation of the host's communicator.
func (f *fixture) provision(ctx context.Context, conn *protocol.Conn, comm string) error {
	var out bytes.Buffer
	h, release := conn.OfferWriter(&out, nil)
	var res protocol.CommStartResult
	err := conn.Call(ctx, protocol.MethodCommStart, protocol.CommStartParams{Communicator: comm, Command: "echo fixture", Stdout: h}, &res)
	release()
	if err != nil {
		return err
	}
	if res.ExitStatus != 0 || out.String() != "fixture\n" {
		return protocol.ErrComponentFailed.WithMessage("echo: exit %d, output %q", res.ExitStatus, out.String())
	}
	conn.Notify(ctx, protocol.MethodUIMessage, protocol.UIMessageParams{Message: strings.TrimSpace(out.String())})
	src, release := conn.OfferReader(strings.NewReader("uploaded by the fixture"), nil)
	err = conn.Call(ctx, protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: comm, Path: "dir/fixture.txt", Source: src, Size: -1}, nil)
	release()
	if err != nil {
		return err
	}
	var back bytes.Buffer
	sink, release := conn.OfferWriter(&back, nil)
	err = conn.Call(ctx, protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: comm, Path: "dir/fixture.txt", Sink: sink}, nil)
	release()
	if err != nil {
		return err
	}
	if back.String() != "uploaded by the fixture" {
		return protocol.ErrComponentFailed.WithMessage("download returned %q", back.String())
	}
	if f.mode == "provisioner-fails" {
		return protocol.ErrComponentFailed.WithMessage("fixture provisioner fails")
	}
	return nil
}
