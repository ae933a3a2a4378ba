package conformance

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Bounds the checks hold a plugin to. They are the reference host's
// defaults (SPEC §8, §9).
const (
	// exitBound is how long a plugin has to exit after shutdown or stdin EOF.
	exitBound = 2 * time.Second
	// shutdownExitBound is how long a plugin has to exit after answering
	// shutdown while its stdin stays open: "promptly" (SPEC §9.1), read as
	// the 5 s the reference plugin allows its work to finish. (The
	// reference plugin lingers up to 2 s for the host to close stdin.)
	shutdownExitBound = 5 * time.Second
	// cancelBound is how long a plugin has to answer a cancelled request.
	cancelBound = protocol.DefaultCancelGrace
	// handRunBound is how long a plugin launched without the cookie has to
	// exit.
	handRunBound = 3 * time.Second
	// silenceWindow is how long the runner listens to a freshly launched
	// plugin before it sends initialize. A plugin that talks first usually
	// does so as it starts, so a short window catches it without slowing
	// every run much.
	silenceWindow = 300 * time.Millisecond
)

var launchChecks = []Check{
	{
		ID: "launch/no-cookie", Section: "§2.2", Level: Must,
		Title: "without the magic cookie: a message on stderr, nothing on stdout, non-zero exit, stdin not awaited",
		run:   checkNoCookie,
	},
}

var handshakeChecks = []Check{
	{
		ID: "handshake/initialize", Section: "§5.1", Level: Must,
		Title: "initialize picks an offered version and lists valid, unique components and limits",
		run:   checkInitialize,
	},
	{
		ID: "handshake/silent-before-initialize", Section: "§5.3", Level: Must,
		Title: "the plugin sends nothing on stdout until it has answered initialize",
		run:   checkSilentBeforeInitialize,
	},
	{
		ID: "handshake/unsupported-version", Section: "§5.2", Level: Must,
		Title: "initialize offering only unknown versions gets -32002 with data.supported",
		run:   checkUnsupportedVersion,
	},
	{
		ID: "handshake/before-initialize", Section: "§5.3", Level: Must,
		Title: "a request before initialize gets -32001",
		run:   checkBeforeInitialize,
	},
	{
		ID: "handshake/second-initialize", Section: "§5.3", Level: Must,
		Title: "a second initialize gets -32600",
		run:   checkSecondInitialize,
	},
}

func checkNoCookie(c *checkCtx) error {
	s, err := c.launch(true)
	if err != nil {
		return err
	}
	st, ok := s.waitExit(c.ctx, handRunBound)
	if !ok {
		return failf("still running %v after a launch without %s, stdin left open: a plugin run by hand must print a message on stderr and exit non-zero without waiting for stdin", handRunBound, protocol.EnvMagicCookie)
	}
	s.drain(time.Second)
	if st.ExitCode() == 0 {
		return failf("exited with status 0 when run by hand; it must exit non-zero")
	}
	if len(s.stderrSnapshot()) == 0 {
		return failf("exited without a word on stderr; it must tell the person what it is and how to use it")
	}
	if v := s.violationsSnapshot(); len(v) > 0 {
		return failf("wrote to stdout when run by hand: %s", v[0])
	}
	if m, _ := s.receivedSnapshot(); len(m) > 0 {
		return failf("wrote a protocol message to stdout when run by hand: %s", printable(m[0].Raw))
	}
	return nil
}

func checkInitialize(c *checkCtx) error {
	_, res, err := c.ready()
	if err != nil {
		return err
	}
	if !slices.Contains(offeredVersions, res.ProtocolVersion) {
		return failf("protocol_version %d was not offered (offered %v)", res.ProtocolVersion, offeredVersions)
	}
	if res.Plugin.Name == "" {
		return failf("plugin.name is empty")
	}
	if res.Limits.MaxMessageSize < protocol.MinMaxMessageSize {
		return failf("limits.max_message_size %d is below the minimum %d", res.Limits.MaxMessageSize, protocol.MinMaxMessageSize)
	}
	seen := map[string]bool{}
	for i, comp := range res.Components {
		switch comp.Type {
		case protocol.TypeBuilder, protocol.TypeProvisioner, protocol.TypePostProcessor, protocol.TypeDatasource:
		default:
			return failf("components[%d] has type %q", i, comp.Type)
		}
		if comp.Name == "" {
			return failf("components[%d] has no name", i)
		}
		key := comp.Type + "/" + comp.Name
		if seen[key] {
			return failf("component %s is listed twice", key)
		}
		seen[key] = true
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(comp.ConfigSchema, &obj); err != nil || obj == nil {
			return failf("component %s: config_schema is not a JSON object", key)
		}
	}
	return nil
}

// checkSilentBeforeInitialize listens for silenceWindow before it sends
// initialize, then completes the handshake. Anything the plugin wrote in
// the window, or any protocol message it sent after the window but before
// the answer to initialize, fails the check: SPEC §5.3 forbids requests and
// notifications, and a response (no request is in flight) or a non-protocol
// line is a violation anyway (§4.1, §3.3). Non-protocol lines after the
// window are left to stdout/purity: they are not ordered against messages.
func checkSilentBeforeInitialize(c *checkCtx) error {
	s, err := c.launch(false)
	if err != nil {
		return err
	}
	t := time.NewTimer(silenceWindow)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.eof:
		// Whatever it wrote is recorded; report that first, below.
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	if v := s.violationsSnapshot(); len(v) > 0 {
		return failf("wrote to stdout before the host sent initialize (within %v of its start): %s", silenceWindow, v[0])
	}
	if m, _ := s.receivedSnapshot(); len(m) > 0 {
		return failf("sent %s before the host sent initialize (within %v of its start): %s", describeKind(m[0]), silenceWindow, printable(m[0].Raw))
	}
	_, answer, err := c.handshake(s)
	if err != nil {
		return err
	}
	// The answer is recorded among the received messages before the call
	// returns, so anything ahead of it came first.
	if msgs, _ := s.receivedSnapshot(); len(msgs) > 0 && msgs[0] != answer {
		return failf("sent %s before it answered initialize: %s", describeKind(msgs[0]), printable(msgs[0].Raw))
	}
	return nil
}

func checkUnsupportedVersion(c *checkCtx) error {
	s, err := c.launch(false)
	if err != nil {
		return err
	}
	const bogus = 999999
	m, err := s.call(c.ctx, protocol.MethodInitialize, initializeParams([]int{bogus}))
	if err != nil {
		return failf("initialize offering [%d]: %v", bogus, err)
	}
	if err := expectCode(m, protocol.CodeUnsupportedVersion, ""); err != nil {
		return failf("initialize offering only version %d: %v", bogus, err)
	}
	var data protocol.UnsupportedVersionData
	if err := json.Unmarshal(m.wireErr().Data, &data); err != nil || len(data.Supported) == 0 {
		return failf("error -32002 must carry data {\"supported\":[...]} listing the plugin's versions, got %s", printable(m.wireErr().Data))
	}
	if slices.Contains(data.Supported, bogus) {
		return failf("data.supported %v contains the refused version %d", data.Supported, bogus)
	}
	return nil
}

func checkBeforeInitialize(c *checkCtx) error {
	s, err := c.launch(false)
	if err != nil {
		return err
	}
	m, err := s.call(c.ctx, protocol.MethodPrepare, protocol.PrepareParams{Type: protocol.TypeBuilder, Name: "conformance-nonexistent", Configs: []json.RawMessage{json.RawMessage("{}")}})
	if err != nil {
		return failf("component/prepare before initialize: %v", err)
	}
	if err := expectCode(m, protocol.CodeNotInitialized, ""); err != nil {
		return failf("component/prepare before initialize: %v", err)
	}
	return nil
}

func checkSecondInitialize(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	m, err := s.call(c.ctx, protocol.MethodInitialize, initializeParams(offeredVersions))
	if err != nil {
		return failf("second initialize: %v", err)
	}
	if err := expectCode(m, protocol.CodeInvalidRequest, ""); err != nil {
		return failf("second initialize: %v", err)
	}
	return c.ping(s, "after a second initialize")
}
