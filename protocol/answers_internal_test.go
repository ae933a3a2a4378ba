package protocol

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sourcegraph/jsonrpc2"
)

// TestSentTableIDs: ids are compared as decoded values of their JSON type,
// as SPEC §4.1 says: a string after unescaping, a number by its digits, and
// never a string with a number.
func TestSentTableIDs(t *testing.T) {
	str := func(s string) jsonrpc2.ID { return jsonrpc2.ID{Str: s, IsString: true} }
	num := func(n uint64) jsonrpc2.ID { return jsonrpc2.ID{Num: n} }
	tests := []struct {
		name    string
		sent    []jsonrpc2.ID
		answers []string // raw ids of the answers, in the order read
		want    []answerVerdict
		reason  string
	}{
		{name: "number", sent: []jsonrpc2.ID{num(1)}, answers: []string{`1`, `1`},
			want: []answerVerdict{answerAwaited, answerAgain}},
		{name: "string", sent: []jsonrpc2.ID{str("run-2")}, answers: []string{`"run-2"`, `"run-2"`},
			want:   []answerVerdict{answerAwaited, answerNeverSent},
			reason: "a string id that was answered cannot be told from one never sent: strings have no order"},
		{name: "string for number", sent: []jsonrpc2.ID{num(1)}, answers: []string{`"1"`, `1`},
			want: []answerVerdict{answerNeverSent, answerAwaited}},
		{name: "number for string", sent: []jsonrpc2.ID{str("1")}, answers: []string{`1`, `"1"`},
			want: []answerVerdict{answerNeverSent, answerAwaited}},
		{name: "escaped string", sent: []jsonrpc2.ID{str("a\"1")}, answers: []string{`"\u0061\"\u0031"`, `"a\"1"`},
			want:   []answerVerdict{answerAwaited, answerNeverSent},
			reason: "the echo is of the value, not of the bytes"},
		{name: "beyond a double's precision", sent: []jsonrpc2.ID{num(9007199254740993)},
			answers: []string{`9007199254740992`, `9007199254740993`},
			want:    []answerVerdict{answerAgain, answerAwaited},
			reason:  "a lower number than the highest sent reads as already answered"},
		{name: "zero", sent: []jsonrpc2.ID{str("0")}, answers: []string{`0`},
			want: []answerVerdict{answerNeverSent}, reason: "no number was sent, not even 0"},
		{name: "null", sent: []jsonrpc2.ID{num(0)}, answers: []string{`null`, `0`},
			want: []answerVerdict{answerNullID, answerAwaited}, reason: "null is not 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSentTable()
			for _, id := range tt.sent {
				s.add(id)
			}
			var got []answerVerdict
			for _, a := range tt.answers {
				got = append(got, s.answer(json.RawMessage(a)))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSentTableForgetsGivenUp: the ids of requests given up on whose
// answers never come are remembered up to maxAbandoned, the oldest
// forgotten first, and each is handed to jsonrpc2 once to retire its call.
func TestSentTableForgetsGivenUp(t *testing.T) {
	const extra = 10
	s := newSentTable()
	for n := range uint64(maxAbandoned + extra) {
		s.add(jsonrpc2.ID{Num: n + 1})
		s.abandon(jsonrpc2.ID{Num: n + 1})
	}
	s.abandon(jsonrpc2.ID{Num: 1}) // once is enough
	if len(s.ids) != maxAbandoned {
		t.Errorf("%d ids remembered, want %d", len(s.ids), maxAbandoned)
	}
	var retired []uint64
	for {
		id, ok := s.nextRetire()
		if !ok {
			break
		}
		retired = append(retired, id.Num)
	}
	want := make([]uint64, maxAbandoned+extra)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if diff := cmp.Diff(want, retired); diff != "" {
		t.Errorf("ids handed to jsonrpc2 (-want +got):\n%s", diff)
	}
	got := []answerVerdict{s.answer(json.RawMessage("1")), s.answer(json.RawMessage(fmt.Sprint(extra))),
		s.answer(json.RawMessage(fmt.Sprint(extra + 1))), s.answer(json.RawMessage(fmt.Sprint(extra + 1)))}
	if diff := cmp.Diff([]answerVerdict{answerAgain, answerAgain, answerLate, answerAgain}, got); diff != "" {
		t.Errorf("answers to the first, the last forgotten and the oldest remembered id (-want +got):\n%s", diff)
	}
	// A late answer leaves a stale slot in the ring; the bound still holds.
	for n := range uint64(maxAbandoned) {
		id := jsonrpc2.ID{Num: maxAbandoned + extra + n + 1}
		s.add(id)
		s.abandon(id)
	}
	if len(s.ids) != maxAbandoned {
		t.Errorf("%d ids remembered after more were given up on, want %d", len(s.ids), maxAbandoned)
	}
}
