package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// ScriptedPluginArg is the first argument with which the runner's own
// binary runs as a scripted plugin, in host mode (see [RunHost]). A program
// that embeds the runner calls [MaybeServeScriptedPlugin] first thing in
// main (and in TestMain).
const ScriptedPluginArg = "__conformance-scripted-plugin"

// scenario is what a scripted plugin does; the runner writes it to
// scenario.json in the check's directory.
type scenario struct {
	// Run says how builder/run behaves: "build" calls back (ui/say,
	// ui/ask, communicator/start on an unknown handle, an unknown method,
	// hook/run) and returns an artifact; "block" waits until the run is
	// cancelled.
	Run string `json:"run"`
	// Stuck: the plugin never answers shutdown and ignores end of input
	// and SIGTERM.
	Stuck bool `json:"stuck,omitempty"`
	// MaxMessageSize is the limit the plugin declares.
	MaxMessageSize int64 `json:"max_message_size"`
	// HookPadding, when not zero, is the length of a string the builder
	// puts in hook/run's data: the host must not forward it to a
	// provisioner whose limit it exceeds (§3.2).
	HookPadding int `json:"hook_padding,omitempty"`
	// Versions are the protocol versions the plugin speaks, most preferred
	// first; empty means [protocol.SupportedVersions] (2, then 1). It
	// picks the first version the host offers that it speaks (§5.2).
	Versions []int `json:"versions,omitempty"`
	// MixVersions: the first scripted process to answer initialize speaks
	// only version 1, the others speak Versions, so that a relay joins a
	// version 1 connection to a version 2 one (§7.7).
	MixVersions bool `json:"mix_versions,omitempty"`
	// Comm, when set, has the builder offer a communicator in hook/run
	// and the provisioner move bytes through the one the host gives it
	// (scripted_comm.go).
	Comm *commPlan `json:"comm,omitempty"`
}

// event is one line of a scripted plugin's log, events-PID.jsonl.
type event struct {
	Time time.Time `json:"time"`
	PID  int       `json:"pid"`
	// Kind: start, recv, send, eof, signal, alive, exit, transfer.
	Kind string `json:"kind"`
	// Cookie is the magic cookie variable as the plugin found it (start).
	Cookie *string `json:"cookie,omitempty"`
	// Line is a line received or sent, cut to maxEventLine bytes; Size is
	// its full length.
	Line string `json:"line,omitempty"`
	Size int    `json:"size,omitempty"`
	// Signal names a signal received.
	Signal string `json:"signal,omitempty"`
	// Stream describes a line that is a notification of §7.5.2, read
	// from the whole line (Line may be cut).
	Stream *streamNote `json:"stream,omitempty"`
	// Transfer is what a scripted end had at the end of a transfer
	// (kind "transfer").
	Transfer *transferNote `json:"transfer,omitempty"`
}

const maxEventLine = 64 << 10

// maxDataLine is how much of a canonical stream/data line the log keeps.
const maxDataLine = 160

// maxNoteLine is how much of any other notification of §7.5.2 the log
// keeps: more than the longest valid stream/data line.
const maxNoteLine = 512 << 10

// callbackWait is how long the scripted plugin waits for the answer to one
// of its callbacks before it goes on without it.
const callbackWait = 3 * time.Second

// MaybeServeScriptedPlugin runs the process as a scripted plugin and exits
// when its arguments say so (os.Args[1] is [ScriptedPluginArg], os.Args[2]
// the check's directory); otherwise it returns at once.
func MaybeServeScriptedPlugin() {
	if len(os.Args) < 3 || os.Args[1] != ScriptedPluginArg {
		return
	}
	os.Exit(serveScripted(os.Args[2], os.Stdin, os.Stdout))
}

// scripted is a plugin process that follows a scenario and logs every line.
type scripted struct {
	sc  scenario
	out io.Writer
	log *os.File

	wmu  sync.Mutex // one stdout write at a time
	lmu  sync.Mutex // one log write at a time
	next int64

	mu       sync.Mutex
	waiting  map[string]chan map[string]json.RawMessage // answers to our requests, by id
	cancel   map[string]chan struct{}                   // in-flight host requests, by id
	hostAsks bool
	version  int // the protocol version chosen in initialize

	dir     string            // the check's directory
	machine map[string][]byte // the builder's machine: files by path
	st      streamTables
}

// speaks returns the versions this process speaks. With MixVersions the
// first process to ask claims version 1 alone, through a file created
// exclusively in the check's directory.
func (p *scripted) speaks() []int {
	if p.sc.MixVersions {
		f, err := os.OpenFile(filepath.Join(p.dir, "mix-versions.claim"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return []int{1}
		}
	}
	if len(p.sc.Versions) > 0 {
		return p.sc.Versions
	}
	return protocol.SupportedVersions
}

func serveScripted(dir string, in io.Reader, out io.Writer) int {
	var sc scenario
	if b, err := os.ReadFile(filepath.Join(dir, "scenario.json")); err != nil || json.Unmarshal(b, &sc) != nil {
		fmt.Fprintf(os.Stderr, "scripted plugin: no scenario in %s: %v\n", dir, err)
		return 3
	}
	logf, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("events-%d.jsonl", os.Getpid())), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "scripted plugin: %v\n", err)
		return 3
	}
	p := &scripted{sc: sc, out: out, log: logf, dir: dir, waiting: map[string]chan map[string]json.RawMessage{}, cancel: map[string]chan struct{}{}, machine: map[string][]byte{}}
	p.st.init()
	cookie, ok := os.LookupEnv(protocol.EnvMagicCookie)
	var cp *string
	if ok {
		cp = &cookie
	}
	p.record(event{Kind: "start", Cookie: cp})
	if !ok || cookie != protocol.MagicCookieValue {
		// A real plugin exits here (§2.2); the scripted one serves anyway,
		// so that only host/launch-cookie reports the mistake.
		fmt.Fprintln(os.Stderr, "scripted plugin: started without the magic cookie; serving anyway")
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stop := make(chan struct{})
	var once sync.Once
	var ticking sync.Once
	go func() {
		for s := range sig {
			p.record(event{Kind: "signal", Signal: s.String()})
			switch {
			case s == syscall.SIGTERM && !sc.Stuck:
				once.Do(func() { close(stop) })
			case s == syscall.SIGTERM:
				// SIGKILL cannot be logged: the last "alive" says, to
				// within aliveTick, when it came (host/escalation).
				ticking.Do(func() { go p.tick() })
			}
		}
	}()
	go func() {
		br := bufio.NewReaderSize(in, 1<<20)
		for {
			line, size, err := readLine(br)
			if size > 0 || len(line) > 0 {
				note, data := parseNote(line)
				p.record(event{Kind: "recv", Line: string(cut(line, note)), Size: size, Stream: note})
				switch {
				case size != len(line):
				case note != nil && note.Bad == "":
					p.onFlow(note, data)
				default:
					p.handle(line)
				}
			}
			if err != nil {
				p.record(event{Kind: "eof"})
				if !sc.Stuck {
					once.Do(func() { close(stop) })
				}
				return
			}
		}
	}()
	<-stop
	p.record(event{Kind: "exit"})
	return 0
}

// aliveTick is how often a stuck scripted plugin logs that it is still
// alive once it has got SIGTERM.
const aliveTick = 50 * time.Millisecond

// tick logs "alive" every aliveTick until the process is killed.
func (p *scripted) tick() {
	for {
		p.record(event{Kind: "alive"})
		time.Sleep(aliveTick)
	}
}

// cut shortens a line for the log: to maxEventLine bytes, and a
// stream/data line in the canonical form, whose note says all the judges
// need, to its first maxDataLine bytes. Any other stream/data line is kept
// whole (up to maxNoteLine), so that host/messages-valid can validate it.
func cut(b []byte, note *streamNote) []byte {
	limit := maxEventLine
	switch {
	case note != nil && note.Method == protocol.MethodStreamData && note.Canonical:
		limit = maxDataLine
	case note != nil:
		limit = maxNoteLine
	}
	if len(b) > limit {
		return b[:limit]
	}
	return b
}

func (p *scripted) record(e event) {
	e.Time = time.Now().UTC()
	e.PID = os.Getpid()
	b, _ := json.Marshal(e)
	p.lmu.Lock()
	p.log.Write(append(b, '\n'))
	p.lmu.Unlock()
}

func (p *scripted) send(v any) {
	b, _ := json.Marshal(v)
	p.sendLine(b)
}

// sendLine writes one line as it is.
func (p *scripted) sendLine(b []byte) {
	note, _ := parseNote(b)
	p.sendNoted(b, note)
}

// sendNoted writes one line whose stream note the caller knows.
func (p *scripted) sendNoted(b []byte, note *streamNote) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	// Logged before it is written, so that it comes before its answer,
	// and a credit before the data it allows.
	p.record(event{Kind: "send", Line: string(cut(b, note)), Size: len(b), Stream: note})
	p.out.Write(append(b, '\n'))
}

func (p *scripted) answer(id json.RawMessage, result any, werr *wireError) {
	if werr != nil {
		p.send(response{JSONRPC: "2.0", ID: id, Error: werr})
		return
	}
	if result == nil {
		result = nullResult{}
	}
	p.send(response{JSONRPC: "2.0", ID: id, Result: result})
}

// call sends a request to the host and waits up to callbackWait for its
// answer (host/callbacks-answered reports a missing one).
func (p *scripted) call(method string, params any) map[string]json.RawMessage {
	return p.callWait(method, params, callbackWait)
}

// callWait is call with another bound on the wait.
func (p *scripted) callWait(method string, params any, wait time.Duration) map[string]json.RawMessage {
	p.mu.Lock()
	p.next++
	id := json.RawMessage(strconv.FormatInt(p.next, 10))
	ch := make(chan map[string]json.RawMessage, 1)
	p.waiting[string(id)] = ch
	p.mu.Unlock()
	p.send(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		return nil
	}
}

func (p *scripted) handle(line []byte) {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return
	}
	id, hasID := m["id"]
	var method string
	json.Unmarshal(m["method"], &method)
	if method == "" {
		// An answer to one of our requests.
		p.mu.Lock()
		ch := p.waiting[string(bytes.TrimSpace(id))]
		delete(p.waiting, string(bytes.TrimSpace(id)))
		p.mu.Unlock()
		if ch != nil {
			ch <- m
		}
		return
	}
	if !hasID {
		if method == protocol.MethodCancelRequest {
			var c struct {
				ID json.RawMessage `json:"id"`
			}
			json.Unmarshal(m["params"], &c)
			p.mu.Lock()
			if ch := p.cancel[string(bytes.TrimSpace(c.ID))]; ch != nil {
				close(ch)
				delete(p.cancel, string(bytes.TrimSpace(c.ID)))
			}
			p.mu.Unlock()
		}
		return
	}
	switch method {
	case protocol.MethodInitialize:
		var ip protocol.InitializeParams
		json.Unmarshal(m["params"], &ip)
		speaks := p.speaks()
		version := 0
		for _, v := range ip.ProtocolVersions {
			if version == 0 && slices.Contains(speaks, v) {
				version = v
			}
		}
		if version == 0 {
			data, _ := json.Marshal(protocol.UnsupportedVersionData{Supported: speaks})
			p.answer(id, nil, &wireError{Code: protocol.CodeUnsupportedVersion, Message: fmt.Sprintf("unsupported protocol version: host offers %v, plugin speaks %v", ip.ProtocolVersions, speaks), Data: data})
			return
		}
		comp := func(typ string) protocol.Component {
			return protocol.Component{Type: typ, Name: "conformance", ConfigSchema: json.RawMessage(scriptedSchema)}
		}
		p.mu.Lock()
		p.version = version
		p.mu.Unlock()
		p.answer(id, protocol.InitializeResult{
			ProtocolVersion: version,
			Plugin:          protocol.Peer{Name: "plugin-conformance-scripted", Version: "1"},
			Components:      []protocol.Component{comp(protocol.TypeBuilder), comp(protocol.TypeProvisioner), comp(protocol.TypePostProcessor)},
			Limits:          protocol.Limits{MaxMessageSize: p.sc.MaxMessageSize},
			Capabilities:    protocol.PluginCapabilities{Cancel: true},
		}, nil)
		p.mu.Lock()
		p.hostAsks = ip.Capabilities.Ask
		p.mu.Unlock()
	case protocol.MethodPrepare:
		p.answer(id, protocol.PrepareResult{Instance: "i1", Warnings: []string{}}, nil)
	case protocol.MethodBuilderRun:
		go p.builderRun(id)
	case protocol.MethodProvision:
		var pp protocol.ProvisionParams
		json.Unmarshal(m["params"], &pp)
		go func() {
			p.send(request{JSONRPC: "2.0", Method: protocol.MethodUISay, Params: protocol.UIMessageParams{Message: "scripted provisioner"}})
			if p.sc.Comm != nil && pp.Communicator != "" {
				p.provisionComm(pp.Communicator)
			}
			p.answer(id, nil, nil)
		}()
	case protocol.MethodStreamRead, protocol.MethodStreamWrite, protocol.MethodStreamClose:
		p.serveV1(id, method, m["params"])
	case protocol.MethodCommStart, protocol.MethodCommUpload, protocol.MethodCommDownload, protocol.MethodCommUploadDir, protocol.MethodCommDownloadDir:
		go p.serveBuilderComm(id, method, m["params"])
	case protocol.MethodPostProcess:
		p.answer(id, protocol.PostProcessResult{Keep: true}, nil)
	case protocol.MethodArtifactDestroy:
		p.answer(id, nil, nil)
	case protocol.MethodShutdown:
		if !p.sc.Stuck {
			p.answer(id, nil, nil)
		}
	default:
		p.answer(id, nil, errorOf(protocol.CodeMethodNotFound, "method not found: %s", method))
	}
}

func (p *scripted) builderRun(id json.RawMessage) {
	if p.sc.Run == "block" {
		ch := make(chan struct{})
		p.mu.Lock()
		p.cancel[string(bytes.TrimSpace(id))] = ch
		p.mu.Unlock()
		<-ch
		p.answer(id, nil, errorOf(protocol.CodeCancelled, "request cancelled"))
		return
	}
	p.send(request{JSONRPC: "2.0", Method: protocol.MethodUISay, Params: protocol.UIMessageParams{Message: "scripted builder: running"}})
	if p.sc.Comm != nil {
		// The stream scenarios: only the hook, with a communicator whose
		// streams the host relays to the provisioner (§7.7).
		p.callWait(protocol.MethodHookRun, protocol.HookRunParams{Name: protocol.HookProvision, Communicator: builderComm, Data: map[string]any{"ID": "conformance"}}, commWait)
		p.answer(id, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "packer-stdio.conformance", ID: "scripted", Files: []string{}, String: "scripted artifact"}}, nil)
		return
	}
	p.mu.Lock()
	asks := p.hostAsks
	p.mu.Unlock()
	if asks {
		p.call(protocol.MethodUIAsk, protocol.UIAskParams{Query: "conformance: continue? [y/n]"})
	}
	p.call(protocol.MethodCommStart, protocol.CommStartParams{Communicator: "c-never-minted", Command: "true"})
	p.call("conformance/no-such-method", map[string]any{})
	data := map[string]any{"ID": "conformance"}
	if p.sc.HookPadding > 0 {
		data["padding"] = strings.Repeat("x", p.sc.HookPadding)
	}
	p.call(protocol.MethodHookRun, protocol.HookRunParams{Name: protocol.HookProvision, Communicator: "", Data: data})
	p.answer(id, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "packer-stdio.conformance", ID: "scripted", Files: []string{}, String: "scripted artifact"}}, nil)
}

// scriptedSchema accepts any configuration with the packer_* keys.
const scriptedSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"packer_build_name":{"type":"string"},"packer_builder_type":{"type":"string"},"packer_debug":{"type":"boolean"},"packer_force":{"type":"boolean"},"packer_on_error":{"type":"string"},"packer_user_variables":{"type":"object"},"packer_sensitive_variables":{"type":"array"},"padding":{"type":"string"}}}`
