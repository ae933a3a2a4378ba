package conformance_test

// The fixture host: with CONFORMANCE_FIXTURE_HOST set to a mode, the test
// binary is a small host that runs a build with the plugin named by its
// last argument. Mode "baseline" follows SPEC.md; every other mode breaks
// exactly one rule, and TestHostFixtures asserts that host mode reports
// exactly the check for that rule as failed.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

const fixtureHostEnv = "CONFORMANCE_FIXTURE_HOST"

// hostFixtureCases pairs each fixture host mode with the one host check it
// must fail (and, in also, checks that the same mistake necessarily breaks
// too).
var hostFixtureCases = []struct {
	mode   string
	breaks string
	also   []string
	reason string
}{
	{mode: "baseline"},
	{mode: "no-cookie", breaks: "host/launch-cookie"},
	{mode: "prepare-first", breaks: "host/initialize-first", reason: "sends component/prepare before initialize"},
	{mode: "initialize-unknown-version", breaks: "host/initialize-params", reason: "offers only protocol version 3, which SPEC does not define"},
	{mode: "run-extra-member", breaks: "host/messages-valid", reason: `builder/run with "verbose": true`},
	{mode: "ignores-ask", breaks: "host/callbacks-answered", reason: "never answers ui/ask"},
	{mode: "shutdown-with-params", breaks: "host/shutdown", reason: "sends shutdown with params {}"},
	{mode: "no-cancel-on-interrupt", breaks: "host/cancel-on-abandon", reason: "shuts down on SIGINT without cancelling the run"},
	{mode: "no-sigterm", breaks: "host/escalation", reason: "goes from closing stdin straight to SIGKILL"},
	{mode: "escalation-closes-at-once", breaks: "host/escalation", reason: "closes stdin as soon as it has sent shutdown, without waiting for the answer"},
	{mode: "escalation-sigterm-first", breaks: "host/escalation", reason: "sends SIGTERM before it closes stdin"},
	{mode: "escalation-sigterm-at-once", breaks: "host/escalation", reason: "sends SIGTERM as soon as it has closed stdin"},
	{mode: "escalation-kills-at-once", breaks: "host/escalation", reason: "sends SIGKILL 0.1 s after SIGTERM"},
	{mode: "ignores-limit", breaks: "host/max-message-size", reason: "sends a 1.1 MiB component/prepare to a plugin that accepts 1 MiB"},
	// The relay's modes (hostfixture_relay_test.go).
	{mode: "stream-eager-credit", breaks: "host/stream-first-message", reason: "grants credit for its stdout sink on the builder's connection before the builder wrote to it"},
	{mode: "stream-own-window", breaks: "host/stream-credit", reason: "grants the builder a 1 GiB window for the download instead of passing on the provisioner's 4 KiB credits"},
	{mode: "stream-double-end", breaks: "host/stream-end", reason: "forwards each stream/end of a provisioner's sink twice"},
	{mode: "stream-answer-first", breaks: "host/stream-finish-before-answer", reason: "answers the provisioner's download before forwarding its sink's stream/end"},
	{mode: "stream-cancel-drops-error", breaks: "host/stream-cancel", reason: "forwards the builder's stream/cancel without its error"},
	{mode: "stream-corrupts", breaks: "host/stream-transfer", reason: "flips a byte of each chunk it relays for communicator/start's stdin"},
	{mode: "stream-rejects-noncanonical", breaks: "host/stream-noncanonical-accepted", reason: "cancels a source whose stream/data is not in the canonical form"},
	{mode: "stream-reorders-members", breaks: "host/stream-canonical", reason: "writes stream/data with the payload before the handle"},
	{mode: "stream-bridge-truncates", breaks: "host/stream-version-mix", reason: "answers the version 1 builder's first stream/read of a version 2 source with eof"},
	{mode: "stream-mix-downgrades", breaks: "host/stream-version-mix", reason: "once a plugin has picked version 1, offers only [1] to the next, so the relay never joins two versions"},
	{mode: "stream-data-on-plugin-source", breaks: "host/stream-first-message", reason: "sends a byte of stream/data on the provisioner's source before the credit that starts it"},
	{mode: "stream-cancel-rewrites-answer", breaks: "host/stream-cancel", reason: "answers the provisioner's cancelled upload with -32603 of its own instead of the builder's -32007"},
	{mode: "stream-empty-chunk", breaks: "host/stream-credit", also: []string{"host/messages-valid"}, reason: "relays one chunk of 0 bytes before a real one (stream-data.params.json's minLength forbids it too)"},
	{mode: "stream-zero-credit", breaks: "host/messages-valid", reason: "follows each stream/credit it forwards to the provisioner with one of 0 bytes, which stream-credit.params.json forbids"},
}

// fixtureHost is a host that speaks raw lines.
type fixtureHost struct {
	mode  string
	stdin io.WriteCloser
	wmu   sync.Mutex

	mu      sync.Mutex
	next    int
	waiting map[string]chan map[string]json.RawMessage

	// relay joins the builder's communicator to a provisioner's
	// (hostfixture_relay_test.go); set on both connections.
	relay *fixtureRelay
	// version is the protocol version the plugin chose.
	version int
}

func runFixtureHost(mode string) {
	plugin := os.Args[len(os.Args)-1]
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	h, cmd, exited, err := launchFixturePlugin(mode, plugin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixture host:", err)
		os.Exit(1)
	}
	stdin := h.stdin
	h.relay = &fixtureRelay{mode: mode, plugin: plugin, b: h}

	if mode == "prepare-first" {
		h.call(protocol.MethodPrepare, prepareParams(), time.Second)
	}
	init := h.initialize()
	var res protocol.InitializeResult
	json.Unmarshal(init["result"], &res)
	limit := res.Limits.MaxMessageSize
	if res.Limits.MaxMessageSize < protocol.DefaultMaxMessageSize {
		// A configuration bigger than the plugin accepts: a host checks
		// before it sends (§3.2).
		big := prepareParams()
		big["configs"] = []any{map[string]any{"padding": strings.Repeat("x", int(limit)+64<<10)}}
		b, _ := json.Marshal(big)
		if int64(len(b)) > limit && mode != "ignores-limit" {
			fmt.Fprintf(os.Stderr, "fixture host: component/prepare of %d bytes exceeds the plugin's limit\n", len(b))
		} else {
			h.call(protocol.MethodPrepare, big, 5*time.Second)
		}
	}
	prep := h.call(protocol.MethodPrepare, prepareParams(), 5*time.Second)
	var pr protocol.PrepareResult
	json.Unmarshal(prep["result"], &pr)
	runParams := map[string]any{"instance": pr.Instance}
	if mode == "run-extra-member" {
		runParams["verbose"] = true
	}
	id, ch := h.start(protocol.MethodBuilderRun, runParams)
	select {
	case <-ch:
	case <-interrupt:
		if mode != "no-cancel-on-interrupt" {
			h.send(map[string]any{"jsonrpc": "2.0", "method": protocol.MethodCancelRequest, "params": map[string]any{"id": id}})
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
			}
		}
	case <-time.After(20 * time.Second):
	}
	// Shutdown and escalation (§9.3), each step after its grace.
	shutdown := map[string]any{"jsonrpc": "2.0", "method": protocol.MethodShutdown}
	if mode == "shutdown-with-params" {
		shutdown["params"] = map[string]any{}
	}
	answerGrace, exitGrace, killGrace := 2*time.Second, 2*time.Second, 2*time.Second
	switch mode {
	case "escalation-closes-at-once":
		answerGrace = 0
	case "escalation-sigterm-at-once":
		exitGrace = 0
	case "escalation-kills-at-once":
		// Not 0: the plugin must live long enough to log SIGTERM, or the
		// check would see no SIGTERM at all.
		killGrace = 100 * time.Millisecond
	}
	term := func() { signalGroup(cmd, syscall.SIGTERM) }
	_, ch = h.startRaw(shutdown)
	answered := true
	select {
	case <-ch:
	case <-time.After(answerGrace):
		answered = false
	}
	if mode == "escalation-sigterm-first" && !answered {
		term()
		time.Sleep(time.Second)
	}
	stdin.Close()
	select {
	case <-exited:
		os.Exit(0)
	case <-time.After(exitGrace):
	}
	if mode != "no-sigterm" {
		term()
		select {
		case <-exited:
			os.Exit(0)
		case <-time.After(killGrace):
		}
	}
	signalGroup(cmd, syscall.SIGKILL)
	<-exited
	os.Exit(0)
}

// initialize sends the handshake; versions are those the fixture offers.
func (h *fixtureHost) initialize() map[string]json.RawMessage {
	versions := []int{2, 1}
	switch {
	case h.mode == "initialize-unknown-version":
		versions = []int{3}
	case h.mode == "stream-mix-downgrades" && h.relay != nil && h.relay.b.version == 1:
		versions = []int{1}
	}
	m := h.call(protocol.MethodInitialize, map[string]any{
		"protocol_versions": versions,
		"host":              map[string]any{"name": "fixture-host", "version": "1"},
		"limits":            map[string]any{"max_message_size": protocol.DefaultMaxMessageSize},
		"capabilities":      map[string]any{"ask": true, "progress": true},
	}, 10*time.Second)
	var res protocol.InitializeResult
	json.Unmarshal(m["result"], &res)
	h.version = res.ProtocolVersion
	return m
}

// launchFixturePlugin starts the plugin with the environment a host gives
// it (without the cookie in mode no-cookie) and reads its output.
func launchFixturePlugin(mode, plugin string) (*fixtureHost, *exec.Cmd, chan struct{}, error) {
	cmd := exec.Command(plugin)
	newGroup(cmd)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, protocol.EnvMagicCookie+"=") {
			env = append(env, kv)
		}
	}
	if mode != "no-cookie" {
		env = append(env, protocol.EnvMagicCookie+"="+protocol.MagicCookieValue)
	}
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	h := &fixtureHost{mode: mode, stdin: stdin, waiting: map[string]chan map[string]json.RawMessage{}}
	go h.read(stdout)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	return h, cmd, exited, nil
}

func prepareParams() map[string]any {
	return map[string]any{"type": "builder", "name": "conformance", "configs": []any{map[string]any{}}}
}

func (h *fixtureHost) send(v any) {
	b, _ := json.Marshal(v)
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.stdin.Write(append(b, '\n'))
}

func (h *fixtureHost) startRaw(m map[string]any) (int, chan map[string]json.RawMessage) {
	h.mu.Lock()
	h.next++
	id := h.next
	ch := make(chan map[string]json.RawMessage, 1)
	h.waiting[strconv.Itoa(id)] = ch
	h.mu.Unlock()
	m["id"] = id
	h.send(m)
	return id, ch
}

func (h *fixtureHost) start(method string, params any) (int, chan map[string]json.RawMessage) {
	return h.startRaw(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func (h *fixtureHost) call(method string, params any, d time.Duration) map[string]json.RawMessage {
	_, ch := h.start(method, params)
	select {
	case m := <-ch:
		return m
	case <-time.After(d):
		return nil
	}
}

// read sorts the plugin's lines: answers to their callers, callbacks
// answered, notifications ignored.
func (h *fixtureHost) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 8<<20)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if h.relay != nil && h.relay.forwardCanonical(h, line) {
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		var method string
		json.Unmarshal(m["method"], &method)
		id, hasID := m["id"]
		switch {
		case method == "":
			h.mu.Lock()
			ch := h.waiting[string(id)]
			delete(h.waiting, string(id))
			h.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case hasID && h.relay != nil && h.relay.bridges(h, method):
			// In order: a stream/write must not overtake the one before.
			h.relay.bridge(id, method, m["params"])
		case hasID && h.relay != nil && h.relay.serves(h, method, m["params"]):
			go h.relay.request(h, id, method, m["params"])
		case hasID:
			go h.callback(id, method)
		case h.relay != nil && strings.HasPrefix(method, "stream/"):
			h.relay.notification(h, method, line, m["params"])
		}
	}
}

func (h *fixtureHost) callback(id json.RawMessage, method string) {
	answer := map[string]any{"jsonrpc": "2.0", "id": id}
	switch {
	case method == protocol.MethodUIAsk:
		if h.mode == "ignores-ask" {
			return
		}
		answer["result"] = map[string]any{"answer": "y"}
	case method == protocol.MethodHookRun:
		answer["result"] = nil
	case strings.HasPrefix(method, "communicator/") || strings.HasPrefix(method, "stream/"):
		answer["error"] = map[string]any{"code": protocol.CodeUnknownHandle, "message": "unknown handle"}
	default:
		answer["error"] = map[string]any{"code": protocol.CodeMethodNotFound, "message": "method not found: " + method}
	}
	h.send(answer)
}
