package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzScanEnvelope compares the one-pass scanner with encoding/json: the
// same lines are valid, and the members it reports are those json.Unmarshal
// finds.
func FuzzScanEnvelope(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[1,2.5e-3,true,null,"\u00e9\n"]}}`,
		` {"JSONRPC":"2.0","Id":"x","result":null,"result":{}} `,
		`{"jsonrpc":"2.0","id":-0.0,"error":{"code":1,"message":"x"}}`,
		`{"a":01}`, `{"a":1.}`, `{"a":"\x"}`, `{"a":[1,]}`, `{}x`, `{"\u006aSONRPC":1}`, `{"jſonrpc":1}`, `null`, ` [1]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if !utf8.Valid(line) {
			return
		}
		var got envelope
		ok, simple := scanEnvelope(line, &got)
		var want envelope
		err := json.Unmarshal(line, &want)
		trimmed := bytes.TrimLeft(line, " \t\r\n")
		isObject := json.Valid(line) && err == nil && len(trimmed) > 0 && trimmed[0] == '{'
		if ok != isObject {
			t.Fatalf("scanner says valid object %v, encoding/json %v (%v): %q", ok, isObject, err, line)
		}
		if ok && simple {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("members of %q (-encoding/json +scanner):\n%s", line, diff)
			}
		}
	})
}
