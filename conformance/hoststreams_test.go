package conformance

import (
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
