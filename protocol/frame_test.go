package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/protocol"
)

// readAll feeds input to a LineStream and returns the messages it passes on
// and the lines it wrote back (answers to bad lines), each decoded.
func readAll(t *testing.T, input string, strict bool, maxIn int64) (passed []any, answers []any, err error) {
	t.Helper()
	var out bytes.Buffer
	s := protocol.NewLineStream(strings.NewReader(input), &out, nil, strict, nil)
	s.SetLimits(maxIn, 0)
	for {
		var v any
		if err = s.ReadObject(&v); err != nil {
			break
		}
		passed = append(passed, v)
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var v any
		if jerr := json.Unmarshal(sc.Bytes(), &v); jerr != nil {
			t.Fatalf("stream wrote a line that is not JSON: %q", sc.Text())
		}
		answers = append(answers, v)
	}
	return passed, answers, err
}

func errAnswer(id any, code int) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": float64(code)}}
}

// dropMessages removes error messages so cases compare codes and ids only.
func dropMessages(answers []any) []any {
	for _, a := range answers {
		if m, ok := a.(map[string]any); ok {
			if e, ok := m["error"].(map[string]any); ok {
				delete(e, "message")
				delete(e, "data")
			}
		}
	}
	return answers
}

func TestLineStreamLenient(t *testing.T) {
	ok := `{"jsonrpc":"2.0","id":7,"method":"m","params":{}}`
	okMsg := map[string]any{"jsonrpc": "2.0", "id": float64(7), "method": "m", "params": map[string]any{}}
	tests := []struct {
		name        string
		input       string
		maxIn       int64
		wantPassed  []any
		wantAnswers []any
		reason      string
	}{
		{name: "valid", input: ok + "\n", wantPassed: []any{okMsg}},
		{name: "crlf and blank lines", input: "\n  \n" + ok + "\r\n", wantPassed: []any{okMsg},
			reason: "a writer in Windows text mode ends lines with CRLF; blank lines are skipped"},
		{name: "parse error then valid", input: "{nope\n" + ok + "\n",
			wantPassed: []any{okMsg}, wantAnswers: []any{errAnswer(nil, -32700)}},
		{name: "invalid utf-8", input: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}\n" + ok + "\n",
			wantPassed: []any{okMsg}, wantAnswers: []any{errAnswer(nil, -32700)}},
		{name: "batch", input: "[" + ok + "," + ok + "]\n", wantAnswers: []any{errAnswer(nil, -32600)},
			reason: "batches are answered with exactly one error"},
		{name: "empty batch", input: "[]\n", wantAnswers: []any{errAnswer(nil, -32600)}},
		{name: "not an object", input: "42\n", wantAnswers: []any{errAnswer(nil, -32600)}},
		{name: "no method no result", input: `{"jsonrpc":"2.0","id":1}` + "\n", wantAnswers: []any{errAnswer(float64(1), -32600)}},
		{name: "wrong version", input: `{"jsonrpc":"1.0","id":"a","method":"m"}` + "\n", wantAnswers: []any{errAnswer("a", -32600)}},
		{name: "method not a string", input: `{"jsonrpc":"2.0","id":2,"method":5}` + "\n", wantAnswers: []any{errAnswer(float64(2), -32600)}},
		{name: "params scalar", input: `{"jsonrpc":"2.0","id":3,"method":"m","params":3}` + "\n", wantAnswers: []any{errAnswer(float64(3), -32600)}},
		{name: "null id", input: `{"jsonrpc":"2.0","id":null,"method":"m"}` + "\n", wantAnswers: []any{errAnswer(nil, -32600)},
			reason: "a null id cannot be told from a parse failure's; this protocol refuses it"},
		{name: "negative id echoed", input: `{"jsonrpc":"2.0","id":-1,"method":"m"}` + "\n", wantAnswers: []any{errAnswer(float64(-1), -32600)},
			reason: "the id is echoed verbatim even when it is refused"},
		{name: "fractional id", input: `{"jsonrpc":"2.0","id":1.5,"method":"m"}` + "\n", wantAnswers: []any{errAnswer(1.5, -32600)}},
		{name: "object id", input: `{"jsonrpc":"2.0","id":{},"method":"m"}` + "\n", wantAnswers: []any{errAnswer(nil, -32600)}},
		{name: "method and result", input: `{"jsonrpc":"2.0","id":4,"method":"m","result":1}` + "\n", wantAnswers: []any{errAnswer(float64(4), -32600)}},
		{name: "bad response dropped", input: `{"jsonrpc":"2.0","id":5,"result":1,"error":{"code":1,"message":"x"}}` + "\n" + ok + "\n",
			wantPassed: []any{okMsg}, reason: "a response is never answered, even a malformed one"},
		{name: "valid response passes", input: `{"jsonrpc":"2.0","id":"x","result":null}` + "\n",
			wantPassed: []any{map[string]any{"jsonrpc": "2.0", "id": "x", "result": nil}}},
		{name: "notification passes", input: `{"jsonrpc":"2.0","method":"n"}` + "\n",
			wantPassed: []any{map[string]any{"jsonrpc": "2.0", "method": "n"}}},
		{name: "oversize then valid", input: `{"jsonrpc":"2.0","id":9,"method":"m","params":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}` + "\n" + ok + "\n",
			maxIn: 1 << 20, wantPassed: []any{okMsg}, wantAnswers: []any{errAnswer(nil, protocol.CodeMessageTooLarge)},
			reason: "an oversize line is skipped to its newline and answered with a null id"},
		{name: "truncated at EOF", input: ok, wantPassed: nil, reason: "a message without its newline is not a message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			passed, answers, _ := readAll(t, tt.input, false, tt.maxIn)
			if diff := cmp.Diff(tt.wantPassed, passed); diff != "" {
				t.Errorf("passed on (-want +got):\n%s\nreason: %s", diff, tt.reason)
			}
			if diff := cmp.Diff(tt.wantAnswers, dropMessages(answers)); diff != "" {
				t.Errorf("answers (-want +got):\n%s\nreason: %s", diff, tt.reason)
			}
		})
	}
}

func TestLineStreamStrict(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr *protocol.Error
		quote   string
	}{
		{name: "stray print", input: "hello from a plugin\n", wantErr: protocol.ErrParse, quote: `"hello from a plugin"`},
		{name: "result and error", input: `{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}}` + "\n", wantErr: protocol.ErrInvalidRequest},
		{name: "oversize", input: strings.Repeat("y", 3<<20) + "\n", wantErr: protocol.ErrMessageTooLarge, quote: "newline not yet read"},
		{name: "oversize, newline in the same read", input: strings.Repeat("y", 1<<20+1) + "\n", wantErr: protocol.ErrMessageTooLarge, quote: "(1048577 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, answers, err := readAll(t, tt.input, true, 1<<20)
			var v *protocol.ViolationError
			if !errors.As(err, &v) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want a ViolationError wrapping %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.quote) {
				t.Errorf("error %q does not quote %q", err, tt.quote)
			}
			if len(answers) != 0 {
				t.Errorf("strict stream answered %v; it must only report", answers)
			}
		})
	}
}

func TestWriteObjectRefusesOversize(t *testing.T) {
	var out bytes.Buffer
	s := protocol.NewLineStream(strings.NewReader(""), &out, nil, false, nil)
	s.SetLimits(0, protocol.MinMaxMessageSize)
	err := s.WriteObject(map[string]string{"pad": strings.Repeat("z", protocol.MinMaxMessageSize)})
	if !errors.Is(err, protocol.ErrMessageTooLarge) {
		t.Fatalf("got %v, want ErrMessageTooLarge", err)
	}
	if out.Len() != 0 {
		t.Errorf("wrote %d bytes of an oversize message", out.Len())
	}
	if err := s.WriteObject(map[string]string{"a": "line\nbreak"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "\n"); got != 1 {
		t.Errorf("one message produced %d newlines: %q", got, out.String())
	}
}

func TestTracerRecordsBothWays(t *testing.T) {
	var trace bytes.Buffer
	tr := protocol.NewTracer(&trace).WithPeer("p")
	var out bytes.Buffer
	s := protocol.NewLineStream(strings.NewReader("garbage\n"), &out, nil, true, tr)
	s.WriteObject(map[string]int{"a": 1})
	var v any
	s.ReadObject(&v)
	var recs []map[string]any
	sc := bufio.NewScanner(&trace)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		delete(r, "time")
		recs = append(recs, r)
	}
	want := []map[string]any{
		{"peer": "p", "dir": "send", "msg": map[string]any{"a": float64(1)}},
		{"peer": "p", "dir": "recv", "raw": "garbage", "size": float64(7)},
	}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}
}

// TestLineStreamAnswersOversizeBeforeNewline: a lenient stream answers an
// over-size line as soon as it passes the limit, while the rest of the line
// (and its newline) has not been written yet, then skips the rest.
func TestLineStreamAnswersOversizeBeforeNewline(t *testing.T) {
	pr, pw := io.Pipe()
	answers, aw := io.Pipe()
	s := protocol.NewLineStream(pr, aw, nil, false, nil)
	s.SetLimits(protocol.MinMaxMessageSize, 0)
	got := make(chan any, 1)
	go func() {
		var v any
		if err := s.ReadObject(&v); err != nil {
			got <- err
			return
		}
		got <- v
	}()
	go pw.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"pad":"` + strings.Repeat("x", 2<<20)))
	line, err := bufio.NewReader(answers).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var answer any
	if err := json.Unmarshal(line, &answer); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{errAnswer(nil, protocol.CodeMessageTooLarge)}, dropMessages([]any{answer})); diff != "" {
		t.Errorf("answer before the newline (-want +got):\n%s", diff)
	}
	go pw.Write([]byte("\"}}\n" + `{"jsonrpc":"2.0","id":2,"method":"m"}` + "\n"))
	if diff := cmp.Diff(map[string]any{"jsonrpc": "2.0", "id": float64(2), "method": "m"}, <-got); diff != "" {
		t.Errorf("next message (-want +got):\n%s", diff)
	}
	pw.Close()
}
