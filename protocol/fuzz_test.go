package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/packer-stdio/packer/protocol"
)

// FuzzLineStream feeds arbitrary bytes to a lenient LineStream. Whatever the
// input, the stream must not panic, must pass on only JSON objects, and must
// answer only with well-formed JSON-RPC error responses, one per line.
func FuzzLineStream(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}` + "\n",
		`{"jsonrpc":"2.0","id":"a","result":null}` + "\n",
		`[{"jsonrpc":"2.0","id":1,"method":"m"}]` + "\n",
		"{\"jsonrpc\":\"2.0\",\"id\":-1,\"method\":\"m\"}\r\n\n",
		"\xff\xfe\n{}\n",
		`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":3}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		var out bytes.Buffer
		s := protocol.NewLineStream(bytes.NewReader(input), &out, nil, false, nil)
		s.SetLimits(protocol.MinMaxMessageSize, 0)
		for {
			var v json.RawMessage
			err := s.ReadObject(&v)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected read error: %v", err)
				}
				break
			}
			if len(v) == 0 || v[0] != '{' {
				t.Fatalf("passed on a non-object: %q", v)
			}
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var resp struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   *protocol.Error `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &resp); err != nil || resp.JSONRPC != "2.0" || resp.Error == nil || resp.ID == nil {
				t.Fatalf("bad answer line %q (%v)", sc.Text(), err)
			}
		}
	})
}
