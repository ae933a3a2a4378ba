package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Level is how strongly SPEC.md states the rule a check enforces (RFC 2119).
type Level string

// Levels.
const (
	// Must is a MUST rule: a plugin that breaks it does not conform, and the
	// runner exits non-zero.
	Must Level = "MUST"
	// Should is a SHOULD rule: reported, but it does not change the exit code.
	Should Level = "SHOULD"
)

// Check is one entry of the catalogue.
type Check struct {
	// ID is stable across releases, "area/rule"; -run and the expected-
	// failures file select checks by it.
	ID string
	// Section is the SPEC.md section the rule is in, e.g. "§3".
	Section string
	// Level is MUST or SHOULD.
	Level Level
	// Title says in one line what a conforming plugin does.
	Title string

	run func(c *checkCtx) error
}

// skipError reports that a check could not run meaningfully.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

func skipf(format string, args ...any) error {
	return &skipError{fmt.Sprintf(format, args...)}
}

func failf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// checkCtx is what a check runs with: the runner's settings, a transcript
// and the processes it started, all killed when the check ends.
type checkCtx struct {
	ctx context.Context
	cfg *Config
	tr  *transcript
	tmp string // temporary directory for this check, removed after it

	mu       sync.Mutex
	sessions []*session
	closed   bool
}

// launch starts a fresh plugin process.
func (c *checkCtx) launch(noCookie bool) (*session, error) {
	dir, err := os.MkdirTemp(c.tmp, "comm")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("check is over")
	}
	s, err := startSession(startOptions{argv: c.cfg.Command, env: c.cfg.Env, noCookie: noCookie}, c.tr, newHostSide(dir))
	if err != nil {
		return nil, err
	}
	c.sessions = append(c.sessions, s)
	return s, nil
}

// cleanupAll kills every process the check started, and any it would
// start later. It may be called while the check runs.
func (c *checkCtx) cleanupAll() {
	c.mu.Lock()
	c.closed = true
	sessions := c.sessions
	c.mu.Unlock()
	for _, s := range sessions {
		s.kill()
	}
}

// offeredVersions are the protocol versions the runner offers in every
// check, as the reference host does: a plugin that speaks version 2 moves
// its bytes as §7.5.2 says (stream2.go), one that speaks only version 1 as
// §7.5.1 says, and the checks of checks_streams.go do not apply to it.
var offeredVersions = []int{2, 1}

// initializeParams are what the runner sends in initialize.
func initializeParams(versions []int) protocol.InitializeParams {
	return protocol.InitializeParams{
		ProtocolVersions: versions,
		Host:             protocol.Peer{Name: "plugin-conformance", Version: "1"},
		Limits:           protocol.Limits{MaxMessageSize: protocol.DefaultMaxMessageSize},
		Capabilities:     protocol.HostCapabilities{Ask: true, Progress: true},
	}
}

// ready launches the plugin and completes the handshake.
func (c *checkCtx) ready() (*session, *protocol.InitializeResult, error) {
	s, err := c.launch(false)
	if err != nil {
		return nil, nil, err
	}
	res, _, err := c.handshake(s)
	if err != nil {
		return nil, nil, err
	}
	return s, res, nil
}

// handshake sends initialize on a freshly launched s and fails unless it
// succeeds. It returns the decoded result and the answer itself, which is
// the very *message recorded among s's received messages.
func (c *checkCtx) handshake(s *session) (*protocol.InitializeResult, *message, error) {
	m, err := s.call(c.ctx, protocol.MethodInitialize, initializeParams(offeredVersions))
	if err != nil {
		return nil, nil, failf("handshake: %v", err)
	}
	if e := m.wireErr(); e != nil {
		return nil, nil, failf("handshake: initialize answered with error %d %q", e.Code, e.Message)
	}
	var res protocol.InitializeResult
	if err := json.Unmarshal(m.Result, &res); err != nil {
		return nil, nil, failf("handshake: initialize result: %v", err)
	}
	s.host.setVersion(res.ProtocolVersion)
	return &res, m, nil
}

// pingMethod is a method no plugin implements, used to see that a plugin
// still reads and answers.
var pingMethod = "conformance/ping"

// ping sends a request for a method no plugin has and waits for any answer:
// proof that the plugin still reads and answers.
func (c *checkCtx) ping(s *session, why string) error {
	id := json.RawMessage(fmt.Sprintf(`"ping-%d"`, s.nextID.Add(1)))
	ch := s.expect(id, pingMethod)
	if err := s.writeJSON(request{JSONRPC: "2.0", ID: id, Method: pingMethod, Params: map[string]any{}}); err != nil {
		return failf("%s: plugin no longer reads its stdin: %v", why, err)
	}
	if _, err := s.await(c.ctx, id, ch); err != nil {
		return failf("%s: plugin no longer answers: %v", why, err)
	}
	return nil
}

// rawAnswer sends one raw line and returns the first answer that nobody
// waited for (the answer to a line whose id the runner did not register).
func (c *checkCtx) rawAnswer(s *session, line string) (*message, error) {
	if err := s.sendRaw([]byte(line)); err != nil {
		return nil, failf("write: %v", err)
	}
	m, err := s.nextInbox(c.ctx)
	if err != nil {
		return nil, failf("no answer to %s: %v", printable([]byte(line)), err)
	}
	return m, nil
}

// expectCode checks that m is an error answer with code and, when id is
// not nil, exactly that id.
func expectCode(m *message, code int64, id string) error {
	e := m.wireErr()
	if e == nil || e.Code != code {
		return failf("want error %d, got %s", code, m.describe())
	}
	if id != "" && m.idKey() != id {
		return failf("error %d has id %s, want %s", code, printable(m.ID), id)
	}
	return nil
}

// answeredWithin waits up to d for the answer registered under ch.
func answeredWithin(ctx context.Context, s *session, id json.RawMessage, ch chan *message, d time.Duration) (*message, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	m, err := s.await(ctx, id, ch)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, failf("no answer within %v", d)
	}
	return m, err
}
