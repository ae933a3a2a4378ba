package pluginkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"reflect"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// WorkGrace bounds how long shutdown and end of input wait for cancelled
// component methods to return.
const WorkGrace = 5 * time.Second

// shutdownLinger bounds how long ServeConn waits, after answering shutdown,
// for the host to close its end.
const shutdownLinger = 2 * time.Second

// Server serves registered components over one or more connections. It is
// the testable core of [Serve]; in-process harnesses use it directly.
// Register every component before the first call to ServeConn.
type Server struct {
	info protocol.Peer

	mu         sync.Mutex
	components []*registration
}

type registration struct {
	typ, name string
	value     any // a Builder, Provisioner, PostProcessor or Datasource
	schema    *configSchema
	output    json.RawMessage // a Datasource's output_schema
}

// NewServer returns a Server that presents itself in the handshake as info
// (plugin name and version). An empty info.Version is filled in when the
// server is served, as described at [Version].
func NewServer(info protocol.Peer) *Server {
	return &Server{info: info}
}

// peer returns the name and version the server presents.
func (s *Server) peer() protocol.Peer {
	p := s.info
	if p.Version == "" {
		p.Version = defaultVersion()
	}
	return p
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func (s *Server) register(typ, name string, v Configurable) {
	if !namePattern.MatchString(name) {
		panic(fmt.Sprintf("pluginkit: %s name %q must match %s", typ, name, namePattern))
	}
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		panic(fmt.Sprintf("pluginkit: %s %q is nil", typ, name))
	}
	sch, err := reflectSchema(v.Config())
	if err != nil {
		panic(fmt.Sprintf("pluginkit: %s %q: %v", typ, name, err))
	}
	var output json.RawMessage
	if d, ok := v.(Datasource); ok && typ == protocol.TypeDatasource {
		if output, err = reflectOutput(d.Output()); err != nil {
			panic(fmt.Sprintf("pluginkit: %s %q: %v", typ, name, err))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.components {
		if r.typ == typ && r.name == name {
			panic(fmt.Sprintf("pluginkit: %s %q registered twice", typ, name))
		}
	}
	s.components = append(s.components, &registration{typ: typ, name: name, value: v, schema: sch, output: output})
}

// RegisterBuilder adds a builder named name. It panics if the name is not
// lower-case letters, digits, ".", "_" and "-", is already taken, or if
// b.Config does not return a pointer to a struct.
//
// Each component/prepare works on a fresh instance: when b is a pointer to a
// struct, the instance is a shallow copy of the struct b points to, so
// fields set before registering (clients, defaults) are shared by every
// instance while the configuration decoded into it is the instance's own.
// Maps and slices in the copy share their backing store with b's; decoding
// replaces slices but adds to maps, so give map-typed config fields no
// value before registering. Any other b is used as is by every instance.
func (s *Server) RegisterBuilder(name string, b Builder) { s.register(protocol.TypeBuilder, name, b) }

// RegisterProvisioner adds a provisioner; see [Server.RegisterBuilder].
func (s *Server) RegisterProvisioner(name string, p Provisioner) {
	s.register(protocol.TypeProvisioner, name, p)
}

// RegisterPostProcessor adds a post-processor; see [Server.RegisterBuilder].
func (s *Server) RegisterPostProcessor(name string, p PostProcessor) {
	s.register(protocol.TypePostProcessor, name, p)
}

func (s *Server) lookup(typ, name string) (*registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var have []string
	for _, r := range s.components {
		if r.typ == typ && r.name == name {
			return r, nil
		}
		have = append(have, r.typ+" "+r.name)
	}
	return nil, protocol.ErrUnknownComponent.WithMessage("no %s %q; this plugin serves: %s", typ, name, strings.Join(have, ", "))
}

func (s *Server) describe() []protocol.Component {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]protocol.Component, len(s.components))
	for i, r := range s.components {
		out[i] = protocol.Component{Type: r.typ, Name: r.name, ConfigSchema: r.schema.raw, OutputSchema: r.output}
	}
	return out
}

// newInstance returns the value a prepare configures: a shallow copy of
// the struct v points to, or v itself.
func newInstance(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		n := reflect.New(rv.Elem().Type())
		n.Elem().Set(rv.Elem())
		return n.Interface()
	}
	return v
}

// ServeConn serves the protocol on one connection, reading requests from r
// and writing answers to w; closing c must close r and w. logger receives
// pluginkit's diagnostics and the stacks of recovered panics; nil discards
// them. The connection is lenient: malformed lines are answered and skipped.
//
// ServeConn blocks until the connection ends:
//
//   - after shutdown: in-flight component methods are cancelled and waited
//     for (at most [WorkGrace]), shutdown is answered, later requests get
//     [protocol.ErrShuttingDown], and ServeConn returns nil once the host
//     closes its end (or at most two seconds after the answer);
//   - at end of input: in-flight methods are cancelled, waited for (at most
//     WorkGrace), and ServeConn returns nil;
//   - when ctx is done: the same, returning ctx.Err();
//   - on any other read error: the same, returning that error.
//
// A component method that ignores cancellation for longer than WorkGrace is
// abandoned: its goroutine keeps running, and its answer is never sent.
func (s *Server) ServeConn(ctx context.Context, r io.Reader, w io.Writer, c io.Closer, logger *log.Logger) error {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	sess := &session{
		srv:        s,
		logger:     logger,
		instances:  map[string]*instance{},
		artifacts:  map[string]Artifact{},
		comms:      map[string]Communicator{},
		shutdownCh: make(chan struct{}),
	}
	sess.workCtx, sess.cancelWork = context.WithCancel(context.Background())
	defer sess.cancelWork()
	// The gate holds back reading until sess.conn is set: the connection
	// starts reading inside NewConn, and sess's handlers use sess.conn.
	gate := make(chan struct{})
	sess.conn = protocol.NewConn(gatedReader{r, gate}, w, c, sess, protocol.Options{Logger: logger})
	close(gate)
	conn := sess.conn

	var result error
	select {
	case <-sess.shutdownCh:
		select {
		case <-conn.Done():
		case <-time.After(shutdownLinger):
			logger.Printf("host did not close the connection within %v of shutdown", shutdownLinger)
		case <-ctx.Done():
		}
	case <-conn.Done():
		if err := conn.Err(); !errors.Is(err, io.EOF) {
			result = fmt.Errorf("reading from host: %w", err)
		}
	case <-ctx.Done():
		result = ctx.Err()
	}
	finished := sess.stop()
	conn.Close()
	if finished {
		conn.Wait()
	}
	return result
}

// session is the state of one connection.
type session struct {
	srv    *Server
	conn   *protocol.Conn
	logger *log.Logger

	workCtx    context.Context // cancelled at shutdown and when the connection ends
	cancelWork context.CancelFunc
	work       sync.WaitGroup
	shutdownCh chan struct{}

	mu           sync.Mutex
	initialized  bool
	shuttingDown bool
	hostCaps     protocol.HostCapabilities
	next         map[byte]uint64
	instances    map[string]*instance
	artifacts    map[string]Artifact
	comms        map[string]Communicator
}

type instance struct {
	typ   string
	value any
}

// mint returns a new handle with the given prefix. s.mu must be held.
func (s *session) mint(prefix byte) string {
	if s.next == nil {
		s.next = map[byte]uint64{}
	}
	s.next[prefix]++
	return string(prefix) + strconv.FormatUint(s.next[prefix], 10)
}

// stop refuses new work, cancels what runs and waits for it at most
// WorkGrace. It reports whether everything finished.
func (s *session) stop() bool {
	s.mu.Lock()
	s.shuttingDown = true
	s.mu.Unlock()
	s.cancelWork()
	done := make(chan struct{})
	go func() {
		s.work.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(WorkGrace):
		s.logger.Printf("component methods still running %v after cancellation; abandoning them", WorkGrace)
		return false
	}
}

// Handle implements protocol.Handler.
func (s *session) Handle(ctx context.Context, req *protocol.Request) (any, error) {
	if req.Notification {
		s.logger.Printf("ignoring notification %s", req.Method)
		return nil, nil
	}
	s.mu.Lock()
	switch {
	case s.shuttingDown:
		// After shutdown every request, initialize included, is refused
		// with the same code (SPEC §9.1).
		s.mu.Unlock()
		return nil, protocol.ErrShuttingDown.WithMessage("%s after shutdown", req.Method)
	case req.Method == protocol.MethodInitialize:
		s.mu.Unlock()
		return s.initialize(req)
	case !s.initialized:
		s.mu.Unlock()
		return nil, protocol.ErrNotInitialized.WithMessage("%s before initialize", req.Method)
	case req.Method == protocol.MethodShutdown:
		if err := shutdownParams(req); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.shuttingDown = true
		s.mu.Unlock()
		s.stop()
		close(s.shutdownCh)
		return nil, nil
	}
	s.work.Add(1)
	s.mu.Unlock()
	defer s.work.Done()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.workCtx, cancel)()

	switch req.Method {
	case protocol.MethodPrepare:
		return s.prepare(req)
	case protocol.MethodBuilderRun:
		return s.builderRun(wctx, req)
	case protocol.MethodProvision:
		return s.provision(wctx, req)
	case protocol.MethodPostProcess:
		return s.postProcess(wctx, req)
	case protocol.MethodArtifactDestroy:
		return s.destroyArtifact(wctx, req)
	case protocol.MethodDatasourceExecute:
		return s.datasourceExecute(wctx, req)
	case protocol.MethodCommStart, protocol.MethodCommUpload, protocol.MethodCommDownload,
		protocol.MethodCommUploadDir, protocol.MethodCommDownloadDir:
		return s.serveComm(wctx, req)
	}
	return nil, protocol.ErrMethodNotFound.WithMessage("%s", req.Method)
}

func (s *session) initialize(req *protocol.Request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initialized {
		return nil, protocol.ErrInvalidRequest.WithMessage("initialize was already called on this connection")
	}
	var p protocol.InitializeParams
	if err := decodeParams(req, &p); err != nil {
		return nil, err
	}
	version := 0
	for _, v := range p.ProtocolVersions {
		for _, sv := range protocol.SupportedVersions {
			if v == sv && version == 0 {
				version = v
			}
		}
	}
	if version == 0 {
		return nil, protocol.ErrUnsupportedVersion.
			WithMessage("host offers %v, plugin speaks %v", p.ProtocolVersions, protocol.SupportedVersions).
			WithData(protocol.UnsupportedVersionData{Supported: protocol.SupportedVersions})
	}
	s.initialized = true
	s.hostCaps = p.Capabilities
	s.conn.SetLimits(protocol.DefaultMaxMessageSize, p.Limits.MaxMessageSize)
	s.conn.SetProtocolVersion(version)
	return protocol.InitializeResult{
		ProtocolVersion: version,
		Plugin:          s.srv.peer(),
		Components:      s.srv.describe(),
		Limits:          protocol.Limits{MaxMessageSize: protocol.DefaultMaxMessageSize},
		Capabilities:    protocol.PluginCapabilities{Cancel: true},
	}, nil
}

func (s *session) prepare(req *protocol.Request) (any, error) {
	var p protocol.PrepareParams
	if err := decodeParams(req, &p); err != nil {
		return nil, err
	}
	reg, err := s.srv.lookup(p.Type, p.Name)
	if err != nil {
		return nil, err
	}
	merged, err := mergeConfigs(p.Configs)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		return nil, protocol.ErrInvalidParams.WithMessage("%s: %v", req.Method, err)
	}
	cerrs, err := reg.schema.validate(raw)
	if err != nil {
		return nil, protocol.ErrInvalidParams.WithMessage("%s: %v", req.Method, err)
	}
	if len(cerrs) > 0 {
		return nil, configInvalid(cerrs, nil)
	}
	var inst Configurable
	var warnings []string
	err = s.protect("prepare", func() error {
		inst = newInstance(reg.value).(Configurable)
		if err := json.Unmarshal(raw, inst.Config()); err != nil {
			return ConfigErrors{{Message: err.Error()}}
		}
		var err error
		warnings, err = inst.Prepare()
		return err
	})
	if warnings == nil {
		warnings = []string{}
	}
	if err != nil {
		if errors.Is(err, protocol.ErrComponentPanicked) {
			return nil, err
		}
		return nil, configInvalid(configErrorsOf(err), warnings)
	}
	s.mu.Lock()
	h := s.mint('i')
	s.instances[h] = &instance{typ: p.Type, value: inst}
	s.mu.Unlock()
	return protocol.PrepareResult{Instance: h, Warnings: warnings}, nil
}

func configInvalid(errs []ConfigError, warnings []string) error {
	if warnings == nil {
		warnings = []string{}
	}
	return protocol.ErrConfigInvalid.WithMessage("%s", configSummary(errs)).
		WithData(protocol.ConfigInvalidData{Errors: errs, Warnings: warnings})
}

// configSummary is the message of a -32003 answer: the first error and how
// many more data.errors lists, so the message does not repeat every path
// the data already carries (issue #12 item 1).
func configSummary(errs []ConfigError) string {
	first := ConfigErrors(errs[:min(1, len(errs))]).Error()
	if len(errs) > 1 {
		return fmt.Sprintf("%s (and %d more; data.errors lists them all)", first, len(errs)-1)
	}
	return first
}

func (s *session) instance(handle, typ string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.instances[handle]
	if inst == nil {
		return nil, protocol.ErrUnknownHandle.WithMessage("no instance %q", handle)
	}
	if inst.typ != typ {
		return nil, protocol.ErrUnknownHandle.WithMessage("instance %q is a %s, not a %s", handle, inst.typ, typ)
	}
	return inst.value, nil
}

// protect runs f, turning a panic into ErrComponentPanicked after writing
// the value and stack to the logger's output.
func (s *session) protect(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(s.logger.Writer(), "panic: %v\n\n%s\n", v, debug.Stack())
			err = protocol.ErrComponentPanicked.WithMessage("%s: %v", what, v).
				WithData(protocol.PanicData{Value: fmt.Sprint(v)})
		}
	}()
	return f()
}

// componentError maps an error returned by component code to its answer.
// Any error after ctx was cancelled is a cancellation: it wraps
// context.Canceled, which the connection answers with ErrCancelled when the
// host cancelled, and otherwise carries ErrCancelled itself.
func componentError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, protocol.ErrComponentPanicked) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", protocol.ErrCancelled.WithMessage("%v", err), context.Canceled)
	}
	// A protocol error anywhere in the chain (a hook or a communicator
	// call the host answered with an error) keeps its code, message and
	// data (SPEC §7.3); a code of 0 is no protocol code.
	if pe := (*protocol.Error)(nil); errors.As(err, &pe) && pe.Code != 0 && pe.Code != protocol.CodeComponentFailed {
		if pe == err {
			return pe
		}
		// The message says the whole chain: where the component was and
		// what the peer answered.
		return &protocol.Error{Code: pe.Code, Message: err.Error(), Data: pe.Data}
	}
	return protocol.ErrComponentFailed.WithMessage("%v", err)
}

func (s *session) builderRun(ctx context.Context, req *protocol.Request) (any, error) {
	var p protocol.InstanceParams
	if err := decodeParams(req, &p); err != nil {
		return nil, err
	}
	v, err := s.instance(p.Instance, protocol.TypeBuilder)
	if err != nil {
		return nil, err
	}
	var res protocol.BuilderRunResult
	err = s.protect("builder/run", func() error {
		a, err := v.(Builder).Run(ctx, s.ui(), hook{s})
		if err != nil {
			return err
		}
		res.Artifact = s.publish(a)
		return nil
	})
	if err != nil {
		return nil, componentError(ctx, err)
	}
	return res, nil
}

func (s *session) provision(ctx context.Context, req *protocol.Request) (any, error) {
	var p protocol.ProvisionParams
	if err := decodeParams(req, &p); err != nil {
		return nil, err
	}
	v, err := s.instance(p.Instance, protocol.TypeProvisioner)
	if err != nil {
		return nil, err
	}
	data := p.Data
	if data == nil {
		data = map[string]any{}
	}
	comm := newRemoteComm(s.conn, p.Communicator)
	err = s.protect("provisioner/provision", func() error {
		return v.(Provisioner).Provision(ctx, s.ui(), comm, data)
	})
	return nil, componentError(ctx, err)
}

func (s *session) postProcess(ctx context.Context, req *protocol.Request) (any, error) {
	var p protocol.PostProcessParams
	if err := decodeParams(req, &p); err != nil {
		return nil, err
	}
	v, err := s.instance(p.Instance, protocol.TypePostProcessor)
	if err != nil {
		return nil, err
	}
	var res protocol.PostProcessResult
	err = s.protect("postprocessor/postprocess", func() error {
		out, keep, force, err := v.(PostProcessor).PostProcess(ctx, s.ui(), &inputArtifact{p.Artifact})
		if err != nil {
			return err
		}
		res = protocol.PostProcessResult{Artifact: s.publish(out), Keep: keep, ForceOverride: force}
		return nil
	})
	if err != nil {
		return nil, componentError(ctx, err)
	}
	return res, nil
}

func (s *session) destroyArtifact(ctx context.Context, req *protocol.Request) (any, error) {
	var p protocol.ArtifactDestroyParams
	if err := decodeParams(req, &p); err != nil {
		return nil, err
	}
	s.mu.Lock()
	a := s.artifacts[p.Artifact]
	s.mu.Unlock()
	if a == nil {
		return nil, protocol.ErrUnknownHandle.WithMessage("no artifact %q", p.Artifact)
	}
	err := s.protect("artifact/destroy", func() error { return a.Destroy(ctx) })
	if err != nil {
		return nil, componentError(ctx, err)
	}
	s.mu.Lock()
	delete(s.artifacts, p.Artifact)
	s.mu.Unlock()
	return nil, nil
}

// publish mints a handle for an artifact made here and returns its wire
// form; nil stays nil. An input artifact passed through gets no handle.
func (s *session) publish(a Artifact) *protocol.Artifact {
	if a == nil {
		return nil
	}
	if rv := reflect.ValueOf(a); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	if in, ok := a.(*inputArtifact); ok {
		w := in.a
		w.Handle = ""
		return &w
	}
	files := a.Files()
	if files == nil {
		files = []string{}
	}
	w := &protocol.Artifact{BuilderID: a.BuilderID(), ID: a.ID(), Files: files, String: a.String(), State: a.State()}
	s.mu.Lock()
	w.Handle = s.mint('a')
	s.artifacts[w.Handle] = a
	s.mu.Unlock()
	return w
}

// inputArtifact is an artifact made by another process, as a post-processor
// receives it.
type inputArtifact struct{ a protocol.Artifact }

func (a *inputArtifact) BuilderID() string     { return a.a.BuilderID }
func (a *inputArtifact) ID() string            { return a.a.ID }
func (a *inputArtifact) Files() []string       { return a.a.Files }
func (a *inputArtifact) String() string        { return a.a.String }
func (a *inputArtifact) State() map[string]any { return a.a.State }

// Destroy returns ErrUnsupported: the artifact belongs to another process.
func (a *inputArtifact) Destroy(context.Context) error {
	return protocol.ErrUnsupported.WithMessage("artifact %q was made by another plugin; the host destroys it", a.a.ID)
}

// gatedReader blocks reads until gate is closed.
type gatedReader struct {
	r    io.Reader
	gate <-chan struct{}
}

func (g gatedReader) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}
