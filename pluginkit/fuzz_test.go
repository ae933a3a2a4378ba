package pluginkit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// fuzzConfig is the configuration of the fuzzed components.
type fuzzConfig struct {
	Name  string   `json:"name,omitempty"`
	Count int      `json:"count,omitempty"`
	Tags  []string `json:"tags,omitempty"`
}

type fuzzBuilder struct{ cfg fuzzConfig }

func (b *fuzzBuilder) Config() any                { return &b.cfg }
func (b *fuzzBuilder) Prepare() ([]string, error) { return nil, nil }
func (b *fuzzBuilder) Run(ctx context.Context, ui pluginkit.UI, _ pluginkit.Hook) (pluginkit.Artifact, error) {
	ui.Say("running " + b.cfg.Name)
	return &pluginkit.BasicArtifact{BuilderIDValue: "fuzz", IDValue: b.cfg.Name, StringValue: "fuzz"}, nil
}

type fuzzProvisioner struct{ cfg fuzzConfig }

func (p *fuzzProvisioner) Config() any                { return &p.cfg }
func (p *fuzzProvisioner) Prepare() ([]string, error) { return nil, nil }
func (p *fuzzProvisioner) Provision(context.Context, pluginkit.UI, pluginkit.Communicator, map[string]any) error {
	return nil
}

const (
	fuzzInit     = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocol_versions":[1],"host":{"name":"fuzz","version":"0"},"limits":{"max_message_size":4194304},"capabilities":{"ask":false,"progress":false}}}`
	fuzzSentinel = `{"jsonrpc":"2.0","id":"fuzz-sentinel","method":"fuzz/sentinel","params":{}}`
)

// FuzzServerDispatch feeds arbitrary lines to a pluginkit.Server after a
// valid handshake, over pipes. Whatever the input, the server must not
// panic, every line it writes must be a well-formed JSON-RPC 2.0 message
// (checked by a strict protocol.LineStream), and it must still answer a
// valid request sent after the input.
func FuzzServerDispatch(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"component/prepare","params":{"type":"builder","name":"fuzz","configs":[{"name":"a"}]}}` + "\n" +
			`{"jsonrpc":"2.0","id":2,"method":"builder/run","params":{"instance":"i1"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"component/prepare","params":{"type":"provisioner","name":"fuzz","configs":[{"count":"x"}]}}`,
		`{"jsonrpc":"2.0","id":3,"method":"builder/run","params":{"instance":"i9"}}` + "\n" + `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":3}}`,
		`{"jsonrpc":"2.0","id":4,"method":"stream/read","params":{"stream":"s1","max":10}}`,
		`{"jsonrpc":"2.0","id":5,"method":"artifact/destroy","params":{"artifact":"a1"}}`,
		`{"jsonrpc":"2.0","id":6,"result":null}`,
		`[{"jsonrpc":"2.0","id":1,"method":"x"}]` + "\n\xff\xfe\n{}\n" + `{"jsonrpc":"2.0","id":-1,"method":"m"}`,
		`{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocol_versions":[9]}}`,
		`{"jsonrpc":"2.0","id":8,"method":"shutdown","params":{}}`,
	} {
		f.Add([]byte(seed))
	}
	srv := pluginkit.NewServer(protocol.Peer{Name: "fuzz", Version: "0"})
	srv.RegisterBuilder("fuzz", new(fuzzBuilder))
	srv.RegisterProvisioner("fuzz", new(fuzzProvisioner))
	f.Fuzz(func(t *testing.T, input []byte) {
		if bytes.Contains(input, []byte("fuzz-sentinel")) {
			t.Skip("the input names the sentinel")
		}
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		served := make(chan error, 1)
		go func() {
			served <- srv.ServeConn(context.Background(), inR, outW, pipeCloser{inR, outW}, nil)
		}()
		// Read on another goroutine so that a server that never answers
		// ends the test with a message instead of hanging it. The input
		// goes after the answer to initialize, as a host sends it.
		type outcome struct {
			sentinel *protocol.Error
			err      error
		}
		got := make(chan outcome, 1)
		go func() {
			fail := func(err error) { got <- outcome{err: err} }
			if _, err := io.WriteString(inW, fuzzInit+"\n"); err != nil {
				fail(err)
				return
			}
			r := bufio.NewReader(outR)
			initialized := false
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					fail(err)
					return
				}
				m, err := checkMessage(line)
				if err != nil {
					fail(err)
					return
				}
				switch {
				case m.Method != "":
				case !initialized && string(m.ID) == "0":
					if m.Error != nil {
						fail(fmt.Errorf("initialize: %v", m.Error))
						return
					}
					initialized = true
					go func() {
						var b bytes.Buffer
						b.Write(input)
						b.WriteString("\n" + fuzzSentinel + "\n")
						inW.Write(b.Bytes()) //nolint:errcheck // the server may stop reading
					}()
				case string(m.ID) == `"fuzz-sentinel"`:
					got <- outcome{sentinel: m.Error}
					return
				}
			}
		}()
		var o outcome
		select {
		case o = <-got:
		case <-time.After(30 * time.Second):
			o.err = errors.New("no answer within 30s")
		}
		inW.Close()
		outR.Close()
		if err := <-served; err != nil && o.err == nil {
			t.Logf("ServeConn: %v", err)
		}
		if o.err != nil {
			t.Fatalf("the server did not answer the request after the input: %v", o.err)
		}
		// The sentinel names no method the server has; after a shutdown
		// in the input it is refused as shutting down instead.
		if o.sentinel == nil || !(errors.Is(o.sentinel, protocol.ErrMethodNotFound) || errors.Is(o.sentinel, protocol.ErrShuttingDown)) {
			t.Fatalf("answer to the request after the input: %v, want method not found or shutting down", o.sentinel)
		}
	})
}

// message is what checkMessage reads of a line.
type message struct {
	ID     json.RawMessage
	Method string
	Error  *protocol.Error
}

// checkMessage checks that line is one well-formed JSON-RPC 2.0 message: a
// request or notification with a string method, or a response with an id
// and exactly one of result and error, the error with an integer code and
// a string message. Ids are not held to this protocol's narrower range: a
// request whose id is refused is answered with that id echoed.
func checkMessage(line []byte) (*message, error) {
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 || !utf8.Valid(line) {
		return nil, fmt.Errorf("not one UTF-8 line: %q", line)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %q: %v", line, err)
	}
	if string(raw["jsonrpc"]) != `"2.0"` {
		return nil, fmt.Errorf(`"jsonrpc" is not "2.0": %q`, line)
	}
	m := &message{ID: raw["id"]}
	if method, ok := raw["method"]; ok {
		if err := json.Unmarshal(method, &m.Method); err != nil || m.Method == "" {
			return nil, fmt.Errorf("bad method: %q", line)
		}
		return m, nil
	}
	_, hasResult := raw["result"]
	e, hasError := raw["error"]
	if m.ID == nil || hasResult == hasError {
		return nil, fmt.Errorf("a response needs an id and exactly one of result and error: %q", line)
	}
	if hasError {
		var we struct {
			Code    *int64  `json:"code"`
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(e, &we); err != nil || we.Code == nil || we.Message == nil {
			return nil, fmt.Errorf("bad error object: %q", line)
		}
		m.Error = protocol.NewError(*we.Code, *we.Message)
	}
	return m, nil
}
