package protocol_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
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

// notifyBuffer is a bytes.Buffer safe for the connection's writers.
type notifyBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	ch chan struct{}
}

func (l *notifyBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

// FuzzStreamData feeds arbitrary lines to a connection speaking protocol
// version 2 that has a sink of its own open (s1) and reads a source of the
// peer's (p1): well-formed and malformed stream/data lines, unknown
// streams, oversize chunks, escapes in the payload, data after the end.
// Whatever arrives, nothing panics, the streams end, and everything the
// connection writes back is a valid JSON-RPC message.
func FuzzStreamData(f *testing.F) {
	chunk := func(member, h, payload string) string {
		return `{"jsonrpc":"2.0","method":"stream/data","params":{"` + member + `":"` + h + `","data":"` + payload + `"}}` + "\n"
	}
	for _, seed := range []string{
		chunk("sink", "s1", "aGVsbG8K") + chunk("source", "p1", "aGVsbG8K"),
		chunk("sink", "s1", "aGVsbG8K") + `{"jsonrpc":"2.0","method":"stream/end","params":{"sink":"s1"}}` + "\n" + chunk("sink", "s1", "eA=="),
		`{"jsonrpc":"2.0","method":"stream/end","params":{"source":"p1","error":{"code":-32007,"message":"x"}}}` + "\n" + chunk("source", "p1", "eA=="),
		chunk("sink", "nope", "eA==") + chunk("source", "s1", "eA=="),
		chunk("sink", "s1", "aGVsbG8\\/") + chunk("sink", "s1", "\\u0041AAA") + chunk("sink", "s1", "A\rAAA"),
		chunk("sink", "s1", "A") + chunk("sink", "s1", "AAA=A") + chunk("sink", "s1\\\"", "AAAA"),
		chunk("source", "p1", strings.Repeat("A", 4*(protocol.MaxChunkSize/3)+4)),
		`{"jsonrpc":"2.0","method":"stream/data","params":{"sink":"s1","data":"AAAA"}` + "\n",
		`{"jsonrpc":"2.0","method":"stream/data","params":{"sink":"s1","source":"p1","data":"AAAA"}}` + "\n",
		`{"jsonrpc":"2.0","method":"stream/credit","params":{"sink":"s1","bytes":-5}}` + "\n",
		`{"jsonrpc":"2.0","method":"stream/cancel","params":{"source":"p1"}}` + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		pr, pw := io.Pipe()
		out := &notifyBuffer{ch: make(chan struct{}, 1)}
		c := protocol.NewConn(pr, out, pr, nil, protocol.Options{})
		c.SetProtocolVersion(2)
		var sink bytes.Buffer
		_, release := c.OfferWriter(&sink, nil)
		r := c.RemoteReader(context.Background(), "p1")
		read := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, r)
			read <- err
		}()
		<-out.ch // the reader's first credit is out: p1 is open
		pw.Write(input)
		pw.Close()
		<-c.Done()
		if err := <-read; err != nil && !errors.Is(err, protocol.ErrConnClosed) && protocol.AsError(err) == nil {
			t.Errorf("reader: unexpected error %v", err)
		}
		r.Close()
		release()
		c.Wait()
		out.mu.Lock()
		defer out.mu.Unlock()
		sc := bufio.NewScanner(&out.b)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var m struct {
				JSONRPC string          `json:"jsonrpc"`
				Method  string          `json:"method"`
				ID      json.RawMessage `json:"id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.JSONRPC != "2.0" || (m.Method == "" && m.ID == nil) {
				t.Fatalf("bad line written %q (%v)", sc.Text(), err)
			}
		}
	})
}
