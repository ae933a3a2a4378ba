package protocol

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sourcegraph/jsonrpc2"
)

// The jsonrpc2 connection matches each answer to its call, but it only logs
// an answer whose id it has no call for, in free text, and it cannot tell
// an answer that comes after the caller stopped waiting (which SPEC §8
// allows) from one to a request never sent or already answered (which §4.1
// calls a violation). So the line stream keeps its own record of the
// requests this side sent and awaits answers to, and judges every answer it
// reads, in the order it reads them, before jsonrpc2 sees it:
//
//   - an answer to a request awaiting one retires the id and goes on to
//     jsonrpc2, which wakes the caller;
//   - an answer to a request whose caller gave up (Conn.Call after its
//     cancel grace) retires the id and is dropped: it is late, not wrong,
//     and nobody waits for it;
//   - any other answer (an id never sent, one already answered, "1" for 1,
//     a null id) is a violation: the end of the stream in strict mode,
//     logged and dropped otherwise. It never reaches jsonrpc2.
//
// A caller that gives up leaves its call in jsonrpc2's table, and jsonrpc2
// offers no way to remove it but an answer. The stream gives it one: the
// next ReadObject hands jsonrpc2 a made-up answer (no result, nothing
// traced) for every id given up on since, which jsonrpc2 delivers to a
// caller that is no longer there. Neither table then keeps anything for a
// request whose answer never comes, but for the id itself, below.

// maxAbandoned bounds how many ids of requests given up on the table
// remembers to recognise their late answers. Past it the oldest is
// forgotten; an answer to it then counts as one to a request already
// answered (a violation in strict mode). The host gives up on a request
// CancelGrace after cancelling it, so this takes a plugin that leaves more
// than a thousand cancelled requests unanswered.
const maxAbandoned = 1024

// sentTable is the set of ids of requests this side sent and that have had
// no answer yet. Its methods are safe for concurrent use: add and drop are
// called by writers, abandon by callers, answer and retire by the read loop.
type sentTable struct {
	mu      sync.Mutex
	ids     map[jsonrpc2.ID]bool // true once the caller gave up
	numTop  uint64               // one more than the highest numeric id ever added
	given   []jsonrpc2.ID        // ids given up on, oldest first, a ring of maxAbandoned
	givenAt int                  // the ring's oldest slot when it is full
	retire  []jsonrpc2.ID        // ids given up on that jsonrpc2 still holds a call for
	nRetire atomic.Int32         // len(retire), read without the lock
}

func newSentTable() *sentTable {
	return &sentTable{ids: map[jsonrpc2.ID]bool{}}
}

// add records a request about to be written.
func (t *sentTable) add(id jsonrpc2.ID) {
	t.mu.Lock()
	t.ids[id] = false
	if !id.IsString {
		t.numTop = max(t.numTop, id.Num+1)
	}
	t.mu.Unlock()
}

// drop forgets a request that could not be written.
func (t *sentTable) drop(id jsonrpc2.ID) {
	t.mu.Lock()
	delete(t.ids, id)
	t.mu.Unlock()
}

// abandon records that the caller of request id stopped waiting for its
// answer. It does nothing when the answer has already been read.
func (t *sentTable) abandon(id jsonrpc2.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gaveUp, ok := t.ids[id]; !ok || gaveUp {
		return
	}
	t.ids[id] = true
	t.retire = append(t.retire, id)
	t.nRetire.Store(int32(len(t.retire)))
	if len(t.given) < maxAbandoned {
		t.given = append(t.given, id)
		return
	}
	// Forget the oldest, unless its late answer has come already.
	if old := t.given[t.givenAt]; t.ids[old] {
		delete(t.ids, old)
	}
	t.given[t.givenAt] = id
	t.givenAt = (t.givenAt + 1) % maxAbandoned
}

// nextRetire returns an id given up on that jsonrpc2 has not been told
// about yet.
func (t *sentTable) nextRetire() (jsonrpc2.ID, bool) {
	if t.nRetire.Load() == 0 {
		return jsonrpc2.ID{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.retire) == 0 {
		return jsonrpc2.ID{}, false
	}
	id := t.retire[0]
	t.retire = t.retire[1:]
	if len(t.retire) == 0 {
		t.retire = nil // do not pin a grown array
	}
	t.nRetire.Store(int32(len(t.retire)))
	return id, true
}

// answerVerdict is what the table says of an answer.
type answerVerdict int

const (
	answerAwaited answerVerdict = iota // hand it on
	answerLate                         // its caller gave up: drop it
	answerNeverSent
	answerAgain // to a request already answered (or given up on long ago)
	answerNullID
)

// answer judges an answer with the raw id raw (a string, an integer id or
// null: validate checked it) and retires the id when the answer was
// expected.
func (t *sentTable) answer(raw json.RawMessage) answerVerdict {
	id, ok := parseID(raw)
	if !ok {
		return answerNullID
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	gaveUp, sent := t.ids[id]
	switch {
	case sent:
		delete(t.ids, id)
		if gaveUp {
			return answerLate
		}
		return answerAwaited
	case !id.IsString && id.Num < t.numTop:
		return answerAgain
	default:
		return answerNeverSent
	}
}

// parseID decodes an id validate accepted as jsonrpc2 does: a number is
// its digits, a string its unescaped value, so "1" and 1 differ while
// "\u0031" and "1" do not. ok is false for null.
func parseID(raw json.RawMessage) (id jsonrpc2.ID, ok bool) {
	switch {
	case isNull(raw):
		return id, false
	case raw[0] == '"':
		id.IsString = true
		id.Str = unquoteID(raw)
		return id, true
	default:
		// Digits only, at most 2^63-1: checkID made sure.
		for _, c := range raw {
			id.Num = id.Num*10 + uint64(c-'0')
		}
		return id, true
	}
}

// unquoteID returns the value of a string id. It is a function of its own
// so that the variable encoding/json decodes into, which escapes, is
// allocated only for an id with escapes.
func unquoteID(raw json.RawMessage) string {
	for _, c := range raw {
		if c == '\\' {
			var s string
			json.Unmarshal(raw, &s) //nolint:errcheck // validate checked the string
			return s
		}
	}
	return string(raw[1 : len(raw)-1])
}

// unexpectedAnswer is the violation an answer the table did not expect
// deserves.
func unexpectedAnswer(v answerVerdict, raw json.RawMessage) *Error {
	switch v {
	case answerNullID:
		return errIsResponse.WithMessage("answer with a null id, which matches no request this side sent")
	case answerAgain:
		return errIsResponse.WithMessage("answer to request id %s, which was already answered", raw)
	default:
		return errIsResponse.WithMessage("answer to request id %s, which this side never sent", raw)
	}
}

// retireCall fills v, jsonrpc2's message, with a made-up answer to the
// call id, which its caller gave up on, so that jsonrpc2 lets go of it.
func (s *LineStream) retireCall(id jsonrpc2.ID, v any) error {
	s.held = nil
	b := append(s.small[:0], `{"id":`...)
	b = appendID(b, id)
	b = append(b, `,"result":null}`...)
	s.small = b
	if err := unmarshalValid(b, v); err != nil {
		return fmt.Errorf("retiring call %s: %w", id, err) // cannot happen: the line is ours
	}
	return nil
}
