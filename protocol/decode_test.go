package protocol_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/protocol"
)

// TestParamsAndResultsVerbatim: a handler sees a request's params, and a
// caller decodes an answer's result, byte for byte as the peer wrote them,
// whatever the member order, spacing or spelling of numbers and strings.
func TestParamsAndResultsVerbatim(t *testing.T) {
	const params = `{"b": 1, "a": [1.50, "\u00e9", null], "c": {}}`
	got := make(chan string, 2)
	c, p := newRawPeer(t, protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		got <- string(req.Params)
		return "ok", nil
	}), protocol.Options{})

	p.send(`{"jsonrpc":"2.0","id":"r1","method":"m","params":` + params + `}`)
	if diff := cmp.Diff(params, <-got); diff != "" {
		t.Errorf("request params (-sent +seen):\n%s", diff)
	}
	var answer map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p.expect(`"r1"`)), &answer); err != nil || string(answer["result"]) != `"ok"` {
		t.Errorf("answer %s (%v), want result \"ok\"", answer, err)
	}

	p.send(`{"jsonrpc":"2.0","method":"ui/say","params":` + params + `}`)
	if diff := cmp.Diff(params, <-got); diff != "" {
		t.Errorf("notification params (-sent +seen):\n%s", diff)
	}

	tests := []struct {
		name, answer string
		want         string // the result as decoded; "" for an error
	}{
		{"object result", `"result":` + params, params},
		{"null result", `"result":null`, "null"},
		{"error", `"error":{"code":-32601,"message":"no m"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var result json.RawMessage
			errc := make(chan error, 1)
			go func() { errc <- c.Call(context.Background(), "m", map[string]int{"x": 1}, &result) }()
			var call map[string]json.RawMessage
			if err := json.Unmarshal([]byte(p.expect(`"method":"m"`)), &call); err != nil {
				t.Fatal(err)
			}
			p.send(`{"jsonrpc":"2.0","id":` + string(call["id"]) + `,` + tt.answer + `}`)
			err := <-errc
			if tt.want == "" {
				if !errors.Is(err, protocol.ErrMethodNotFound) {
					t.Fatalf("Call = %v, want ErrMethodNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(result)); diff != "" {
				t.Errorf("result (-sent +decoded):\n%s", diff)
			}
		})
	}
}
