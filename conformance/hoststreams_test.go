package conformance

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseNote: the scripted plugins' log describes every notification of
// §7.5.2 whatever its spelling, decodes canonical stream/data straight from
// the line, and says which lines are canonical.
func TestParseNote(t *testing.T) {
	tests := []struct {
		name, line string
		want       *streamNote
		data       string
	}{
		{name: "canonical source", line: `{"jsonrpc":"2.0","method":"stream/data","params":{"source":"s1","data":"aGVsbG8K"}}`,
			want: &streamNote{Method: "stream/data", Handle: "s1", Bytes: 6, Canonical: true}, data: "hello\n"},
		{name: "canonical sink with newline", line: "{\"jsonrpc\":\"2.0\",\"method\":\"stream/data\",\"params\":{\"sink\":\"k 9\",\"data\":\"aGk=\"}}\n",
			want: &streamNote{Method: "stream/data", Sink: true, Handle: "k 9", Bytes: 2, Canonical: true}, data: "hi"},
		{name: "members reordered", line: `{"jsonrpc":"2.0","method":"stream/data","params":{"data":"aGk=","source":"s1"}}`,
			want: &streamNote{Method: "stream/data", Handle: "s1", Bytes: 2}, data: "hi"},
		{name: "escaped slash", line: `{"jsonrpc":"2.0","method":"stream/data","params":{"source":"s1","data":"\/w=="}}`,
			want: &streamNote{Method: "stream/data", Handle: "s1", Bytes: 1}, data: "\xff"},
		{name: "whitespace", line: `{"jsonrpc": "2.0", "method": "stream/data", "params": {"source": "s1", "data": "aGk="}}`,
			want: &streamNote{Method: "stream/data", Handle: "s1", Bytes: 2}, data: "hi"},
		{name: "escaped handle", line: `{"jsonrpc":"2.0","method":"stream/data","params":{"source":"s\u0031","data":"aGk="}}`,
			want: &streamNote{Method: "stream/data", Handle: "s1", Bytes: 2}, data: "hi"},
		{name: "credit", line: `{"jsonrpc":"2.0","method":"stream/credit","params":{"sink":"s2","bytes":4096}}`,
			want: &streamNote{Method: "stream/credit", Sink: true, Handle: "s2", Bytes: 4096}},
		{name: "cancel with error", line: `{"jsonrpc":"2.0","method":"stream/cancel","params":{"source":"s3","error":{"code":-32007,"message":"disk full"}}}`,
			want: &streamNote{Method: "stream/cancel", Handle: "s3", Code: -32007}},
		{name: "both members", line: `{"jsonrpc":"2.0","method":"stream/end","params":{"source":"s3","sink":"s4"}}`,
			want: &streamNote{Method: "stream/end", Bad: "names neither or both of source and sink"}},
		{name: "a request, not a notification", line: `{"jsonrpc":"2.0","id":1,"method":"stream/end","params":{"source":"s3"}}`},
		{name: "version 1", line: `{"jsonrpc":"2.0","id":1,"method":"stream/read","params":{"stream":"s3","max":10}}`},
		{name: "another method", line: `{"jsonrpc":"2.0","method":"ui/say","params":{"message":"stream/data"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, data := parseNote([]byte(tc.line))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("note (-want +got):\n%s", diff)
			}
			if string(data) != tc.data {
				t.Errorf("data %q, want %q", data, tc.data)
			}
		})
	}
}

// TestJudgeMessagesValidReadsCutLines: host/messages-valid judges what the
// scripted plugins logged, which keeps only the start of long lines. A
// canonical stream/data line is judged by the size its note keeps, any
// other notification of §7.5.2 is kept whole, and the plugin's own requests
// cut in the log still count as sent.
func TestJudgeMessagesValidReadsCutLines(t *testing.T) {
	logged := func(kind, line string) event {
		note, _ := parseNote([]byte(line))
		return event{PID: 1, Kind: kind, Line: string(cut([]byte(line), note)), Size: len(line), Stream: note}
	}
	data := func(member string, n int) string {
		return string(canonicalData(ref2{sink: member == "sink", handle: "f1"}, make([]byte, n)))
	}
	write := `{"jsonrpc":"2.0","id":7,"method":"stream/write","params":{"stream":"s2","data":"` + strings.Repeat("A", 90_000) + `"}}`
	tests := []struct {
		name   string
		events []event
		fails  bool
		reason string
	}{
		{name: "canonical chunk", events: []event{logged("recv", data("source", 200_000))}},
		{name: "canonical chunk over the schema's length", events: []event{logged("recv", data("sink", 300_000))}, fails: true,
			reason: "the log keeps 160 bytes; the note's size makes the stand-in too long for stream-data.params.json"},
		{name: "both members", events: []event{logged("recv", `{"jsonrpc":"2.0","method":"stream/data","params":{"source":"f1","sink":"f2","data":"`+strings.Repeat("A", 80_000)+`"}}`)}, fails: true,
			reason: "not canonical, so kept whole and validated as sent"},
		{name: "credit of 0", events: []event{logged("recv", `{"jsonrpc":"2.0","method":"stream/credit","params":{"source":"f1","bytes":0}}`)}, fails: true},
		{name: "answer to a cut request", events: []event{logged("send", write), logged("recv", `{"jsonrpc":"2.0","id":7,"result":null}`)},
			reason: "the stream/write line is cut in the log; its id and method still count"},
		{name: "answer to no request", events: []event{logged("recv", `{"jsonrpc":"2.0","id":8,"result":null}`)}, fails: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := append([]event{{PID: 1, Kind: "start"}}, tc.events...)
			h := &hostRun{tr: &transcript{}, events: evs, procs: map[int][]event{1: evs}}
			err := judgeMessagesValid(h)
			if (err != nil) != tc.fails {
				t.Errorf("judge: %v, want failure: %v (%s)", err, tc.fails, tc.reason)
			}
		})
	}
}
