package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// drainWait bounds how long the host waits, once the plugin process is gone,
// for its stdout and stderr to reach end of file before closing them, and how
// long it waits for a plugin whose stdout ended to exit.
const drainWait = time.Second

type phase int

const (
	running phase = iota
	closing       // Close has started
	broken        // the plugin died, was killed or broke the protocol
)

// Plugin is a running plugin after a successful handshake. Its methods are
// safe for concurrent use, except that Close and Kill must not be called from
// a callback (UI, Hook, Communicator) of the same plugin.
type Plugin struct {
	opts Options
	name string
	info protocol.InitializeResult
	conn *protocol.Conn

	// Process-backed plugins only (nil after Connect).
	cmd        *exec.Cmd
	stdin      io.Closer     // the write end of the plugin's stdin
	stderr     *os.File      // the read end of the plugin's stderr
	stderrDone chan struct{} // closed when the stderr forwarder returns
	procDone   chan struct{} // closed when cmd.Wait has returned

	tail stderrTail

	exited      chan struct{} // see Exited
	monitorDone chan struct{}
	closingCh   chan struct{}
	wg          sync.WaitGroup

	mu     sync.Mutex
	phase  phase
	killed bool
	broke  *PluginError // why the plugin is unusable, once phase is broken

	closeOnce sync.Once
	closeErr  error

	commMu   sync.Mutex
	nextComm uint64
	comms    map[string]Communicator

	hooks hookState
}

func newPlugin(opts Options, cmd *exec.Cmd) *Plugin {
	return &Plugin{
		opts:        opts,
		name:        opts.Name,
		cmd:         cmd,
		exited:      make(chan struct{}),
		monitorDone: make(chan struct{}),
		closingCh:   make(chan struct{}),
		comms:       map[string]Communicator{},
	}
}

// Start starts the plugin command and performs the handshake. cmd must not
// have been started and must leave Stdin, Stdout and Stderr nil: the host
// creates the pipes. cmd.Env (or the host's environment when it is nil) is
// given the magic cookie. The child runs in its own process group.
//
// ctx bounds the start and the handshake only (as does
// [Options.HandshakeTimeout]); once Start has returned, cancelling it has no
// effect. On any failure the process is killed and reaped, and the error is a
// [*PluginError].
func Start(ctx context.Context, cmd *exec.Cmd, opts Options) (*Plugin, error) {
	opts = opts.withDefaults(cmd)
	fail := func(err error) (*Plugin, error) {
		return nil, &PluginError{Plugin: opts.Name, Op: "start", Err: err}
	}
	if cmd.Process != nil {
		return fail(errors.New("command already started"))
	}
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		return fail(errors.New("cmd.Stdin, Stdout and Stderr must be nil: the host owns the plugin's pipes"))
	}
	cmd.Env = append(cmd.Environ(), protocol.EnvMagicCookie+"="+protocol.MagicCookieValue)

	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return fail(err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return fail(err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return fail(err)
	}
	growPipe(inW)
	growPipe(outR)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	setGroup(cmd)
	err = cmd.Start()
	// The child has its own copies; the host keeps only its ends, so that
	// it sees end of file when the child (and its children) are gone.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return fail(err)
	}

	p := newPlugin(opts, cmd)
	p.stdin = inW
	p.stderr = errR
	p.stderrDone = make(chan struct{})
	p.procDone = make(chan struct{})
	p.exited = p.procDone
	go func() {
		cmd.Wait() //nolint:errcheck // the state is read from cmd.ProcessState
		close(p.procDone)
	}()
	go func() {
		defer close(p.stderrDone)
		forwardStderr(errR, opts.Stderr, opts.Name, &p.tail, opts.Redactor)
	}()
	p.conn = protocol.NewConn(outR, inW, closers{inW, outR}, protocol.HandlerFunc(p.handle), p.connOptions())
	go p.monitor()
	if err := p.handshake(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Connect speaks to a plugin over r and w without a process, for in-process
// harnesses; Close closes c, which should close r and w. It performs the
// handshake like [Start]. [Plugin.Exited] is closed when the connection has
// closed; [Plugin.Kill] closes the connection.
func Connect(ctx context.Context, r io.Reader, w io.Writer, c io.Closer, opts Options) (*Plugin, error) {
	opts = opts.withDefaults(nil)
	p := newPlugin(opts, nil)
	p.conn = protocol.NewConn(r, w, c, protocol.HandlerFunc(p.handle), p.connOptions())
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-p.conn.Done()
		close(p.exited)
	}()
	go p.monitor()
	if err := p.handshake(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		if err := c.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Plugin) connOptions() protocol.Options {
	return protocol.Options{
		Strict:      true,
		Tracer:      p.opts.Tracer.WithPeer(p.name),
		Logger:      log.New(connLog{p}, "", 0),
		CancelGrace: p.opts.CancelGrace,
		MaxHandlers: p.opts.MaxCallbacks,
	}
}

// connLog receives the connection's diagnostics and writes them to
// Options.Stderr, marked as the host's. A protocol violation is not among
// them: the connection ends on it and [protocol.Conn.Err] says why.
type connLog struct{ p *Plugin }

func (l connLog) Write(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "jsonrpc2: protocol error") {
		return len(b), nil // the reason is reported by Conn.Err
	}
	if w := l.p.opts.Stderr; w != nil {
		stderrMu.Lock()
		fmt.Fprintf(w, "%s: [host] %s\n", l.p.name, s)
		stderrMu.Unlock()
	}
	return len(b), nil
}

// Info returns the plugin's answer to initialize.
func (p *Plugin) Info() protocol.InitializeResult { return p.info }

// Components returns the components the plugin serves.
func (p *Plugin) Components() []protocol.Component { return slices.Clone(p.info.Components) }

// Exited returns a channel that is closed when the plugin process has exited
// and been reaped (after [Connect]: when the connection has closed).
func (p *Plugin) Exited() <-chan struct{} { return p.exited }

// VersionError reports that the host and the plugin share no protocol version.
type VersionError struct {
	Plugin         string
	PluginVersions []int // what the plugin speaks
	HostVersions   []int // what the host offered
	Err            error // the plugin's answer, [protocol.ErrUnsupportedVersion]
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("plugin %s speaks protocol versions %v, this host speaks %v: install a build of the plugin for one of the host's versions, or a packer that speaks one of the plugin's",
		e.Plugin, e.PluginVersions, e.HostVersions)
}

// Unwrap returns Err.
func (e *VersionError) Unwrap() error { return e.Err }

func (p *Plugin) handshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.HandshakeTimeout)
	defer cancel()
	params := protocol.InitializeParams{
		ProtocolVersions: p.opts.ProtocolVersions,
		Host:             p.opts.HostInfo,
		Limits:           protocol.Limits{MaxMessageSize: protocol.DefaultMaxMessageSize},
		Capabilities:     p.opts.Capabilities,
	}
	var res protocol.InitializeResult
	done := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// Not under ctx: on timeout the plugin is killed rather than asked
		// to cancel, so that the wait is not stretched by CancelGrace.
		done <- p.conn.Call(context.Background(), protocol.MethodInitialize, params, &res)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		cause := ctx.Err()
		if errors.Is(cause, context.DeadlineExceeded) {
			cause = fmt.Errorf("%w: no answer to initialize within %v", ErrTimeout, p.opts.HandshakeTimeout)
		}
		return p.abort(&PluginError{Plugin: p.name, Op: protocol.MethodInitialize, Err: cause})
	}
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) && errors.Is(pe, protocol.ErrUnsupportedVersion) {
			var d protocol.UnsupportedVersionData
			json.Unmarshal(pe.Data, &d) //nolint:errcheck // an empty list still reads well
			err = &VersionError{Plugin: p.name, PluginVersions: d.Supported, HostVersions: p.opts.ProtocolVersions, Err: pe}
		}
		perr, _ := p.callErr(protocol.MethodInitialize, err).(*PluginError)
		return p.abort(perr)
	}
	if err := validateInit(&res, p.opts.ProtocolVersions); err != nil {
		return p.abort(&PluginError{Plugin: p.name, Op: protocol.MethodInitialize, Err: err})
	}
	p.info = res
	p.conn.SetLimits(protocol.DefaultMaxMessageSize, res.Limits.MaxMessageSize)
	p.conn.SetProtocolVersion(res.ProtocolVersion)
	return nil
}

// abort ends a plugin whose start failed and returns perr completed with how
// the process ended.
func (p *Plugin) abort(perr *PluginError) error {
	p.Kill()
	p.Close() //nolint:errcheck // perr says what went wrong
	if perr.Exit == "" {
		perr.Exit = p.exitString()
	}
	if perr.StderrTail == nil {
		perr.StderrTail = p.tail.get()
	}
	return perr
}

var componentName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func validateInit(res *protocol.InitializeResult, offered []int) error {
	var problems []string
	if !slices.Contains(offered, res.ProtocolVersion) {
		problems = append(problems, fmt.Sprintf("it chose protocol version %d, which was not offered (offered %v)", res.ProtocolVersion, offered))
	}
	if res.Limits.MaxMessageSize < protocol.MinMaxMessageSize {
		problems = append(problems, fmt.Sprintf("its max_message_size %d is below the minimum %d", res.Limits.MaxMessageSize, protocol.MinMaxMessageSize))
	}
	seen := map[[2]string]bool{}
	for i, c := range res.Components {
		switch c.Type {
		case protocol.TypeBuilder, protocol.TypeProvisioner, protocol.TypePostProcessor:
		case protocol.TypeDatasource:
			if len(c.OutputSchema) == 0 {
				problems = append(problems, fmt.Sprintf("data source %d (%q) has no output_schema", i, c.Name))
			}
		default:
			problems = append(problems, fmt.Sprintf("component %d (%q) has unknown type %q", i, c.Name, c.Type))
		}
		if !componentName.MatchString(c.Name) {
			problems = append(problems, fmt.Sprintf("component %d has invalid name %q", i, c.Name))
		}
		key := [2]string{c.Type, c.Name}
		if seen[key] {
			problems = append(problems, fmt.Sprintf("%s %q is listed twice", c.Type, c.Name))
		}
		seen[key] = true
		var schema map[string]any
		if err := json.Unmarshal(c.ConfigSchema, &schema); err != nil {
			problems = append(problems, fmt.Sprintf("%s %q has a config_schema that is not a JSON object", c.Type, c.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrBadHandshake, strings.Join(problems, "; "))
	}
	return nil
}

// monitor watches for the plugin dying or breaking the protocol while no
// Close is under way, and then kills what is left and records why.
func (p *Plugin) monitor() {
	defer close(p.monitorDone)
	exitedFirst := false
	select {
	case <-p.conn.Done():
	case <-p.procDone: // nil after Connect
		exitedFirst = true
	case <-p.closingCh:
		return
	}
	p.mu.Lock()
	if p.phase != running {
		p.mu.Unlock()
		return
	}
	p.phase = broken
	p.mu.Unlock()

	cause, violation := p.cause(exitedFirst)
	p.teardown(violation)
	p.mu.Lock()
	p.broke = &PluginError{Plugin: p.name, Err: cause, Exit: p.exitString(), StderrTail: p.tail.get()}
	p.mu.Unlock()
}

// cause says why the plugin became unusable, and whether it broke the protocol.
func (p *Plugin) cause(exitedFirst bool) (error, bool) {
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	if killed {
		return ErrKilled, false
	}
	if violation := p.violation(); violation != nil {
		return violation, true
	}
	if exitedFirst {
		return ErrExited, false
	}
	err := p.conn.Err()
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return ErrExited, false
	default:
		return fmt.Errorf("%w: %w", ErrExited, err), false
	}
}

// violation returns the protocol violation that ended the connection, as
// an error wrapping [ErrProtocolViolation] and the *protocol.ViolationError,
// or nil when it is open or ended otherwise.
func (p *Plugin) violation() error {
	err := p.conn.Err()
	var ve *protocol.ViolationError
	if !errors.As(err, &ve) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrProtocolViolation, err)
}

// teardown ends the process (at once when killNow, else after it had
// drainWait to exit by itself), reaps it, kills what is left of its group,
// and closes the host's ends of the pipes once they are drained.
func (p *Plugin) teardown(killNow bool) {
	if p.cmd != nil {
		if killNow {
			killGroup(p.cmd)
		} else {
			t := time.NewTimer(drainWait)
			select {
			case <-p.procDone:
			case <-t.C:
				killGroup(p.cmd)
			}
			t.Stop()
		}
		<-p.procDone
		p.finishProcess()
	}
	p.conn.Close()
}

// finishProcess runs once the plugin process is reaped: it kills anything
// left in its group (a grandchild holding the pipes open) and waits, bounded,
// for stdout and stderr to end so that nothing the plugin wrote is lost.
func (p *Plugin) finishProcess() {
	killGroup(p.cmd)
	t := time.NewTimer(drainWait)
	defer t.Stop()
	timedOut := false
	select {
	case <-p.conn.Done():
	case <-t.C:
		timedOut = true
	}
	if !timedOut {
		select {
		case <-p.stderrDone:
		case <-t.C:
		}
	}
	p.stderr.Close() // unblocks the forwarder if a straggler still holds the pipe
	<-p.stderrDone
}

func (p *Plugin) exitString() string {
	if p.cmd == nil || p.procDone == nil {
		return ""
	}
	select {
	case <-p.procDone:
		return p.cmd.ProcessState.String()
	default:
		return ""
	}
}

// callErr turns the error of a call into a *PluginError, telling why the
// connection closed when it did.
func (p *Plugin) callErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, protocol.ErrConnClosed) {
		select {
		case <-p.monitorDone:
		case <-p.closingCh:
		}
		p.mu.Lock()
		b := p.broke
		p.mu.Unlock()
		if b != nil {
			return b.withOp(op)
		}
		return &PluginError{Plugin: p.name, Op: op, Err: fmt.Errorf("%w: %w", ErrClosed, err)}
	}
	return &PluginError{Plugin: p.name, Op: op, Err: err}
}

// Kill kills the plugin's process group at once with SIGKILL (after
// [Connect]: closes the connection). It does not wait; calls in flight return
// a *PluginError wrapping [ErrKilled]. Call Close afterwards to release
// everything.
func (p *Plugin) Kill() {
	p.mu.Lock()
	if p.phase == running {
		p.killed = true
	}
	p.mu.Unlock()
	if p.cmd != nil {
		killGroup(p.cmd)
	} else {
		p.conn.Close()
	}
}

// Close shuts the plugin down gracefully: it sends shutdown (waiting at most
// ShutdownGrace for the answer), closes the plugin's stdin, waits
// ShutdownGrace for the process to exit, then sends SIGTERM to its process
// group, waits KillGrace, and sends SIGKILL. It always reaps the process,
// kills what is left of its group, closes every pipe and waits for the
// host's goroutines of this plugin.
//
// Close is idempotent. It returns nil when the plugin exited by itself with
// status 0, and otherwise a *PluginError saying how it ended: wrapping
// [ErrTimeout] when it had to be signalled, the cause when it had died or
// broken the protocol before, [ErrExited] for a non-zero exit status.
func (p *Plugin) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.close() })
	return p.closeErr
}

func (p *Plugin) close() error {
	p.mu.Lock()
	ph := p.phase
	if ph == running {
		p.phase = closing
		close(p.closingCh)
	}
	killed := p.killed
	p.mu.Unlock()

	if ph == broken {
		<-p.monitorDone
		p.conn.Wait()
		p.wg.Wait()
		p.mu.Lock()
		b := p.broke.withOp("close")
		p.broke = &PluginError{Plugin: p.name, Err: ErrClosed}
		p.mu.Unlock()
		return b
	}

	var problems []error
	if !killed {
		if err := p.shutdown(); err != nil {
			problems = append(problems, err)
		}
	}
	signalled := ""
	if p.cmd != nil {
		p.stdin.Close()
		t := time.NewTimer(p.opts.ShutdownGrace)
		select {
		case <-p.procDone:
		case <-t.C:
			terminateGroup(p.cmd)
			signalled = "SIGTERM"
			t.Reset(p.opts.KillGrace)
			select {
			case <-p.procDone:
			case <-t.C:
				killGroup(p.cmd)
				signalled = "SIGTERM, then SIGKILL"
			}
		}
		t.Stop()
		<-p.procDone
		p.finishProcess()
	}
	p.conn.Close()
	p.conn.Wait()
	p.wg.Wait()
	p.mu.Lock()
	p.broke = &PluginError{Plugin: p.name, Err: ErrClosed}
	p.mu.Unlock()
	// A violation seen while closing (a duplicate answer read after Close
	// began, when the monitor no longer watches) is reported too: the
	// connection's first cause is kept, and every line the plugin wrote
	// before it exited has been read by now, so this does not depend on
	// timing.
	if violation := p.violation(); violation != nil {
		problems = append([]error{violation}, problems...)
	}

	exit := p.exitString()
	switch {
	case killed:
		problems = append([]error{ErrKilled}, problems...)
	case signalled != "":
		problems = append(problems, fmt.Errorf("%w: it did not exit within %v of shutdown; the host sent %s", ErrTimeout, p.opts.ShutdownGrace, signalled))
	case p.cmd != nil && !p.cmd.ProcessState.Success():
		problems = append(problems, ErrExited)
	}
	if len(problems) == 0 {
		return nil
	}
	var tail []string
	if p.cmd != nil && !p.cmd.ProcessState.Success() {
		tail = p.tail.get()
	}
	return &PluginError{Plugin: p.name, Op: "close", Err: errors.Join(problems...), Exit: exit, StderrTail: tail}
}

// shutdown sends shutdown and waits at most ShutdownGrace for the answer.
// It does not cancel the request on timeout: the process is about to be
// ended anyway.
func (p *Plugin) shutdown() error {
	done := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		done <- p.conn.Call(context.Background(), protocol.MethodShutdown, nil, nil) // no params member (SPEC §9.1)
	}()
	t := time.NewTimer(p.opts.ShutdownGrace)
	defer t.Stop()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, protocol.ErrConnClosed) {
			return nil // a plugin that exits without answering is fine
		}
		return fmt.Errorf("shutdown: %w", err)
	case <-t.C:
		return nil // escalation below says what happened
	}
}
