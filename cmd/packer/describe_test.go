package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteDescription(t *testing.T) {
	tests := []struct {
		name, schema, want string
	}{
		{
			name: "keys, types, defaults and rules",
			schema: `{"type":"object","properties":{
				"packer_force":{"type":"boolean"},
				"b":{"type":"array","items":{"type":"integer"},"default":[1]},
				"a":{"type":"string","description":"The a."},
				"m":{"type":"object","additionalProperties":{"type":"string"}},
				"e":{"enum":["x","y"]},
				"n":{"type":["string","null"]}},
				"required":["a"],
				"oneOf":[{"required":["a"]},{"required":["b","m"]}],
				"anyOf":[{"required":["e"]},{"required":["n"]}]}`,
			want: `builder demo (builtin, packer-builder-demo)

Required:

  a (string)
      The a.

Optional:

  b (array of integer) default [1]
  e (one of "x", "y")
  m (map of string)
  n (string or null)

Rules:
  exactly one of: a; b and m
  at least one of: e; n
`,
		},
		{
			name: "key rules in allOf, as pluginkit writes them",
			schema: `{"type":"object","properties":{"source":{"type":"string"},"content":{"type":"string"},"debug":{"type":"boolean"},"level":{"type":"integer"}},
				"allOf":[
					{"oneOf":[{"required":["source"],"properties":{"source":{"minLength":1}}},{"required":["content"]}]},
					{"anyOf":[{"required":["debug"],"properties":{"debug":{"const":true}}},{"required":["level"]}]}]}`,
			want: `builder demo (builtin, packer-builder-demo)

Optional:

  content (string)
  debug (boolean)
  level (integer)
  source (string)

Rules:
  exactly one of: source; content
  at least one of: debug; level
`,
		},
		{
			name:   "nothing to configure",
			schema: `{"type":"object","properties":{"packer_debug":{"type":"boolean"}}}`,
			want:   "builder demo (builtin, packer-builder-demo)\n\nNo configuration keys.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeDescription(&b, "builder", "demo", "builtin, packer-builder-demo", []byte(tt.schema)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if err := writeDescription(new(strings.Builder), "builder", "demo", "x", []byte(`[1]`)); err == nil {
		t.Error("a schema that is not an object was accepted")
	}
}
