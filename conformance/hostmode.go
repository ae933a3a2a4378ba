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
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/protocol"
	"github.com/packer-stdio/packer/schema"
)

// Host mode: the runner plays scripted plugins and checks what a host does
// with them. For each check it makes a directory holding the scripted
// plugin (executables packer-builder-conformance,
// packer-provisioner-conformance and packer-post-processor-conformance,
// which run the runner's own binary with [ScriptedPluginArg]), a packer
// template (template.json) and the builder's configuration (config.json),
// then runs the host command in that directory with these placeholders
// replaced in its arguments:
//
//	{plugin}    the scripted plugin binary (packer-builder-conformance)
//	{dir}       the check's directory
//	{template}  the template, {dir}/template.json
//	{config}    the builder's configuration, as JSON text
//
// The template builds with builder "conformance" and runs provisioner
// "conformance": packer finds the scripted plugin in its working directory.
// Each scripted plugin process logs every line it receives and sends, end
// of input and signals; the checks judge that log once the host has exited.

// DefaultHostTimeout bounds one host check: the escalation check alone
// takes three graces of 2 s.
const DefaultHostTimeout = 30 * time.Second

// HostConfig says which host to check and how.
type HostConfig struct {
	// Command is the host's command line, with placeholders (see above).
	Command []string
	// Self is the executable that runs as the scripted plugin; empty
	// means this process's executable, which must call
	// [MaybeServeScriptedPlugin] at start.
	Self string
	// Env holds extra environment variables for the host, "KEY=value", on
	// top of the runner's own environment.
	Env []string
	// Run, if not nil, selects the checks whose id it matches.
	Run *regexp.Regexp
	// Timeout bounds each check; zero means DefaultHostTimeout.
	Timeout time.Duration
	// ExpectFail lists checks known to fail.
	ExpectFail map[string]bool
}

// hostCheck is one check of a host.
type hostCheck struct {
	Check
	sc scenario
	// more are further scenarios the judge also reads: the check passes
	// when it passes on the run of each.
	more      []scenario
	interrupt bool // send SIGINT to the host once builder/run arrives
	// timeScale multiplies the check's time limit (zero means 1): the
	// transfer of a few MiB takes a slow host (a version 1 relay in
	// Python) tens of seconds.
	timeScale int
	judge     func(h *hostRun) error
}

// These are the graces of SPEC §9.3 and §8, plus slack for a loaded machine.
const (
	shutdownGrace = 2 * time.Second
	killGrace     = 2 * time.Second
	graceSlack    = 2 * time.Second
)

var sessionHostChecks = []hostCheck{
	{Check: Check{ID: "host/launch-cookie", Section: "§2.2", Level: Must, Title: "every plugin is started with PACKER_PLUGIN_MAGIC_COOKIE set to the protocol's value"},
		sc: buildScenario, judge: judgeCookie},
	{Check: Check{ID: "host/initialize-first", Section: "§5.3", Level: Must, Title: "the first line a plugin receives is an initialize request"},
		sc: buildScenario, judge: judgeInitializeFirst},
	{Check: Check{ID: "host/initialize-params", Section: "§5.2", Level: Must, Title: "initialize params validate against initialize.params.json and offer, without repeats, a protocol version the plugin speaks (2 or 1)"},
		sc: buildScenario, judge: judgeInitializeParams},
	{Check: Check{ID: "host/messages-valid", Section: "§1.3", Level: Must, Title: "every message the host sends validates against the JSON Schemas and goes in an allowed direction: in a build, and in the relay of the stream checks (stream notifications, relayed communicator calls, answers to version 1 stream requests)"},
		sc: buildScenario, more: []scenario{streamScenario, mixScenario}, judge: judgeMessagesValid},
	{Check: Check{ID: "host/callbacks-answered", Section: "§7", Level: Must, Title: "every callback is answered once: ui/ask, hook/run, communicator/* on an unknown handle (-32005), an unknown method (-32601)"},
		sc: buildScenario, judge: judgeCallbacks},
	{Check: Check{ID: "host/shutdown", Section: "§9.1", Level: Must, Title: "the host ends the session with shutdown, without a params member, then closes stdin"},
		sc: buildScenario, judge: judgeShutdown},
	{Check: Check{ID: "host/cancel-on-abandon", Section: "§8", Level: Must, Title: "a host interrupted (SIGINT) during builder/run sends $/cancelRequest for it"},
		sc: scenario{Run: "block", MaxMessageSize: protocol.DefaultMaxMessageSize}, interrupt: true, judge: judgeCancel},
	{Check: Check{ID: "host/escalation", Section: "§9.3", Level: Must, Title: "a plugin that ignores shutdown, end of input and SIGTERM gets stdin closed, SIGTERM and SIGKILL, in that order, each after a grace of its own: at least 0.5 s, at most the 2 s default plus 2 s of slack"},
		sc: scenario{Run: "build", Stuck: true, MaxMessageSize: protocol.DefaultMaxMessageSize}, judge: judgeEscalation},
	{Check: Check{ID: "host/max-message-size", Section: "§3.2", Level: Must, Title: "no line to a plugin is longer than the max_message_size it declared (1 MiB), even when hook/run data to forward is bigger"},
		sc: scenario{Run: "build", MaxMessageSize: protocol.MinMaxMessageSize, HookPadding: protocol.MinMaxMessageSize + 64<<10}, judge: judgeMaxMessageSize},
}

var buildScenario = scenario{Run: "build", MaxMessageSize: protocol.DefaultMaxMessageSize}

// hostChecks are every host check, in the order they run: the session's,
// then those of the byte streams (hoststreams.go).
var hostChecks = slices.Concat(sessionHostChecks, streamHostChecks)

// HostCatalogue returns every host check, in the order they run.
func HostCatalogue() []Check {
	out := make([]Check, len(hostChecks))
	for i, c := range hostChecks {
		out[i] = c.Check
	}
	return out
}

// RunHost runs the selected host checks and returns their results, in
// catalogue order. The judges read the scripted plugins' logs once the
// host has exited, so checks that share a scenario share one run of the
// host command: each run is a fresh run, one after the other, and each
// check gets the run's transcript with its own notes after it.
func RunHost(ctx context.Context, cfg HostConfig) (*Report, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("no host command")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultHostTimeout
	}
	if cfg.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the runner's executable: %w", err)
		}
		cfg.Self = self
	}
	for id := range cfg.ExpectFail {
		found := false
		for _, c := range hostChecks {
			found = found || c.ID == id
		}
		if !found {
			return nil, fmt.Errorf("expected-failures list names %q, which is not a host check", id)
		}
	}
	rep := &Report{Command: cfg.Command}
	runs := hostRuns{}
	for _, chk := range hostChecks {
		if cfg.Run != nil && !cfg.Run.MatchString(chk.ID) {
			continue
		}
		res := runs.judge(ctx, &cfg, chk)
		if cfg.ExpectFail[chk.ID] {
			res.expectedToFail()
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// runKey says which runs of the host are the same: the scenario, whether
// the host is interrupted, and the time limit.
type runKey string

func keyOf(sc scenario, interrupt bool, timeScale int) runKey {
	b, _ := json.Marshal(struct {
		Scenario  scenario
		Interrupt bool
		TimeScale int
	}{sc, interrupt, max(timeScale, 1)})
	return runKey(b)
}

// doneRun is a finished run of the host, or the runner's error.
type doneRun struct {
	run   *hostRun
	err   error
	took  time.Duration
	notes []Entry // the run's transcript, before any judge
}

// hostRuns keeps the runs of one [RunHost], by key.
type hostRuns map[runKey]*doneRun

// get runs the host for a scenario of chk, or returns the earlier run of
// the same scenario; fresh says which.
func (rs hostRuns) get(ctx context.Context, cfg *HostConfig, chk hostCheck, sc scenario) (d *doneRun, fresh bool) {
	k := keyOf(sc, chk.interrupt, chk.timeScale)
	if d, ok := rs[k]; ok {
		return d, false
	}
	start := time.Now()
	tr := &transcript{}
	run, err := runHostOnce(ctx, cfg, sc, chk.interrupt, chk.timeScale, tr)
	d = &doneRun{run: run, err: err, took: time.Since(start), notes: tr.snapshot()}
	rs[k] = d
	return d, true
}

// judge runs (or reuses) the host runs chk reads and judges each of them.
func (rs hostRuns) judge(ctx context.Context, cfg *HostConfig, chk hostCheck) Result {
	res := Result{ID: chk.ID, Section: chk.Section, Level: chk.Level, Title: chk.Title}
	scs := append([]scenario{chk.sc}, chk.more...)
	tr := &transcript{}
	var took time.Duration
	var err error
	for i, sc := range scs {
		d, fresh := rs.get(ctx, cfg, chk, sc)
		if fresh {
			// A run's time counts once, for the check that needed it
			// first, so that a report's durations add up.
			took += d.took
		}
		if len(scs) > 1 {
			tr.notef("run %d of %d: %s", i+1, len(scs), sc.describe())
		}
		for _, e := range d.notes {
			tr.addText(e.Dir, e.Text)
		}
		err = d.err
		if err == nil {
			// The judge's notes go to this check's transcript only.
			h := *d.run
			h.tr = tr
			err = chk.judge(&h)
		}
		if err != nil {
			if len(scs) > 1 {
				err = fmt.Errorf("%s: %w", sc.describe(), err)
			}
			break
		}
	}
	judged := time.Now()
	res.settle(err, judged, tr)
	res.Duration += took
	return res
}

// describe names a scenario in a result's reason.
func (sc scenario) describe() string {
	switch {
	case sc.Comm == nil:
		return "in a build"
	case sc.MixVersions:
		return "in the relay between a version 1 and a version 2 connection"
	}
	return "in the relay of a provisioner's streams"
}

// hostRun is what one run of the host left behind.
type hostRun struct {
	tr     *transcript
	events []event // every plugin process's events, by time
	procs  map[int][]event
	exit   string // how the host ended
}

// runHostOnce runs the host command once with scripted plugins that follow
// sc, interrupting it with SIGINT when builder/run arrives if interrupt is
// set, and reads what the plugins logged.
func runHostOnce(parent context.Context, cfg *HostConfig, sc scenario, interrupt bool, timeScale int, tr *transcript) (*hostRun, error) {
	dir, err := os.MkdirTemp("", "host-conformance-")
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer os.RemoveAll(dir)
	configJSON := []byte("{}")
	template, _ := json.Marshal(map[string]any{
		"builders":     []any{map[string]any{"type": "conformance"}},
		"provisioners": []any{map[string]any{"type": "conformance"}},
	})
	scJSON, _ := json.Marshal(sc)
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s %s %s \"$@\"\n", shellQuote(cfg.Self), ScriptedPluginArg, shellQuote(dir))
	files := map[string][]byte{
		"scenario.json":                     scJSON,
		"template.json":                     template,
		"config.json":                       configJSON,
		"packer-builder-conformance":        []byte(wrapper),
		"packer-provisioner-conformance":    []byte(wrapper),
		"packer-post-processor-conformance": []byte(wrapper),
	}
	for name, b := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "packer-") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
	}
	argv := make([]string, len(cfg.Command))
	for i, a := range cfg.Command {
		a = strings.ReplaceAll(a, "{plugin}", filepath.Join(dir, "packer-builder-conformance"))
		a = strings.ReplaceAll(a, "{template}", filepath.Join(dir, "template.json"))
		a = strings.ReplaceAll(a, "{config}", string(configJSON))
		argv[i] = strings.ReplaceAll(a, "{dir}", dir)
	}
	timeout := cfg.Timeout * time.Duration(max(timeScale, 1))
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cfg.Env...)
	setProcessGroup(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	tr.notef("host: %s (in %s)", printable([]byte(strings.Join(argv, " "))), dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the host: %w", err)
	}
	var hostOut []string
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			hostOut = append(hostOut, sc.Text())
		}
		io.Copy(io.Discard, out)
	}()
	waited := make(chan error, 1)
	go func() {
		<-outDone
		waited <- cmd.Wait()
	}()
	if interrupt {
		if err := interruptOnRun(ctx, dir, cmd.Process, tr); err != nil {
			tr.notef("%v", err)
		}
	}
	run := &hostRun{tr: tr}
	select {
	case err := <-waited:
		run.exit = exitText(cmd.ProcessState, err)
	case <-ctx.Done():
		tr.notef("the host is still running after %v: killing its process group", timeout)
		killGroup(cmd)
		err := <-waited
		run.exit = "killed by the runner: " + exitText(cmd.ProcessState, err)
	}
	for _, l := range hostOut {
		tr.addText(Note, "host: "+printable([]byte(l)))
	}
	tr.notef("host exited: %s", run.exit)
	evs, err := readEvents(dir)
	if err != nil {
		return nil, fmt.Errorf("runner: reading the scripted plugins' logs: %w", err)
	}
	run.events = evs
	run.procs = map[int][]event{}
	for _, e := range evs {
		run.procs[e.PID] = append(run.procs[e.PID], e)
	}
	// What the plugins received and sent, in the notation of SPEC §1.4.
	for _, e := range evs {
		switch e.Kind {
		case "recv":
			tr.addText(Sent, fmt.Sprintf("[%d] %s", e.PID, printable([]byte(e.Line))))
		case "send":
			tr.addText(Received, fmt.Sprintf("[%d] %s", e.PID, printable([]byte(e.Line))))
		case "transfer":
			t := e.Transfer
			tr.notef("[%d] transfer: %s %s: %d bytes, SHA-256 %.12s, answer code %d, ended %v (end code %d)", e.PID, t.Op, t.Path, t.Bytes, t.SHA256, t.Code, t.Ended, t.EndCode)
		case "alive":
			// Ticks of a stuck plugin after SIGTERM: host/escalation
			// notes what they say.
		default:
			tr.notef("[%d] %s %s", e.PID, e.Kind, e.Signal)
		}
	}
	// A plugin the host left behind is a failure of the checks that look,
	// and must not outlive the check.
	for pid, pe := range run.procs {
		if alive(pid) {
			tr.notef("[%d] scripted plugin still running after the host exited: killing it", pid)
			killPID(pid)
			run.procs[pid] = append(pe, event{Kind: "left-running", PID: pid, Time: time.Now()})
		}
	}
	return run, nil
}

// interruptOnRun sends SIGINT to the host once a plugin has received
// builder/run (plus a moment, so the host is waiting for the answer).
func interruptOnRun(ctx context.Context, dir string, p *os.Process, tr *transcript) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return errors.New("no builder/run arrived: the host was not interrupted")
		case <-tick.C:
		}
		evs, _ := readEvents(dir)
		for _, e := range evs {
			if e.Kind == "recv" && strings.Contains(e.Line, `"builder/run"`) {
				time.Sleep(300 * time.Millisecond)
				tr.notef("SIGINT to the host (builder/run is in flight)")
				return p.Signal(os.Interrupt)
			}
		}
	}
}

// readEvents reads every events-*.jsonl file in dir, sorted by time.
func readEvents(dir string) ([]event, error) {
	names, err := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	if err != nil {
		return nil, err
	}
	var all []event
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				all = append(all, e)
			}
		}
		f.Close()
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// processes returns the plugin processes that started, in start order.
func (h *hostRun) processes() ([]int, error) {
	var pids []int
	for _, e := range h.events {
		if e.Kind == "start" {
			pids = append(pids, e.PID)
		}
	}
	if len(pids) == 0 {
		return nil, failf("the host never started the scripted plugin: point it at {plugin}, or run it in {dir} (see plugin-conformance -h)")
	}
	return pids, nil
}

// received returns the messages a plugin process received, parsed.
func (h *hostRun) received(pid int) []*message {
	var out []*message
	for _, e := range h.procs[pid] {
		if e.Kind != "recv" {
			continue
		}
		if m, err := parseMessage([]byte(e.Line)); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func judgeCookie(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		e := h.procs[pid][0]
		if e.Cookie == nil {
			return failf("plugin process %d started without %s in its environment", pid, protocol.EnvMagicCookie)
		}
		if *e.Cookie != protocol.MagicCookieValue {
			return failf("plugin process %d started with %s=%q, want %q", pid, protocol.EnvMagicCookie, *e.Cookie, protocol.MagicCookieValue)
		}
	}
	return nil
}

func judgeInitializeFirst(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		for _, e := range h.procs[pid] {
			if e.Kind != "recv" {
				continue
			}
			m, err := parseMessage([]byte(e.Line))
			if err != nil || !m.isRequest() || m.method != protocol.MethodInitialize {
				return failf("plugin process %d: the first line it received is not an initialize request: %s", pid, e.Line)
			}
			break
		}
	}
	return nil
}

func judgeInitializeParams(h *hostRun) error {
	v, err := protocolValidator()
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	pids, err := h.processes()
	if err != nil {
		return err
	}
	seen := false
	for _, pid := range pids {
		for _, m := range h.received(pid) {
			if m.method != protocol.MethodInitialize || !m.isRequest() {
				continue
			}
			seen = true
			meth, _ := schema.Lookup(protocol.MethodInitialize)
			if err := v.validate(meth.ParamsFile(), paramsOrEmpty(m)); err != nil {
				return failf("initialize params: %v", err)
			}
			var p protocol.InitializeParams
			json.Unmarshal(m.Params, &p)
			// §5.2: a host offers the versions it speaks, most preferred
			// first ([2, 1] for a host with version 2's streams); the
			// scripted plugin picks the first one it speaks.
			speaks, seenVersion := false, map[int]bool{}
			for _, pv := range p.ProtocolVersions {
				if seenVersion[pv] {
					return failf("initialize offers versions %v: %d twice", p.ProtocolVersions, pv)
				}
				seenVersion[pv] = true
				speaks = speaks || slices.Contains(protocol.SupportedVersions, pv)
			}
			if !speaks {
				return failf("initialize offers versions %v, none of which the protocol defines (%v)", p.ProtocolVersions, protocol.SupportedVersions)
			}
		}
	}
	if !seen {
		return failf("no plugin received initialize")
	}
	return nil
}

func paramsOrEmpty(m *message) json.RawMessage {
	if m.Params == nil {
		return json.RawMessage("{}")
	}
	return m.Params
}

func judgeMessagesValid(h *hostRun) error {
	v, err := protocolValidator()
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		sent := map[string]string{} // the plugin's requests, by id
		for _, e := range h.procs[pid] {
			switch e.Kind {
			case "send":
				if m, err := parseMessage([]byte(e.Line)); err == nil && m.isRequest() {
					sent[m.idKey()] = m.method
				} else if id, method, ok := requestHead(e.Line); ok {
					// A request cut in the log (a version 1
					// stream/write with its chunk).
					sent[id] = method
				}
			case "recv":
				line := []byte(e.Line)
				switch n := e.Stream; {
				case n != nil && n.Canonical && e.Size > len(e.Line):
					// The log keeps the start of a canonical stream/data
					// line; the rest is a payload of valid base64 whose
					// size the note keeps. The same line with a payload of
					// that size is as valid as the one sent.
					line = canonicalData(ref2{sink: n.Sink, handle: n.Handle}, make([]byte, n.Bytes))
				case e.Size > len(e.Line):
					continue // judged by host/max-message-size
				}
				m, err := parseMessage(line)
				if err != nil {
					return failf("plugin process %d received a line that is not a protocol message (%v): %s", pid, err, e.Line)
				}
				if err := v.checkHostMessage(m, sent); err != nil {
					return failf("plugin process %d received an invalid message (%v): %s", pid, err, e.Line)
				}
			}
		}
	}
	return nil
}

// requestHead reads the id and method of a request a scripted plugin sent
// from the start of its line, which the log may have cut: the plugin
// writes the members jsonrpc, id and method before params.
func requestHead(line string) (id, method string, ok bool) {
	var head struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
	}
	rest, _, found := strings.Cut(line, `,"params":`)
	if !found || json.Unmarshal([]byte(rest+"}"), &head) != nil || head.ID == nil || head.Method == "" {
		return "", "", false
	}
	return idKey(head.ID), head.Method, true
}

func judgeCallbacks(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	asked := 0
	for _, pid := range pids {
		answers := map[string][]*message{}
		for _, m := range h.received(pid) {
			if m.isResponse() {
				answers[m.idKey()] = append(answers[m.idKey()], m)
			}
		}
		for _, e := range h.procs[pid] {
			if e.Kind != "send" {
				continue
			}
			m, err := parseMessage([]byte(e.Line))
			if err != nil || !m.isRequest() {
				continue
			}
			asked++
			got := answers[m.idKey()]
			if len(got) != 1 {
				return failf("plugin process %d: %s (id %s) was answered %d times, want once", pid, m.method, m.idKey(), len(got))
			}
			a := got[0]
			want := map[string][]int64{
				protocol.MethodCommStart:     {protocol.CodeUnknownHandle},
				"conformance/no-such-method": {protocol.CodeMethodNotFound},
				protocol.MethodUIAsk:         {0, protocol.CodeUnsupported, protocol.CodeCancelled, protocol.CodeComponentFailed},
				protocol.MethodHookRun:       nil, // a result or any error
			}[m.method]
			e := a.wireErr()
			switch {
			case m.method == protocol.MethodHookRun:
			case e == nil && !containsCode(want, 0):
				return failf("plugin process %d: %s answered with a result %s, want error %v", pid, m.method, printable(a.Result), want)
			case e != nil && !containsCode(want, e.Code):
				return failf("plugin process %d: %s answered error %d %q, want %v", pid, m.method, e.Code, e.Message, want)
			}
		}
	}
	if asked == 0 {
		return failf("the scripted builder never ran: the host must prepare and run builder \"conformance\"")
	}
	return nil
}

func containsCode(codes []int64, c int64) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

// shutdownOf returns when pid received shutdown (and the message), when it
// answered it, and when its input ended.
func (h *hostRun) shutdownOf(pid int) (req *message, reqAt, answeredAt, eofAt time.Time) {
	for _, e := range h.procs[pid] {
		switch e.Kind {
		case "recv":
			if m, err := parseMessage([]byte(e.Line)); err == nil && m.method == protocol.MethodShutdown && req == nil {
				req, reqAt = m, e.Time
			}
		case "send":
			if req != nil && answeredAt.IsZero() && strings.Contains(e.Line, `"id":`+req.idKey()) {
				answeredAt = e.Time
			}
		case "eof":
			if eofAt.IsZero() {
				eofAt = e.Time
			}
		}
	}
	return
}

func judgeShutdown(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		req, _, answered, eof := h.shutdownOf(pid)
		if req == nil {
			return failf("plugin process %d never received shutdown", pid)
		}
		if req.Params != nil {
			return failf("plugin process %d: shutdown carries params %s; a host omits the member", pid, printable(req.Params))
		}
		if eof.IsZero() {
			return failf("plugin process %d: stdin never closed after shutdown was answered", pid)
		}
		if d := eof.Sub(answered); d > shutdownGrace+graceSlack {
			return failf("plugin process %d: stdin closed %v after the shutdown answer, want promptly", pid, d.Round(time.Millisecond))
		}
	}
	return nil
}

func judgeCancel(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		var run *message
		for _, m := range h.received(pid) {
			if m.method == protocol.MethodBuilderRun && m.isRequest() {
				run = m
			}
			if run != nil && m.method == protocol.MethodCancelRequest && !m.isRequest() {
				var p protocol.CancelParams
				json.Unmarshal(m.Params, &p)
				if idKey(p.ID) == run.idKey() {
					return nil
				}
			}
		}
	}
	return failf("no $/cancelRequest for the interrupted builder/run: a host that abandons a call cancels it")
}

// minGrace is the least wait host/escalation accepts for a step of §9.3:
// a host may choose its own graces, but one of less than a quarter of the
// default (2 s) is taken for none. The times are those at which a scripted
// plugin on a loaded machine noticed each step, so an interval can come
// out shorter than the host waited by a scheduling delay.
const minGrace = 500 * time.Millisecond

// escalationOf returns when pid got SIGTERM, the last time it logged that
// it was still alive after it (zero when it never did), and whether the
// host left it running.
func (h *hostRun) escalationOf(pid int) (term, alive time.Time, left bool) {
	for _, e := range h.procs[pid] {
		switch {
		case e.Kind == "signal" && e.Signal == syscall.SIGTERM.String() && term.IsZero():
			term = e.Time
		case e.Kind == "alive":
			alive = e.Time
		case e.Kind == "left-running":
			left = true
		}
	}
	return term, alive, left
}

func judgeEscalation(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		req, reqAt, _, eof := h.shutdownOf(pid)
		term, alive, left := h.escalationOf(pid)
		if alive.IsZero() {
			alive = term // killed before it could log
		}
		// SIGKILL came after the last "alive" and at most aliveTick later.
		killed := alive.Add(aliveTick)
		closeWait, termWait, killWait := eof.Sub(reqAt), term.Sub(eof), killed.Sub(term)
		switch {
		case req == nil:
			return failf("plugin process %d never received shutdown", pid)
		case eof.IsZero():
			return failf("plugin process %d: shutdown went unanswered and stdin was never closed", pid)
		case closeWait < minGrace:
			return failf("plugin process %d: stdin closed %v after a shutdown it had not answered; step 1 waits for the answer, up to a grace (2 s by default), and a host does not close stdin while it expects an answer (§9.2)", pid, closeWait.Round(time.Millisecond))
		case closeWait > shutdownGrace+graceSlack:
			return failf("plugin process %d: stdin closed %v after the unanswered shutdown, want within %v", pid, closeWait.Round(time.Millisecond), shutdownGrace)
		case term.IsZero():
			return failf("plugin process %d: still running after stdin closed, and no SIGTERM came (step 3 comes before SIGKILL)", pid)
		case term.Before(eof):
			return failf("plugin process %d: SIGTERM came %v before stdin was closed (step 2 comes first)", pid, eof.Sub(term).Round(time.Millisecond))
		case termWait < minGrace:
			return failf("plugin process %d: SIGTERM %v after stdin closed; step 2 gives the plugin a grace (2 s by default) to exit on its own", pid, termWait.Round(time.Millisecond))
		case termWait > shutdownGrace+graceSlack:
			return failf("plugin process %d: SIGTERM %v after stdin closed, want within %v", pid, termWait.Round(time.Millisecond), shutdownGrace)
		case left:
			return failf("plugin process %d: still running after SIGTERM when the host exited: no SIGKILL", pid)
		case killWait < minGrace:
			return failf("plugin process %d: killed within %v of SIGTERM; step 3 gives the plugin a grace (2 s by default) to clean up and exit", pid, killWait.Round(time.Millisecond))
		case killWait > killGrace+graceSlack:
			return failf("plugin process %d: killed %v after SIGTERM, want within %v", pid, killWait.Round(time.Millisecond), killGrace)
		}
		h.tr.notef("[%d] stdin closed %v after shutdown, SIGTERM %v after that, killed %v after that (to within %v)", pid, closeWait.Round(time.Millisecond), termWait.Round(time.Millisecond), killWait.Round(time.Millisecond), aliveTick)
	}
	return nil
}

func judgeMaxMessageSize(h *hostRun) error {
	pids, err := h.processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		answered := false
		for _, e := range h.procs[pid] {
			switch {
			case e.Kind == "send" && strings.Contains(e.Line, `"max_message_size"`):
				answered = true
			case e.Kind == "recv" && answered && int64(e.Size) > protocol.MinMaxMessageSize:
				return failf("plugin process %d declared max_message_size %d and received a line of %d bytes", pid, protocol.MinMaxMessageSize, e.Size)
			}
		}
	}
	return nil
}
