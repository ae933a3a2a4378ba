package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// maxLine is the most bytes of one stdout line the runner keeps; the rest of
// a longer line is discarded (the line is still recorded with its size).
const maxLine = 16 << 20

// errExited is returned by waits that end because the plugin closed its
// stdout or exited.
var errExited = errors.New("plugin closed its stdout (exited?)")

// session is one plugin process driven through raw lines. The runner is the
// host: it writes requests with sendRaw or call, and a reader goroutine
// sorts what comes back: answers go to the caller waiting for that id (or
// to the inbox), requests and notifications from the plugin go to the
// callback handler, and lines that are not protocol messages are kept as
// violations.
type session struct {
	tr     *transcript
	cmd    *exec.Cmd
	ctx    context.Context // cancelled by kill; bounds callback work
	cancel context.CancelFunc

	stdin  *os.File
	stdout *os.File
	stderr *os.File

	wmu sync.Mutex // one write at a time on stdin

	nextID atomic.Int64

	mu         sync.Mutex
	waiters    map[string]chan *message
	sent       map[string]string // id key → method, for every request sent
	received   []*message        // every valid message, in order
	violations []string          // stdout lines that are not protocol messages
	stderrLog  [][]byte          // every stderr line
	inbox      []*message        // answers nobody waited for
	inboxCh    chan struct{}     // signalled on every inbox append
	host       *hostSide         // serves the plugin's callbacks

	readers  sync.WaitGroup
	eof      chan struct{} // closed when stdout reaches EOF
	exited   chan struct{} // closed when the process has been reaped
	state    *os.ProcessState
	handlers sync.WaitGroup // callback goroutines
}

// startOptions say how to launch the plugin.
type startOptions struct {
	argv     []string
	env      []string // extra variables, after the inherited ones
	noCookie bool     // launch as a person would, without the magic cookie
}

// startSession launches the plugin in its own process group with pipes for
// stdin, stdout and stderr.
func startSession(o startOptions, tr *transcript, host *hostSide) (*session, error) {
	if len(o.argv) == 0 {
		return nil, errors.New("no plugin command")
	}
	cmd := exec.Command(o.argv[0], o.argv[1:]...)
	env := make([]string, 0, len(os.Environ())+len(o.env)+1)
	for _, kv := range os.Environ() {
		if len(kv) > len(protocol.EnvMagicCookie) && kv[:len(protocol.EnvMagicCookie)+1] == protocol.EnvMagicCookie+"=" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, o.env...)
	if !o.noCookie {
		env = append(env, protocol.EnvMagicCookie+"="+protocol.MagicCookieValue)
	}
	cmd.Env = env
	setProcessGroup(cmd)

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
		closeAll()
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start plugin: %w", err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	if o.noCookie {
		tr.notef("started %q without %s (pid %d)", o.argv, protocol.EnvMagicCookie, cmd.Process.Pid)
	} else {
		tr.notef("started %q (pid %d)", o.argv, cmd.Process.Pid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		tr: tr, cmd: cmd, ctx: ctx, cancel: cancel, stdin: inW, stdout: outR, stderr: errR,
		waiters: map[string]chan *message{},
		sent:    map[string]string{},
		inboxCh: make(chan struct{}, 1),
		host:    host,
		eof:     make(chan struct{}),
		exited:  make(chan struct{}),
	}
	host.flow = newFlow2(func(line []byte) error {
		return s.sendRaw(append(append(make([]byte, 0, len(line)+1), line...), '\n'))
	})
	s.nextID.Store(100) // raw probes use ids below 100
	s.readers.Add(2)
	go s.readStdout()
	go s.readStderr()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.state = cmd.ProcessState
		s.mu.Unlock()
		tr.notef("process exited: %v", exitText(cmd.ProcessState, err))
		close(s.exited)
	}()
	return s, nil
}

func exitText(st *os.ProcessState, err error) string {
	if st != nil {
		return st.String()
	}
	return err.Error()
}

// readLine reads one line, keeping at most maxLine bytes of it; size is the
// full length without the newline.
func readLine(r *bufio.Reader) (line []byte, size int, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		size += len(chunk)
		if len(line) < maxLine {
			line = append(line, chunk[:min(len(chunk), maxLine-len(line))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil {
			size--
			if len(line) > 0 && line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			return line, size, nil
		}
		if size > 0 && errors.Is(err, io.EOF) {
			return line, size, io.ErrUnexpectedEOF
		}
		return line, size, err
	}
}

func (s *session) readStdout() {
	defer s.readers.Done()
	defer close(s.eof)
	r := bufio.NewReaderSize(s.stdout, 64<<10)
	for {
		line, size, err := readLine(r)
		if err != nil && size == 0 {
			return
		}
		s.tr.add(Received, line)
		s.handleLine(line, size, err != nil)
		if err != nil {
			return
		}
	}
}

func (s *session) handleLine(line []byte, size int, unterminated bool) {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) == 0 && !unterminated {
		return
	}
	var m *message
	var err error
	switch {
	case unterminated:
		err = errors.New("stdout ended inside a line (no newline)")
	case size > len(line):
		err = fmt.Errorf("line of %d bytes is longer than the runner reads", size)
	default:
		m, err = parseMessage(line)
	}
	if err != nil {
		s.mu.Lock()
		s.violations = append(s.violations, fmt.Sprintf("%v: %s", err, printable(line)))
		s.mu.Unlock()
		return
	}
	if m.isResponse() {
		// Judged here, in the order the lines came: the streams of the
		// runner's request must be finished when its answer arrives.
		s.host.checkFinished(m)
	}
	s.mu.Lock()
	s.received = append(s.received, m)
	if m.isResponse() {
		if ch, ok := s.waiters[m.idKey()]; ok {
			delete(s.waiters, m.idKey())
			s.mu.Unlock()
			ch <- m
			return
		}
		s.inbox = append(s.inbox, m)
		s.mu.Unlock()
		select {
		case s.inboxCh <- struct{}{}:
		default:
		}
		return
	}
	s.mu.Unlock()
	if !m.isRequest() {
		s.host.notify(s, m) // notifications are handled in order, inline
		return
	}
	s.host.preRegister(s, m)
	s.handlers.Add(1)
	go func() {
		defer s.handlers.Done()
		res, werr := s.host.handle(s, m)
		resp := response{JSONRPC: "2.0", ID: m.ID, Result: res, Error: werr}
		if werr == nil && res == nil {
			resp.Result = nullResult{}
		}
		s.writeJSON(resp) // a write error means the plugin is gone
		s.host.answered(m)
	}()
}

func (s *session) readStderr() {
	defer s.readers.Done()
	r := bufio.NewReaderSize(s.stderr, 64<<10)
	for {
		line, size, err := readLine(r)
		if err != nil && size == 0 {
			return
		}
		s.tr.add(Stderr, line)
		s.mu.Lock()
		if len(s.stderrLog) < 10000 {
			s.stderrLog = append(s.stderrLog, line)
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// sendRaw writes b to the plugin's stdin exactly as given.
func (s *session) sendRaw(b []byte) error {
	for _, line := range splitLines(b) {
		s.tr.add(Sent, line)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.stdin.Write(b)
	if err != nil {
		s.tr.notef("write to stdin: %v", err)
	}
	return err
}

// splitLines splits b at newlines for the transcript, dropping the final
// empty piece.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

func (s *session) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.sendRaw(append(b, '\n'))
}

// newID returns a fresh integer id.
func (s *session) newID() json.RawMessage {
	return json.RawMessage(strconv.FormatInt(s.nextID.Add(1), 10))
}

// expect registers that the answer to id should be delivered to the
// returned channel instead of the inbox, and remembers method for schema
// checks.
func (s *session) expect(id json.RawMessage, method string) chan *message {
	ch := make(chan *message, 1)
	s.mu.Lock()
	s.waiters[idKey(id)] = ch
	s.sent[idKey(id)] = method
	s.mu.Unlock()
	return ch
}

// call sends a request with a fresh id and waits for its answer.
func (s *session) call(ctx context.Context, method string, params any) (*message, error) {
	id, ch, err := s.start(method, params)
	if err != nil {
		return nil, err
	}
	return s.await(ctx, id, ch)
}

// start sends a request with a fresh id without waiting.
func (s *session) start(method string, params any) (json.RawMessage, chan *message, error) {
	id := s.newID()
	ch := s.expect(id, method)
	if err := s.writeJSON(request{JSONRPC: "2.0", ID: id, Method: method, Params: params}); err != nil {
		return id, ch, fmt.Errorf("send %s: %w", method, err)
	}
	return id, ch, nil
}

// await waits for the answer registered with expect.
func (s *session) await(ctx context.Context, id json.RawMessage, ch chan *message) (*message, error) {
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer to request %s: %w", id, ctx.Err())
	case <-s.eof:
		// The answer may have been the last line.
		select {
		case m := <-ch:
			return m, nil
		default:
		}
		return nil, fmt.Errorf("no answer to request %s: %w", id, errExited)
	}
}

// notify sends a notification.
func (s *session) notify(method string, params any) error {
	return s.writeJSON(request{JSONRPC: "2.0", Method: method, Params: params})
}

// nextInbox returns the oldest answer nobody waited for.
func (s *session) nextInbox(ctx context.Context) (*message, error) {
	for {
		s.mu.Lock()
		if len(s.inbox) > 0 {
			m := s.inbox[0]
			s.inbox = s.inbox[1:]
			s.mu.Unlock()
			return m, nil
		}
		s.mu.Unlock()
		select {
		case <-s.inboxCh:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for an answer: %w", ctx.Err())
		case <-s.eof:
			s.mu.Lock()
			n := len(s.inbox)
			s.mu.Unlock()
			if n == 0 {
				return nil, fmt.Errorf("waiting for an answer: %w", errExited)
			}
		}
	}
}

// takeInbox removes and returns every answer nobody waited for.
func (s *session) takeInbox() []*message {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inbox
	s.inbox = nil
	return in
}

// waitExit waits up to d for the process to exit.
func (s *session) waitExit(ctx context.Context, d time.Duration) (*os.ProcessState, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.exited:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.state, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// closeStdin closes the plugin's stdin, as a host does to say EOF.
func (s *session) closeStdin() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.tr.notef("closed the plugin's stdin")
	s.stdin.Close()
}

// kill ends the process group, reaps the process and stops the readers.
// It is idempotent.
func (s *session) kill() {
	s.cancel()
	select {
	case <-s.exited:
	default:
		killGroup(s.cmd)
		s.tr.notef("killed the process group")
		<-s.exited
	}
	killGroup(s.cmd) // children left behind by a plugin that exited
	s.drain(time.Second)
	s.stdin.Close()
	s.stdout.Close()
	s.stderr.Close()
	s.readers.Wait()
	s.handlers.Wait()
}

// drain waits up to d for the readers to reach EOF on stdout and stderr,
// which they do once the plugin and every process holding its pipes are
// gone.
func (s *session) drain(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.readers.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// violationsSnapshot returns the stdout lines that were not protocol
// messages.
func (s *session) violationsSnapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (s *session) receivedSnapshot() ([]*message, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := make(map[string]string, len(s.sent))
	for k, v := range s.sent {
		sent[k] = v
	}
	return append([]*message(nil), s.received...), sent
}

func (s *session) stderrSnapshot() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.stderrLog...)
}
