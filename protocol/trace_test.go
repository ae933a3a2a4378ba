package protocol_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/protocol"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// secret has characters JSON may escape, so that masking the text of a line
// alone would miss it.
const secret = `hunter2<&>"q`

var maskSecret = strings.NewReplacer(secret, "<sensitive>").Replace

// traceLeaks returns every place the trace shows the secret: in the text of
// a record, or in any string or key of a record once decoded (which undoes
// the escapes a sender may have used).
func traceLeaks(t *testing.T, trace []byte) []string {
	t.Helper()
	var leaks []string
	sc := bufio.NewScanner(bytes.NewReader(trace))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, secret) || strings.Contains(line, "hunter2") {
			leaks = append(leaks, "text: "+line)
		}
		var rec any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("trace line %q is not JSON: %v", line, err)
		}
		walkStrings(rec, func(s string) {
			if strings.Contains(s, "hunter2") {
				leaks = append(leaks, "decoded: "+s)
			}
		})
	}
	return leaks
}

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case map[string]any:
		for k, e := range v {
			f(k)
			walkStrings(e, f)
		}
	}
}

// TestTracerMaskKeepsSecretsOutOfTheTrace: a secret in params, results, an
// error answer and an object key crosses a real connection unchanged, and
// never reaches a masked trace; an unmasked trace does show it, so the check
// can fail.
func TestTracerMaskKeepsSecretsOutOfTheTrace(t *testing.T) {
	for _, tt := range []struct {
		name      string
		mask      func(string) string
		wantLeaks bool
	}{
		{name: "masked", mask: maskSecret},
		{name: "unmasked", wantLeaks: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var trace lockedBuffer
			tr := protocol.NewTracer(&trace).WithMask(tt.mask).WithPeer("plugin")
			aR, bW := io.Pipe()
			bR, aW := io.Pipe()
			b := protocol.NewConn(bR, bW, multiCloser{bR, bW}, protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
				if req.Method == "fail" {
					return nil, protocol.ErrComponentFailed.WithMessage("bad password %s", secret)
				}
				var p map[string]any
				if err := req.DecodeParams(&p); err != nil {
					return nil, err
				}
				return map[string]any{"echo": p}, nil
			}), protocol.Options{})
			a := protocol.NewConn(aR, aW, multiCloser{aR, aW}, nil, protocol.Options{Strict: true, Tracer: tr})
			defer func() {
				a.Close()
				b.Close()
				a.Wait()
				b.Wait()
			}()

			params := map[string]any{"password": secret, secret: "as a key", "list": []any{"x", secret}}
			var got map[string]any
			if err := a.Call(t.Context(), "echo", params, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]any{"echo": params}, got); diff != "" {
				t.Errorf("the mask changed the traffic (-want +got):\n%s", diff)
			}
			err := a.Call(t.Context(), "fail", struct{}{}, nil)
			if !strings.Contains(err.Error(), secret) {
				t.Errorf("error %q lost its text", err)
			}

			leaks := traceLeaks(t, trace.Bytes())
			if tt.wantLeaks && len(leaks) == 0 {
				t.Errorf("unmasked trace shows no secret: the check cannot fail\n%s", trace.Bytes())
			}
			if !tt.wantLeaks && len(leaks) > 0 {
				t.Errorf("masked trace shows the secret:\n%s", strings.Join(leaks, "\n"))
			}
			if !tt.wantLeaks && !bytes.Contains(trace.Bytes(), []byte("<sensitive>")) {
				t.Errorf("masked trace has no <sensitive> marker:\n%s", trace.Bytes())
			}
		})
	}
}

// TestTracerMaskSeesThroughEscapes: lines a peer wrote with \u escapes, and
// lines that are not JSON, are masked too.
func TestTracerMaskSeesThroughEscapes(t *testing.T) {
	input := strings.Join([]string{
		`{"jsonrpc":"2.0","method":"ui/say","params":{"message":"\u0068unter2\u003c&>\"q"}}`,
		`{"jsonrpc":"2.0","method":"ui/say","params":{"hunter2\u003c\u0026\u003e\u0022q":1}}`,
		`not json hunter2<&>"q`,
		"\xff" + secret,
	}, "\n") + "\n"
	var trace bytes.Buffer
	tr := protocol.NewTracer(&trace).WithMask(maskSecret)
	var out bytes.Buffer
	s := protocol.NewLineStream(strings.NewReader(input), &out, nil, false, tr)
	var n int
	for {
		var v json.RawMessage
		if err := s.ReadObject(&v); err != nil {
			break
		}
		n++
	}
	if n != 2 {
		t.Errorf("read %d messages, want 2", n)
	}
	if got := strings.Count(trace.String(), "\n"); got != 6 {
		t.Errorf("trace has %d records, want 6 (4 received, 2 error answers):\n%s", got, trace.String())
	}
	if leaks := traceLeaks(t, trace.Bytes()); len(leaks) > 0 {
		t.Errorf("masked trace shows the secret:\n%s", strings.Join(leaks, "\n"))
	}
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	for _, c := range m {
		c.Close()
	}
	return nil
}

// TestTracerStreamData: stream payloads are recorded as their length by
// default; with WithStreamData they are recorded, masked after decoding.
func TestTracerStreamData(t *testing.T) {
	payload := "echo " + secret + "\n"
	b64 := base64.StdEncoding.EncodeToString([]byte(payload))
	input := `{"jsonrpc":"2.0","id":1,"method":"stream/write","params":{"stream":"s1","data":"` + b64 + `"}}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"result":{"data":"` + b64 + `","eof":false}}` + "\n" +
		`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"s2","data":"` + b64 + `"}}` + "\n"
	record := func(tr *protocol.Tracer, trace *bytes.Buffer) []map[string]any {
		s := protocol.NewLineStream(strings.NewReader(input), io.Discard, nil, false, tr)
		for {
			var v json.RawMessage
			if err := s.ReadObject(&v); err != nil {
				break
			}
		}
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(trace.String()), "\n") {
			var r struct {
				Msg map[string]any `json:"msg"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			if p, ok := r.Msg["params"].(map[string]any); ok {
				out = append(out, p)
			} else if res, ok := r.Msg["result"].(map[string]any); ok {
				out = append(out, res)
			}
		}
		return out
	}
	n := float64(len(payload))
	tests := []struct {
		name string
		tr   func(w io.Writer) *protocol.Tracer
		want []map[string]any
	}{
		{"default: lengths only", func(w io.Writer) *protocol.Tracer { return protocol.NewTracer(w) },
			[]map[string]any{{"stream": "s1", "data_bytes": n}, {"data_bytes": n, "eof": false}, {"source": "s2", "data_bytes": n}}},
		{"default with a mask: lengths only", func(w io.Writer) *protocol.Tracer { return protocol.NewTracer(w).WithMask(maskSecret) },
			[]map[string]any{{"stream": "s1", "data_bytes": n}, {"data_bytes": n, "eof": false}, {"source": "s2", "data_bytes": n}}},
		{"opt-in: masked after decoding", func(w io.Writer) *protocol.Tracer {
			return protocol.NewTracer(w).WithMask(maskSecret).WithStreamData(true)
		}, []map[string]any{
			{"stream": "s1", "data": base64.StdEncoding.EncodeToString([]byte("echo <sensitive>\n"))},
			{"data": base64.StdEncoding.EncodeToString([]byte("echo <sensitive>\n")), "eof": false},
			{"source": "s2", "data": base64.StdEncoding.EncodeToString([]byte("echo <sensitive>\n"))}}},
		{"opt-in without a mask: the bytes", func(w io.Writer) *protocol.Tracer { return protocol.NewTracer(w).WithStreamData(true) },
			[]map[string]any{{"stream": "s1", "data": b64}, {"data": b64, "eof": false}, {"source": "s2", "data": b64}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace bytes.Buffer
			got := record(tt.tr(&trace).WithPeer("p"), &trace)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("recorded payloads (-want +got):\n%s", diff)
			}
		})
	}
}
