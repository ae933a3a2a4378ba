package pluginkit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// wire is a Server serving over in-memory pipes, driven with raw lines.
type wire struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *bufio.Reader
	outR *io.PipeReader
	done chan error
	log  *lockedBuffer
}

type pipeCloser struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipeCloser) Close() error {
	p.r.Close()
	return p.w.Close()
}

func startWire(t *testing.T, srv *pluginkit.Server) *wire {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	w := &wire{t: t, in: inW, out: bufio.NewReaderSize(outR, 1<<20), outR: outR, done: make(chan error, 1), log: &lockedBuffer{}}
	go func() {
		w.done <- srv.ServeConn(context.Background(), inR, outW, pipeCloser{inR, outW}, log.New(w.log, "", 0))
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
		<-w.done
	})
	return w
}

func (w *wire) send(line string) {
	w.t.Helper()
	if _, err := io.WriteString(w.in, line+"\n"); err != nil {
		w.t.Fatalf("sending %.80q: %v", line, err)
	}
}

// recv reads the next line and decodes it, numbers kept exact.
func (w *wire) recv() any {
	w.t.Helper()
	line, err := w.out.ReadBytes('\n')
	if err != nil {
		w.t.Fatalf("reading an answer: %v (plugin log: %s)", err, w.log.String())
	}
	v, err := decode(line)
	if err != nil {
		w.t.Fatalf("answer %q: %v", line, err)
	}
	return v
}

func decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// normalize removes every "message" member inside an error object (error
// texts are for people; codes, ids and data are the contract), after
// checking each is a non-empty string.
func normalize(t *testing.T, v any) any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if e, ok := m["error"].(map[string]any); ok {
		if s, _ := e["message"].(string); s == "" {
			t.Errorf("error without a message: %v", v)
		}
		delete(e, "message")
		if d, ok := e["data"].(map[string]any); ok {
			if errs, ok := d["errors"].([]any); ok {
				for _, ce := range errs {
					ce := ce.(map[string]any)
					if s, _ := ce["message"].(string); s == "" {
						t.Errorf("config error without a message: %v", v)
					}
					delete(ce, "message")
				}
			}
		}
	}
	return m
}

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := decode([]byte(s))
	if err != nil {
		t.Fatalf("bad expectation %s: %v", s, err)
	}
	return v
}

const initLine = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocol_versions":[1],"host":{"name":"packer","version":"test"},"limits":{"max_message_size":4194304},"capabilities":{"ask":true,"progress":true}}}`

func req(id, method, params string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"` + method + `","params":` + params + `}`
}

func errAns(id string, code int, data string) string {
	s := `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":` + itoa(code)
	if data != "" {
		s += `,"data":` + data
	}
	return s + `}}`
}

func resAns(id, result string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"result":` + result + `}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

const (
	prepBuilder = `{"type":"builder","name":"test","configs":[{"source":"a","count":1}]}`
	okPrepare   = `{"instance":"i1","warnings":[]}`
)

func prepMode(mode string) string {
	return `{"type":"builder","name":"test","configs":[{"source":"a","count":1,"mode":"` + mode + `"}]}`
}

// step sends one line and expects these answers, in order.
type step struct {
	send string
	want []string
}

func TestWire(t *testing.T) {
	tests := []struct {
		name   string
		init   bool // send initialize first
		steps  []step
		reason string
	}{
		{name: "invalid JSON then a valid request", init: true, steps: []step{
			{`{"jsonrpc":`, []string{errAns("null", protocol.CodeParseError, "")}},
			{req("2", "nope", "{}"), []string{errAns("2", protocol.CodeMethodNotFound, "")}},
		}},
		{name: "invalid UTF-8", init: true, steps: []step{
			{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", []string{errAns("null", protocol.CodeParseError, "")}},
		}},
		{name: "no method", init: true, steps: []step{
			{`{"jsonrpc":"2.0","id":1}`, []string{errAns("1", protocol.CodeInvalidRequest, "")}},
		}},
		{name: "wrong jsonrpc version", init: true, steps: []step{
			{`{"jsonrpc":"1.0","id":1,"method":"nope","params":{}}`, []string{errAns("1", protocol.CodeInvalidRequest, "")}},
		}},
		{name: "method not a string", init: true, steps: []step{
			{`{"jsonrpc":"2.0","id":1,"method":5}`, []string{errAns("1", protocol.CodeInvalidRequest, "")}},
		}},
		{name: "params a number", init: true, steps: []step{
			{`{"jsonrpc":"2.0","id":1,"method":"nope","params":5}`, []string{errAns("1", protocol.CodeInvalidRequest, "")}},
		}},
		{name: "batch", init: true, reason: "a batch is one invalid request, answered once with a null id", steps: []step{
			{`[` + req("1", "nope", "{}") + `,` + req("2", "nope", "{}") + `]`, []string{errAns("null", protocol.CodeInvalidRequest, "")}},
		}},
		{name: "unknown method", init: true, steps: []step{
			{req("1", "nope", "{}"), []string{errAns("1", protocol.CodeMethodNotFound, "")}},
		}},
		{name: "notification never answered", init: true, steps: []step{
			{`{"jsonrpc":"2.0","method":"nope","params":{}}`, nil},
			{`{"jsonrpc":"2.0","method":"component/prepare","params":{}}`, nil},
			{req("3", "nope", "{}"), []string{errAns("3", protocol.CodeMethodNotFound, "")}},
		}},
		{name: "ids echoed with their type", init: true, steps: []step{
			{req(`"1"`, "nope", "{}"), []string{errAns(`"1"`, protocol.CodeMethodNotFound, "")}},
			{req("1", "nope", "{}"), []string{errAns("1", protocol.CodeMethodNotFound, "")}},
			{req("9007199254740993", "nope", "{}"), []string{errAns("9007199254740993", protocol.CodeMethodNotFound, "")}},
		}},
		{name: "negative id", init: true, reason: "ids are strings or integers from 0; a bad id is echoed raw",
			steps: []step{
				{req("-1", "nope", "{}"), []string{errAns("-1", protocol.CodeInvalidRequest, "")}},
			}},
		{name: "over-size line", init: true, steps: []step{
			{`{"jsonrpc":"2.0","id":1,"method":"nope","params":{"x":"` + strings.Repeat("a", protocol.DefaultMaxMessageSize) + `"}}`,
				[]string{errAns("null", protocol.CodeMessageTooLarge, "")}},
			{req("2", "nope", "{}"), []string{errAns("2", protocol.CodeMethodNotFound, "")}},
		}},
		{name: "request before initialize", steps: []step{
			{`{"jsonrpc":"2.0","method":"ui/say","params":{}}`, nil},
			{req("1", "component/prepare", prepBuilder), []string{errAns("1", protocol.CodeNotInitialized, "")}},
			{req("2", "shutdown", "{}"), []string{errAns("2", protocol.CodeNotInitialized, "")}},
			{req("3", "nope", "{}"), []string{errAns("3", protocol.CodeNotInitialized, "")}},
		}},
		{name: "initialize", steps: []step{
			{initLine, nil}, // checked in TestInitializeResult
		}},
		{name: "version mismatch, then a good initialize", reason: "a failed initialize does not count", steps: []step{
			{req("1", "initialize", `{"protocol_versions":[7,8],"host":{"name":"p","version":"1"},"limits":{"max_message_size":4194304},"capabilities":{"ask":false,"progress":false}}`),
				[]string{errAns("1", protocol.CodeUnsupportedVersion, `{"supported":[2,1]}`)}},
			{req("2", "component/prepare", prepBuilder), []string{errAns("2", protocol.CodeNotInitialized, "")}},
			{initLine, nil},
			{req("3", "component/prepare", prepBuilder), []string{resAns("3", okPrepare)}},
		}},
		{name: "initialize with invalid params", steps: []step{
			{req("1", "initialize", `{"protocol_versions":"1"}`), []string{errAns("1", protocol.CodeInvalidParams, "")}},
			{req("2", "initialize", `{"protocol_versions":[1],"extra":true}`), []string{errAns("2", protocol.CodeInvalidParams, "")}},
			{`{"jsonrpc":"2.0","id":3,"method":"initialize"}`, []string{errAns("3", protocol.CodeInvalidParams, "")}},
			{req("4", "initialize", `{"protocol_versions":[1],"limits":{"max_message_size":10}}`), []string{errAns("4", protocol.CodeInvalidParams, "")}},
		}},
		{name: "second initialize", init: true, steps: []step{
			{req("1", "initialize", `{"protocol_versions":[1]}`), []string{errAns("1", protocol.CodeInvalidRequest, "")}},
		}},
		{name: "prepare good", init: true, steps: []step{
			{req("1", "component/prepare", `{"type":"builder","name":"test","configs":[{"source":"a","count":5},{"count":0,"packer_build_name":"b"}]}`),
				[]string{resAns("1", `{"instance":"i1","warnings":["count is zero"]}`)}},
			{req("2", "component/prepare", `{"type":"provisioner","name":"test","configs":[{"source":"a","count":1}]}`),
				[]string{resAns("2", `{"instance":"i2","warnings":[]}`)}},
		}},
		{name: "prepare bad config", init: true, reason: "schema violations, each at its key's path, sorted; Prepare is not called", steps: []step{
			{req("1", "component/prepare", `{"type":"builder","name":"test","configs":[{"source":"a","count":"x"},{"extra":1,"source":null,"labels":{"k":2},"packer_debug":"yes"}]}`),
				[]string{errAns("1", protocol.CodeConfigInvalid, `{"errors":[{"path":"/count"},{"path":"/extra"},{"path":"/labels/k"},{"path":"/packer_debug"},{"path":"/source"}],"warnings":[]}`)}},
			{req("2", "component/prepare", `{"type":"builder","name":"test","configs":[{}]}`),
				[]string{errAns("2", protocol.CodeConfigInvalid, `{"errors":[{"path":"/source"}],"warnings":[]}`)}},
		}},
		{name: "prepare rejected by Prepare", init: true, steps: []step{
			{req("1", "component/prepare", `{"type":"builder","name":"test","configs":[{"source":"a","count":-1}]}`),
				[]string{errAns("1", protocol.CodeConfigInvalid, `{"errors":[{"path":"/count"}],"warnings":["count is odd"]}`)}},
			{req("2", "component/prepare", prepMode("prepare-plain-error")),
				[]string{errAns("2", protocol.CodeConfigInvalid, `{"errors":[{"path":""}],"warnings":[]}`)}},
		}},
		{name: "prepare with invalid params", init: true, steps: []step{
			{req("1", "component/prepare", `{"type":"builder","name":"test","configs":[[1]]}`), []string{errAns("1", protocol.CodeInvalidParams, "")}},
			{req("2", "component/prepare", `{"type":5,"name":"test","configs":[]}`), []string{errAns("2", protocol.CodeInvalidParams, "")}},
		}},
		{name: "unknown component", init: true, steps: []step{
			{req("1", "component/prepare", `{"type":"builder","name":"nope","configs":[]}`), []string{errAns("1", protocol.CodeUnknownComponent, "")}},
			{req("2", "component/prepare", `{"type":"hook","name":"test","configs":[]}`), []string{errAns("2", protocol.CodeInvalidParams, "")}}, // the shape comes first: "hook" is not a type
		}},
		{name: "unknown or mistyped instance", init: true, steps: []step{
			{req("1", "builder/run", `{"instance":"i9"}`), []string{errAns("1", protocol.CodeUnknownHandle, "")}},
			{req("2", "component/prepare", prepBuilder), []string{resAns("2", okPrepare)}},
			{req("3", "provisioner/provision", `{"instance":"i1","communicator":"","data":{}}`), []string{errAns("3", protocol.CodeUnknownHandle, "")}},
			{req("4", "artifact/destroy", `{"artifact":"a1"}`), []string{errAns("4", protocol.CodeUnknownHandle, "")}},
			{req("5", "communicator/start", `{"communicator":"c1","command":"x"}`), []string{errAns("5", protocol.CodeUnknownHandle, "")}},
		}},
		{name: "run, post-process and destroy", init: true, steps: []step{
			{req("1", "component/prepare", prepBuilder), []string{resAns("1", okPrepare)}},
			{req("2", "builder/run", `{"instance":"i1"}`),
				[]string{resAns("2", `{"artifact":{"handle":"a1","builder_id":"test.builder","id":"a","files":["/tmp/a"],"string":"artifact a","state":{"k":"v"}}}`)}},
			{req("3", "component/prepare", `{"type":"post-processor","name":"test","configs":[{"source":"p","count":1}]}`), []string{resAns("3", `{"instance":"i2","warnings":[]}`)}},
			{req("4", "postprocessor/postprocess", `{"instance":"i2","artifact":{"handle":"a1","builder_id":"x","id":"in","files":["/f"],"string":"s"}}`),
				[]string{resAns("4", `{"artifact":{"handle":"a2","builder_id":"test.pp","id":"in.pp","files":["/f"],"string":""},"keep":true,"force_override":false}`)}},
			{req("5", "artifact/destroy", `{"artifact":"a1"}`), []string{resAns("5", "null")}},
			{req("6", "artifact/destroy", `{"artifact":"a1"}`), []string{errAns("6", protocol.CodeUnknownHandle, "")}},
		}},
		{name: "post-processor passes its input through", init: true, reason: "the input's handle belongs to another connection: no handle", steps: []step{
			{req("1", "component/prepare", `{"type":"post-processor","name":"test","configs":[{"source":"p","count":1,"mode":"pass"}]}`), []string{resAns("1", okPrepare)}},
			{req("2", "postprocessor/postprocess", `{"instance":"i1","artifact":{"handle":"a7","builder_id":"x","id":"in","files":[],"string":"s"}}`),
				[]string{resAns("2", `{"artifact":{"builder_id":"x","id":"in","files":[],"string":"s"},"keep":true,"force_override":true}`)}},
		}},
		{name: "component errors", init: true, steps: []step{
			{req("1", "component/prepare", prepMode("fail")), []string{resAns("1", okPrepare)}},
			{req("2", "builder/run", `{"instance":"i1"}`), []string{errAns("2", protocol.CodeComponentFailed, "")}},
			{req("3", "component/prepare", prepMode("protocol-error")), []string{resAns("3", `{"instance":"i2","warnings":[]}`)}},
			{req("4", "builder/run", `{"instance":"i2"}`), []string{errAns("4", protocol.CodeUnsupported, "")}},
		}},
		{name: "panic", init: true, reason: "a panic is answered and the plugin keeps serving", steps: []step{
			{req("1", "component/prepare", prepMode("panic")), []string{resAns("1", okPrepare)}},
			{req("2", "builder/run", `{"instance":"i1"}`), []string{errAns("2", protocol.CodeComponentPanicked, `{"value":"boom"}`)}},
			{req("3", "component/prepare", prepMode("prepare-panic")), []string{errAns("3", protocol.CodeComponentPanicked, `{"value":"prepare boom"}`)}},
			{req("4", "component/prepare", prepBuilder), []string{resAns("4", `{"instance":"i2","warnings":[]}`)}},
			{req("5", "builder/run", `{"instance":"i1"}`), []string{errAns("5", protocol.CodeComponentPanicked, `{"value":"boom"}`)}},
		}},
		{name: "cancel during run", init: true, reason: "Run returns an error that does not wrap ctx.Err(); still cancelled", steps: []step{
			{req("1", "component/prepare", prepMode("wait")), []string{resAns("1", okPrepare)}},
			{req("7", "builder/run", `{"instance":"i1"}`), []string{`{"jsonrpc":"2.0","method":"ui/say","params":{"message":"waiting"}}`}},
			{`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}`, []string{errAns("7", protocol.CodeCancelled, "")}},
		}},
		{name: "params shape before lookups", init: true, steps: []step{
			{req("1", "component/prepare", `{"type":"builder","name":"nope","configs":[1]}`), []string{errAns("1", protocol.CodeInvalidParams, "")}},
			{req("2", "component/prepare", `{"type":"communicator","name":"nope","configs":[]}`), []string{errAns("2", protocol.CodeInvalidParams, "")}},
			{req("3", "builder/run", `{}`), []string{errAns("3", protocol.CodeInvalidParams, "")}},
			{req("4", "artifact/destroy", `{"artifact":""}`), []string{errAns("4", protocol.CodeInvalidParams, "")}},
			{req("5", "postprocessor/postprocess", `{"instance":"i9","artifact":{"builder_id":"b","id":"x","string":"s"}}`), []string{errAns("5", protocol.CodeInvalidParams, "")}},
		}},
		{name: "initialize params shape before version", steps: []step{
			{req("1", "initialize", `{"protocol_versions":[9],"host":{"name":"packer","version":"t"},"limits":{"max_message_size":10},"capabilities":{"ask":true,"progress":true}}`), []string{errAns("1", protocol.CodeInvalidParams, "")}},
			{req("2", "initialize", `{"protocol_versions":[1],"host":{"name":"packer","version":"t"},"limits":{"max_message_size":4194304},"capabilities":{"ask":true}}`), []string{errAns("2", protocol.CodeInvalidParams, "")}},
		}},
		{name: "notification methods sent with an id", init: true, steps: []step{
			{req("1", "$/cancelRequest", `{"id":5}`), []string{errAns("1", protocol.CodeMethodNotFound, "")}},
			{req("2", "ui/say", `{"message":"hi"}`), []string{errAns("2", protocol.CodeMethodNotFound, "")}},
		}},
		{name: "shutdown params", init: true, steps: []step{
			{req("1", "shutdown", `[]`), []string{errAns("1", protocol.CodeInvalidParams, "")}},
			{req("2", "shutdown", `{"now":true}`), []string{errAns("2", protocol.CodeInvalidParams, "")}},
			{`{"jsonrpc":"2.0","id":3,"method":"shutdown"}`, []string{resAns("3", "null")}},
		}},
		{name: "shutdown then more requests", init: true, steps: []step{
			{req("1", "shutdown", "{}"), []string{resAns("1", "null")}},
			{req("2", "component/prepare", prepBuilder), []string{errAns("2", protocol.CodeShuttingDown, "")}},
			{req("3", "shutdown", "{}"), []string{errAns("3", protocol.CodeShuttingDown, "")}},
			{req("4", "initialize", "{}"), []string{errAns("4", protocol.CodeShuttingDown, "")}}, // after shutdown, initialize too
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := startWire(t, newTestServer(newObserved()))
			if tc.init {
				w.send(initLine)
				w.recv()
			}
			for i, s := range tc.steps {
				w.send(s.send)
				for j, want := range s.want {
					got := normalize(t, w.recv())
					if diff := cmp.Diff(mustDecode(t, want), got); diff != "" {
						t.Fatalf("step %d (%.100s), answer %d (-want +got):\n%s\nreason: %s", i, s.send, j, diff, tc.reason)
					}
				}
				if s.send == initLine && s.want == nil {
					w.recv() // the initialize answer
				}
			}
			// Nothing else is pending: the next answer is the sentinel's.
			w.send(req(`"sentinel"`, "nope", "{}"))
			if got := w.recv().(map[string]any)["id"]; got != "sentinel" {
				t.Errorf("after the steps: got an answer to id %v, want only the sentinel's", got)
			}
		})
	}
}

// TestInitializeResult checks the whole handshake answer, schemas included.
func TestInitializeResult(t *testing.T) {
	w := startWire(t, newTestServer(newObserved()))
	w.send(initLine)
	got, _ := json.Marshal(w.recv())
	var res protocol.InitializeResult
	if err := json.Unmarshal(got, &struct {
		Result *protocol.InitializeResult `json:"result"`
	}{&res}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(protocol.Peer{Name: "packer-plugin-test", Version: "1.2.3"}, res.Plugin); diff != "" {
		t.Errorf("plugin (-want +got):\n%s", diff)
	}
	if res.ProtocolVersion != 1 || res.Limits.MaxMessageSize != protocol.DefaultMaxMessageSize || !res.Capabilities.Cancel {
		t.Errorf("got version %d, limits %+v, capabilities %+v", res.ProtocolVersion, res.Limits, res.Capabilities)
	}
	var types []string
	for _, c := range res.Components {
		types = append(types, c.Type+" "+c.Name)
		var schema struct {
			Schema               string                     `json:"$schema"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
			Required             []string                   `json:"required"`
			Properties           map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(c.ConfigSchema, &schema); err != nil {
			t.Fatalf("%s schema: %v", c.Name, err)
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		want := []string{"count", "labels", "mode", "packer_build_name", "packer_builder_type", "packer_debug",
			"packer_force", "packer_on_error", "packer_sensitive_variables", "packer_user_variables", "source"}
		if diff := cmp.Diff(want, props, cmpSorted); diff != "" {
			t.Errorf("%s schema properties (-want +got):\n%s", c.Type, diff)
		}
		if schema.Schema != "https://json-schema.org/draft/2020-12/schema" || schema.AdditionalProperties == nil || *schema.AdditionalProperties ||
			!cmp.Equal([]string{"source"}, schema.Required) {
			t.Errorf("%s schema: %s", c.Type, c.ConfigSchema)
		}
	}
	if diff := cmp.Diff([]string{"builder test", "provisioner test", "post-processor test"}, types); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
}
