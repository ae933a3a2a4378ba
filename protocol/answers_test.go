package protocol_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/protocol"
)

// TestAnswersJudged: the line reader matches every answer to a request this
// side sent, in the order it reads them. An answer to a request never sent,
// already answered, or with an id of another type or null, ends a strict
// connection with a *ViolationError naming the id, and is logged and
// dropped by a lenient one; an answer that comes after its caller gave up
// is no violation, reaches nobody and is not logged (SPEC §4.1, §8).
func TestAnswersJudged(t *testing.T) {
	result := func(id any) string {
		b, _ := json.Marshal(id)
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, b, b)
	}
	errorAnswer := func(id any) string {
		b, _ := json.Marshal(id)
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32007,"message":%q}}`, b, b)
	}
	tests := []struct {
		name      string
		calls     int      // requests sent first, ids 1..calls, each awaiting its answer
		giveUp    bool     // the calls are cancelled and given up on before any answer is written
		answers   []string // what the peer then writes; a violation, if any, comes last
		want      []string // what the calls not given up on return, sorted; unanswered ones are left out
		violation string   // the id of the answer a strict connection ends on; "" for none
		reason    string
	}{
		{name: "awaited", calls: 1, answers: []string{result(1)}, want: []string{"1"}},
		{name: "out of order", calls: 3, answers: []string{result(3), errorAnswer(1), result(2)},
			want: []string{"2", "3", "error: 1"}},
		{name: "never sent", answers: []string{result(7)}, violation: "7"},
		{name: "largest id never sent", calls: 1, answers: []string{result(uint64(1<<63 - 1))}, violation: "9223372036854775807"},
		{name: "duplicate", calls: 1, answers: []string{result(1), result(1)}, want: []string{"1"}, violation: "1",
			reason: "the first answer stands; the second is the violation"},
		{name: "duplicate of an error answer", calls: 2, answers: []string{errorAnswer(2), result(1), result(2)},
			want: []string{"1", "error: 2"}, violation: "2"},
		{name: "string for number", calls: 1, answers: []string{result("1")}, violation: `"1"`,
			reason: `"1" and 1 are different ids: request 1 is still unanswered`},
		{name: "escaped string for number", calls: 1, answers: []string{`{"jsonrpc":"2.0","id":"\u0031","result":1}`}, violation: `"\u0031"`},
		{name: "null id", calls: 1, answers: []string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`}, violation: "null",
			reason: "the peer could not read a line this side sent; that answers no request, and the request stays unanswered"},
		{name: "late after giving up", calls: 2, giveUp: true, answers: []string{result(2), errorAnswer(1)},
			reason: "the requests are still in flight for the peer: their answers are late, not wrong (SPEC §8)"},
		{name: "twice after giving up", calls: 1, giveUp: true, answers: []string{result(1), result(1)}, violation: "1",
			reason: "the late answer retires the id like any other"},
	}
	for _, tt := range tests {
		for _, strict := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/strict=%v", tt.name, strict), func(t *testing.T) {
				says := "id " + tt.violation + "," // what the violation's text says
				if tt.violation == "null" {
					says = "a null id"
				}
				var logged lockedBuffer
				c, p := newRawPeer(t, nil, protocol.Options{Strict: strict, Logger: log.New(&logged, "", 0), CancelGrace: time.Millisecond})
				type outcome struct {
					s   string
					err error
				}
				var outcomes chan outcome // of the calls not given up on
				if tt.giveUp {
					// One after the other, so that the lines come in order.
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					for range tt.calls {
						if err := c.Call(ctx, "m", map[string]int{}, nil); !errors.Is(err, context.Canceled) {
							t.Fatalf("a call given up on returned %v, want an error wrapping context.Canceled", err)
						}
						p.expect(`"method":"m"`)
						p.expect(`"$/cancelRequest"`)
					}
				} else {
					outcomes = make(chan outcome, tt.calls)
					for range tt.calls {
						go func() {
							var res json.RawMessage
							err := c.Call(context.Background(), "m", map[string]int{}, &res)
							outcomes <- outcome{string(res), err}
						}()
					}
					for range tt.calls {
						p.expect(`"method":"m"`)
					}
				}
				for _, a := range tt.answers {
					p.send(a)
				}

				if strict && tt.violation != "" {
					select {
					case <-c.Done():
					case <-time.After(10 * time.Second):
						t.Fatalf("the connection is still open 10s after the answer with id %s", tt.violation)
					}
					var verr *protocol.ViolationError
					if err := c.Err(); !errors.As(err, &verr) || !errors.Is(err, protocol.ErrInvalidRequest) {
						t.Fatalf("Err() = %v, want a *ViolationError wrapping ErrInvalidRequest", err)
					}
					if diff := cmp.Diff(tt.violation, string(verr.ID)); diff != "" {
						t.Errorf("the violation's id (-want +got):\n%s", diff)
					}
					if !strings.Contains(verr.Error(), says) {
						t.Errorf("the violation %q does not say %q", verr, says)
					}
				} else {
					// An answer to one more call proves every line before
					// it was read and the connection is still usable.
					done := make(chan error, 1)
					go func() { done <- c.Call(context.Background(), "sync", map[string]int{}, nil) }()
					p.expect(`"sync"`)
					p.send(result(tt.calls + 1))
					if err := <-done; err != nil {
						t.Fatalf("a call after the answers: %v", err)
					}
					if err := c.Err(); err != nil {
						t.Errorf("Err() = %v, want nil: the connection is open", err)
					}
					switch {
					case tt.violation == "" && string(logged.Bytes()) != "":
						t.Errorf("logged %q, want nothing", string(logged.Bytes()))
					case tt.violation != "" && (!strings.Contains(string(logged.Bytes()), says) || strings.Contains(string(logged.Bytes()), "jsonrpc2")):
						t.Errorf("logged %q, want the answer reported as one with %q, and never handed to jsonrpc2", string(logged.Bytes()), says)
					}
				}
				c.Close()
				var got []string
				for range cap(outcomes) {
					o := <-outcomes
					switch {
					case o.err == nil:
						got = append(got, o.s)
					case errors.Is(o.err, protocol.ErrConnClosed):
					default:
						got = append(got, "error: "+o.err.Error())
					}
				}
				slices.Sort(got)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("what the calls returned (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestGivenUpCallsReleased: a call given up on whose answer never comes
// leaves nothing behind but its id: jsonrpc2, which holds each call with
// its request until an answer comes, is handed one so that it lets go.
func TestGivenUpCallsReleased(t *testing.T) {
	const calls, paramSize = 200, 64 << 10 // 12.5 MiB of requests, were they kept
	c, p := newRawPeer(t, nil, protocol.Options{Strict: true, CancelGrace: time.Millisecond})
	roundTrip := func(id int) {
		done := make(chan error, 1)
		go func() { done <- c.Call(context.Background(), "sync", map[string]int{}, nil) }()
		p.expect(`"sync"`)
		p.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":null}`, id))
		if err := <-done; err != nil {
			t.Fatalf("sync call: %v", err)
		}
	}
	roundTrip(1) // the connection's own buffers are grown before measuring
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	params := map[string]string{"pad": strings.Repeat("x", paramSize)}
	for range calls {
		if err := c.Call(ctx, "m", params, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want an error wrapping context.Canceled", err)
		}
		p.expect(`"$/cancelRequest"`)
	}
	// The reader hands jsonrpc2 the ids given up on before it reads the
	// next line: once the second answer is read, all of them were.
	roundTrip(calls + 2)
	roundTrip(calls + 3)
	grown := int64(heap()) - int64(before)
	t.Logf("the heap grew by %d bytes", grown)
	if grown > calls*paramSize/4 {
		t.Errorf("the heap grew by %d bytes after %d calls of %d bytes were given up on, want them released", grown, calls, paramSize)
	}
}
