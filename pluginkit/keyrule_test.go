package pluginkit_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// ruledConfig has one key of each kind a key rule can name.
type ruledConfig struct {
	pluginkit.PackerConfig
	Source  string   `json:"source,omitempty"`
	Sources []string `json:"sources,omitempty"`
	Content *string  `json:"content,omitempty"`
	Commit  bool     `json:"commit,omitempty"`
	Port    int      `json:"port,omitempty"`
	Labels  map[string]string
}

func (ruledConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{
		pluginkit.ExactlyOneOf("source", "sources", "content"),
		pluginkit.AtLeastOneOf("commit", "port", "Labels"),
	}
}

type ruledBuilder struct {
	cfg      ruledConfig
	prepared *bool
}

func (b *ruledBuilder) Config() any { return &b.cfg }
func (b *ruledBuilder) Prepare() ([]string, error) {
	*b.prepared = true
	return nil, nil
}
func (b *ruledBuilder) Run(context.Context, pluginkit.UI, pluginkit.Hook) (pluginkit.Artifact, error) {
	return nil, nil
}

func TestKeyRulesInSchema(t *testing.T) {
	s := pluginkit.NewServer(protocol.Peer{Name: "t", Version: "1"})
	s.RegisterBuilder("test", &ruledBuilder{prepared: new(bool)})
	w := startWire(t, s)
	w.send(initLine)
	var res struct {
		Result protocol.InitializeResult `json:"result"`
	}
	b, _ := json.Marshal(w.recv())
	if err := json.Unmarshal(b, &res); err != nil || len(res.Result.Components) != 1 {
		t.Fatalf("initialize answered %s (%v)", b, err)
	}
	var sch struct {
		AllOf any `json:"allOf"`
	}
	if err := json.Unmarshal(res.Result.Components[0].ConfigSchema, &sch); err != nil {
		t.Fatal(err)
	}
	want := mustDecode(t, `[
		{"oneOf":[
			{"required":["source"],"properties":{"source":{"minLength":1}}},
			{"required":["sources"],"properties":{"sources":{"minItems":1}}},
			{"required":["content"]}]},
		{"anyOf":[
			{"required":["commit"],"properties":{"commit":{"const":true}}},
			{"required":["port"],"properties":{"port":{"not":{"const":0}}}},
			{"required":["Labels"],"properties":{"Labels":{"minProperties":1}}}]}]`)
	got, _ := decode(mustMarshal(t, sch.AllOf))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allOf (-want +got):\n%s", diff)
	}
}

// TestKeyRulesRefuse: a configuration that breaks a rule is refused at the
// keys concerned, before Prepare; one that keeps every rule is prepared.
// "Set" is what decoding makes non-zero.
func TestKeyRulesRefuse(t *testing.T) {
	const none = "one of source, sources or content is required"
	const nothing = "at least one of commit, port or Labels is required"
	tests := []struct {
		name   string
		config string
		want   []protocol.ConfigError // nil: prepared
		reason string
	}{
		{name: "one each", config: `{"source":"a","port":1}`},
		{name: "empty content is set", config: `{"content":"","commit":true}`, reason: "content is a pointer"},
		{name: "empty source is not set", config: `{"source":"","sources":["a"],"Labels":{"k":"v"}}`},
		{name: "zero values set nothing", config: `{"source":"","sources":[],"commit":false,"port":0,"Labels":{}}`,
			want: []protocol.ConfigError{{Path: "/Labels", Message: nothing}, {Path: "/commit", Message: nothing}, {Path: "/content", Message: none}, {Path: "/port", Message: nothing}, {Path: "/source", Message: none}, {Path: "/sources", Message: none}}},
		{name: "two set", config: `{"source":"a","content":"","port":2}`,
			want: []protocol.ConfigError{
				{Path: "/content", Message: "only one of source, sources and content may be set; source and content are set"},
				{Path: "/source", Message: "only one of source, sources and content may be set; source and content are set"}}},
		{name: "merged from two objects", config: `{"source":"a"},{"source":"","sources":["b"],"commit":true}`, reason: "rules apply to the merged object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prepared := false
			s := pluginkit.NewServer(protocol.Peer{Name: "t", Version: "1"})
			s.RegisterBuilder("test", &ruledBuilder{prepared: &prepared})
			w := startWire(t, s)
			w.send(initLine)
			w.recv()
			w.send(req("1", "component/prepare", `{"type":"builder","name":"test","configs":[`+tt.config+`]}`))
			ans, _ := json.Marshal(w.recv())
			var m struct {
				Error *struct {
					Code int                        `json:"code"`
					Data protocol.ConfigInvalidData `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(ans, &m); err != nil {
				t.Fatal(err)
			}
			var got []protocol.ConfigError
			if m.Error != nil {
				if m.Error.Code != protocol.CodeConfigInvalid {
					t.Fatalf("answer %s, want -32003 or a result", ans)
				}
				got = m.Error.Data.Errors
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if prepared != (tt.want == nil) {
				t.Errorf("Prepare called: %v, want %v", prepared, tt.want == nil)
			}
		})
	}
}

func TestKeyRulesRegisterRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    pluginkit.Builder
	}{
		{"unknown key", &badRules{rules: []pluginkit.KeyRule{pluginkit.ExactlyOneOf("source", "nope")}}},
		{"one key", &badRules{rules: []pluginkit.KeyRule{pluginkit.AtLeastOneOf("source")}}},
		{"struct key", &badRules{rules: []pluginkit.KeyRule{pluginkit.AtLeastOneOf("source", "inner")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			pluginkit.NewServer(protocol.Peer{}).RegisterBuilder("x", tc.v)
		})
	}
}

type badRulesConfig struct {
	Source string          `json:"source,omitempty"`
	Inner  struct{ A int } `json:"inner"`
	rules  []pluginkit.KeyRule
}

func (c *badRulesConfig) KeyRules() []pluginkit.KeyRule { return c.rules }

type badRules struct {
	ruledBuilder
	cfg   badRulesConfig
	rules []pluginkit.KeyRule
}

func (b *badRules) Config() any {
	b.cfg.rules = b.rules
	return &b.cfg
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
