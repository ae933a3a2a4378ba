package conformance

import (
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// busyWait is how long startBusy lets a run get going when it does not
// call hook/run: a run that calls it is held there, provably busy.
const busyWait = time.Second

// ruleChecks are the rules issue #12 settled: what SPEC says where a reader
// of it and the Go code used to answer differently.
var ruleChecks = []Check{
	{
		ID: "framing/notification-with-id", Section: "§1.2", Level: Must,
		Title: "a notification method sent with an id ($/cancelRequest) is answered -32601 and not acted upon",
		run:   checkNotificationWithID,
	},
	{
		ID: "params/precedence", Section: "§4.1", Level: Must,
		Title: "the params' shape is checked before lookups: six bad requests are answered -32602",
		run:   checkParamsPrecedence,
	},
	{
		ID: "handshake/silent-until-initialized", Section: "§5.3", Level: Must,
		Title: "nothing but answers until initialize succeeds, through refused requests and a failed initialize",
		run:   checkSilentUntilInitialized,
	},
	{
		ID: "hook/unsupported", Section: "§7.3", Level: Must,
		Title: "a builder whose hook/run is answered -32011 (a host without hooks) carries on and returns its result",
		run:   checkHookUnsupported,
	},
	{
		ID: "hook/communicator", Section: "§7.4", Level: Must,
		Title: "the communicator a builder offers in hook/run serves start, upload, download, uploadDir and downloadDir, through the runner's streams",
		run:   checkHookCommunicator,
	},
	{
		ID: "shutdown/params", Section: "§9.1", Level: Must,
		Title: "shutdown with params [] or with members gets -32602; without params it is answered null",
		run:   checkShutdownParams,
	},
	{
		ID: "shutdown/initialize-after", Section: "§9.1", Level: Must,
		Title: "initialize after shutdown gets -32010 like any request (not -32600)",
		run:   checkInitializeAfterShutdown,
	},
	{
		ID: "concurrency/in-flight", Section: "§10", Level: Must,
		Title: "two builder runs are handled at once, each calling back (hook/run) while in flight, and a request sent meanwhile is answered first",
		run:   checkConcurrency,
	},
	{
		ID: "signal/sigterm", Section: "§9.3", Level: Should,
		Title: "SIGTERM during a busy run is treated like end of input: the plugin exits 0 within 5s",
		run:   checkSIGTERM,
	},
}

// startBusy starts a run request and waits until it is busy: its hook/run
// arrived (the runner holds it when the session's hook mode is hookBlock),
// or busyWait passed. early is the answer when the run finished first.
func (c *checkCtx) startBusy(s *session, method string, params any) (id json.RawMessage, ch chan *message, early *message, err error) {
	id, ch, err = s.start(method, params)
	if err != nil {
		return nil, nil, nil, err
	}
	t := time.NewTimer(busyWait)
	defer t.Stop()
	select {
	case <-s.host.hookCalled:
		c.tr.notef("hook/run arrived: the runner holds it, so the run stays busy")
	case early = <-ch:
	case <-t.C:
	case <-c.ctx.Done():
		return nil, nil, nil, c.ctx.Err()
	}
	return id, ch, early, nil
}

func checkNotificationWithID(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	m, err := c.rawAnswer(s, `{"jsonrpc":"2.0","id":31,"method":"$/cancelRequest","params":{"id":31}}`+"\n")
	if err != nil {
		return err
	}
	if err := expectCode(m, protocol.CodeMethodNotFound, "31"); err != nil {
		return failf("$/cancelRequest sent with an id: %v", err)
	}
	return nil
}

func checkParamsPrecedence(c *checkCtx) error {
	s, err := c.launch(false)
	if err != nil {
		return err
	}
	init := func(mutate func(p map[string]any)) map[string]any {
		b, _ := json.Marshal(initializeParams(offeredVersions))
		var p map[string]any
		json.Unmarshal(b, &p)
		mutate(p)
		return p
	}
	bad := []struct {
		what   string
		method string
		params any
	}{
		{"initialize with limits.max_message_size 10 (and a version the plugin does not speak)", protocol.MethodInitialize, init(func(p map[string]any) {
			p["limits"] = map[string]any{"max_message_size": 10}
			p["protocol_versions"] = []int{999}
		})},
		{"initialize without capabilities.progress", protocol.MethodInitialize, init(func(p map[string]any) {
			p["capabilities"] = map[string]any{"ask": true}
		})},
	}
	for _, b := range bad {
		m, err := s.call(c.ctx, b.method, b.params)
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidParams, ""); err != nil {
			return failf("%s: %v", b.what, err)
		}
	}
	if _, _, err := c.handshake(s); err != nil {
		return err
	}
	bad = []struct {
		what   string
		method string
		params any
	}{
		{`component/prepare with "configs": [1]`, protocol.MethodPrepare, map[string]any{"type": "builder", "name": "conformance-no-such-component", "configs": []any{1}}},
		{`component/prepare of type "communicator"`, protocol.MethodPrepare, map[string]any{"type": "communicator", "name": "conformance-no-such-component", "configs": []any{}}},
		{"builder/run with {}", protocol.MethodBuilderRun, map[string]any{}},
		{`artifact/destroy with {"artifact": ""}`, protocol.MethodArtifactDestroy, map[string]any{"artifact": ""}},
	}
	for _, b := range bad {
		m, err := s.call(c.ctx, b.method, b.params)
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidParams, ""); err != nil {
			return failf("%s: %v", b.what, err)
		}
	}
	return nil
}

func checkSilentUntilInitialized(c *checkCtx) error {
	s, err := c.launch(false)
	if err != nil {
		return err
	}
	// What the plugin says before the runner says anything is judged by
	// handshake/silent-before-initialize.
	time.Sleep(silenceWindow)
	early, _ := s.receivedSnapshot()
	if _, err := s.call(c.ctx, protocol.MethodPrepare, protocol.PrepareParams{Type: protocol.TypeBuilder, Name: "conformance", Configs: []json.RawMessage{}}); err != nil {
		return err
	}
	m, err := s.call(c.ctx, protocol.MethodInitialize, initializeParams([]int{999}))
	if err != nil {
		return err
	}
	var answer *message
	if m.wireErr() == nil {
		c.tr.notef("the plugin accepted version 999 (handshake/unsupported-version judges that)")
		answer = m
	} else {
		time.Sleep(silenceWindow) // let anything the failed handshake set off arrive
		if _, answer, err = c.handshake(s); err != nil {
			return err
		}
	}
	msgs, _ := s.receivedSnapshot()
	for _, m := range msgs[len(early):] {
		if m == answer {
			break
		}
		if !m.isResponse() {
			return failf("sent %s before initialize succeeded: %s", describeKind(m), printable(m.Raw))
		}
	}
	return nil
}

// readyBuilder starts a fresh session and prepares the first builder that
// prepares, as the checks about builder/run and its hook need.
func (c *checkCtx) readyBuilder() (*session, protocol.Component, string, error) {
	s, res, err := c.ready()
	if err != nil {
		return nil, protocol.Component{}, "", err
	}
	for _, comp := range res.Components {
		if comp.Type != protocol.TypeBuilder {
			continue
		}
		instance, err := c.prepare(s, comp)
		if err != nil {
			continue
		}
		return s, comp, instance, nil
	}
	return nil, protocol.Component{}, "", skipf("no builder prepares (without -config)")
}

func checkHookUnsupported(c *checkCtx) error {
	s, comp, instance, err := c.readyBuilder()
	if err != nil {
		return err
	}
	control, err := c.prepare(s, comp)
	if err != nil {
		return err
	}
	// A control run with hook/run answered null: a builder that fails
	// anyway is run/builder's business.
	m, err := s.call(c.ctx, protocol.MethodBuilderRun, protocol.InstanceParams{Instance: control})
	if err != nil {
		return failf("builder %s: builder/run: %v", comp.Name, err)
	}
	if m.wireErr() != nil {
		return skipf("builder %s fails even when hook/run succeeds (%s)", comp.Name, m.describe())
	}
	s.host.setHook(hookUnsupported)
	m, err = s.call(c.ctx, protocol.MethodBuilderRun, protocol.InstanceParams{Instance: instance})
	if err != nil {
		return failf("builder %s: builder/run: %v", comp.Name, err)
	}
	select {
	case <-s.host.hookCalled:
	default:
		return skipf("builder %s did not call hook/run", comp.Name)
	}
	if m.wireErr() != nil {
		return failf("builder %s: hook/run answered -32011 (no hooks here), and the run failed: %s; it must carry on", comp.Name, m.describe())
	}
	return nil
}

func checkShutdownParams(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":"sd-1","method":"shutdown","params":[]}`,
		`{"jsonrpc":"2.0","id":"sd-2","method":"shutdown","params":{"now":true}}`,
	} {
		m, err := c.rawAnswer(s, line+"\n")
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidParams, ""); err != nil {
			return failf("%s: %v", line, err)
		}
	}
	return c.shutdown(s)
}

func checkInitializeAfterShutdown(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	if err := c.shutdown(s); err != nil {
		return err
	}
	id, ch, err := s.start(protocol.MethodInitialize, initializeParams(offeredVersions))
	if err != nil {
		c.tr.notef("plugin no longer reads stdin after shutdown: fine")
		return nil
	}
	m, err := answeredWithin(c.ctx, s, id, ch, exitBound)
	if err != nil {
		c.tr.notef("no answer to initialize after shutdown (%v): fine, the plugin may exit", err)
		return nil
	}
	if err := expectCode(m, protocol.CodeShuttingDown, ""); err != nil {
		return failf("initialize after shutdown: %v", err)
	}
	return nil
}

func checkSIGTERM(c *checkCtx) error {
	r, release, err := c.startBusyRun()
	if err != nil {
		return err
	}
	defer release()
	s := r.s
	c.tr.notef("SIGTERM to the plugin (stdin still open)")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("runner: SIGTERM: %w", err)
	}
	st, ok := s.waitExit(c.ctx, shutdownExitBound)
	if !ok {
		return failf("still running %v after SIGTERM: treat it like end of input", shutdownExitBound)
	}
	if st.ExitCode() != 0 {
		return failf("after SIGTERM: %v, want exit status 0", st)
	}
	return nil
}

func checkConcurrency(c *checkCtx) error {
	s, comp, first, err := c.readyBuilder()
	if err != nil {
		return err
	}
	second, err := c.prepare(s, comp)
	if err != nil {
		return err
	}
	s.host.setHook(hookBlock)
	idA, chA, err := s.start(protocol.MethodBuilderRun, protocol.InstanceParams{Instance: first})
	if err != nil {
		return err
	}
	wait := func(what string) error {
		t := time.NewTimer(handRunBound)
		defer t.Stop()
		select {
		case <-s.host.held:
			return nil
		case m := <-chA:
			return skipf("builder %s answered builder/run without calling hook/run (%s)", comp.Name, m.describe())
		case <-t.C:
			return failf("builder %s: %s", comp.Name, what)
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
	if err := wait("no hook/run from the first builder/run"); err != nil {
		return err
	}
	c.tr.notef("the first run is in flight, held in its hook/run; starting a second run")
	idB, chB, err := s.start(protocol.MethodBuilderRun, protocol.InstanceParams{Instance: second})
	if err != nil {
		return err
	}
	t := time.NewTimer(handRunBound)
	defer t.Stop()
	select {
	case <-s.host.held:
	case <-t.C:
		return failf("builder %s: the second builder/run sent no hook/run within %v while the first was in flight: requests must be handled concurrently", comp.Name, handRunBound)
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	if err := c.ping(s, "with two runs in flight"); err != nil {
		return err
	}
	c.tr.notef("releasing both hook/run requests")
	close(s.host.release)
	for _, r := range []struct {
		id json.RawMessage
		ch chan *message
	}{{idA, chA}, {idB, chB}} {
		if _, err := answeredWithin(c.ctx, s, r.id, r.ch, handRunBound); err != nil {
			return failf("builder/run %s after its hook/run was answered: %v", r.id, err)
		}
	}
	return nil
}

func checkHookCommunicator(c *checkCtx) error {
	s, comp, instance, err := c.readyBuilder()
	if err != nil {
		return err
	}
	s.host.setHook(hookComm)
	m, err := s.call(c.ctx, protocol.MethodBuilderRun, protocol.InstanceParams{Instance: instance})
	if err != nil {
		return failf("builder %s: builder/run: %v", comp.Name, err)
	}
	s.host.mu.Lock()
	ran, commErr := s.host.commRan, s.host.commErr
	s.host.mu.Unlock()
	switch {
	case !ran:
		return skipf("builder %s offered no communicator in hook/run", comp.Name)
	case commErr != "":
		return failf("builder %s's communicator: %s", comp.Name, commErr)
	}
	c.tr.notef("builder/run answered %s", m.describe())
	return nil
}
