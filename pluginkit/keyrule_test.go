package pluginkit_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
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
			{"required":["content"],"properties":{"content":{"not":{"type":"null"}}}}]},
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
		{"same key twice", &badRules{rules: []pluginkit.KeyRule{pluginkit.ExactlyOneOf("source", "source")}}},
		{"array key", &badRules{rules: []pluginkit.KeyRule{pluginkit.AtLeastOneOf("source", "pair")}}},
		{"key that decodes itself", &badRules{rules: []pluginkit.KeyRule{pluginkit.AtLeastOneOf("source", "raw")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Error("no panic")
				}
				t.Log(r)
			}()
			pluginkit.NewServer(protocol.Peer{}).RegisterBuilder("x", tc.v)
		})
	}
}

type badRulesConfig struct {
	Source string          `json:"source,omitempty"`
	Inner  struct{ A int } `json:"inner"`
	Pair   [2]int          `json:"pair"`
	Raw    json.RawMessage `json:"raw"`
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

// kindsConfig has a field of each kind a key rule may name, with a type
// whose JSON form differs from its kind's ([]byte is a base64 string) or
// whose schema admits null (any, *json.RawMessage).
type kindsConfig struct {
	S  string           `json:"s,omitempty"`
	B  []byte           `json:"b,omitempty"`
	L  []string         `json:"l,omitempty"`
	M  map[string]int   `json:"m,omitempty"`
	T  bool             `json:"t,omitempty"`
	N  int              `json:"n,omitempty"`
	F  float64          `json:"f,omitempty"`
	P  *string          `json:"p,omitempty"`
	R  *json.RawMessage `json:"r,omitempty"`
	I  any              `json:"i,omitempty"`
	PI *any             `json:"pi,omitempty"`
}

var kindsKeys = []string{"s", "b", "l", "m", "t", "n", "f", "p", "r", "i", "pi"}

func (kindsConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.AtLeastOneOf(kindsKeys...)}
}

type kindsBuilder struct {
	ruledBuilder
	cfg kindsConfig
}

func (b *kindsBuilder) Config() any { return &b.cfg }

// TestKeyRulesSetIsWhatDecodingSets gives each key of a rule, alone, each
// of a list of JSON values, and checks the contract of [pluginkit.KeyRuler]
// on it: the rule holds exactly when decoding the value leaves the field
// set (non-zero; a slice or map non-empty). A value its field cannot
// decode, or that the key's own schema refuses (null for a string), is
// skipped: the configuration is refused whatever the rule says.
func TestKeyRulesSetIsWhatDecodingSets(t *testing.T) {
	values := []string{`null`, `""`, `"x"`, `"AA=="`, `0`, `-0`, `0.0`, `1`, `true`, `false`, `[]`, `["x"]`, `{}`, `{"a":1}`}
	s := pluginkit.NewServer(protocol.Peer{Name: "t", Version: "1"})
	s.RegisterBuilder("test", &kindsBuilder{ruledBuilder: ruledBuilder{prepared: new(bool)}})
	w := startWire(t, s)
	w.send(initLine)
	w.recv()
	id := 0
	for _, k := range kindsKeys {
		for _, v := range values {
			cfg := `{"` + k + `":` + v + `}`
			var decoded kindsConfig
			if json.Unmarshal([]byte(cfg), &decoded) != nil {
				continue
			}
			f := reflect.ValueOf(decoded).FieldByIndex(fieldOf(t, k))
			set := !f.IsZero()
			if f.Kind() == reflect.Slice || f.Kind() == reflect.Map {
				set = f.Len() > 0
			}
			id++
			w.send(req(itoa(id), "component/prepare", `{"type":"builder","name":"test","configs":[`+cfg+`]}`))
			ans, _ := json.Marshal(w.recv())
			var m struct {
				Error *struct {
					Data protocol.ConfigInvalidData `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(ans, &m); err != nil {
				t.Fatal(err)
			}
			broken, badValue := false, false
			if m.Error != nil {
				for _, e := range m.Error.Data.Errors {
					rule := strings.HasPrefix(e.Message, "at least one of")
					broken = broken || rule
					badValue = badValue || (!rule && e.Path == "/"+k)
				}
			}
			if badValue {
				continue // refused by the key's own schema ("got null, want string")
			}
			if broken == set {
				t.Errorf("%s: decoding sets the field: %v; the schema's rule holds: %v (answer %s)", cfg, set, !broken, ans)
			}
		}
	}
}

// fieldOf returns the index of kindsConfig's field for key k.
func fieldOf(t *testing.T, k string) []int {
	t.Helper()
	typ := reflect.TypeFor[kindsConfig]()
	for i := range typ.NumField() {
		if name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); name == k {
			return []int{i}
		}
	}
	t.Fatalf("kindsConfig has no key %q", k)
	return nil
}
