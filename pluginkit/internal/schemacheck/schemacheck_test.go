package schemacheck_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/invopop/jsonschema"
	santhosh "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/packer-stdio/packer/pluginkit/internal/schemacheck"
)

// config is a configuration like the ones plugins declare: pluginkit
// reflects its schema with invopop/jsonschema exactly as here.
type config struct {
	Name     string            `json:"name" jsonschema:"required,minLength=2,maxLength=8,pattern=^[a-z]+$"`
	Mode     string            `json:"mode,omitempty" jsonschema:"enum=fast,enum=slow"`
	Level    int               `json:"level,omitempty" jsonschema:"minimum=1,maximum=9"`
	Ratio    float64           `json:"ratio,omitempty" jsonschema:"exclusiveMinimum=0,exclusiveMaximum=1,multipleOf=0.25"`
	Tags     []string          `json:"tags,omitempty" jsonschema:"minItems=1,maxItems=3,uniqueItems=true"`
	Codes    []int             `json:"codes,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Inner    inner             `json:"inner,omitempty"`
	Items    []inner           `json:"items,omitempty"`
	Optional *inner            `json:"optional,omitempty"`
	Any      any               `json:"any,omitempty"`
	Flag     bool              `json:"flag,omitempty"`
}

type inner struct {
	Path  string `json:"path" jsonschema:"required"`
	Count int    `json:"count,omitempty" jsonschema:"minimum=0,maximum=255"`
}

func reflected(t testing.TB) []byte {
	t.Helper()
	r := jsonschema.Reflector{RequiredFromJSONSchemaTags: true, DoNotReference: true}
	s := r.Reflect(&config{})
	s.Version = "https://json-schema.org/draft/2020-12/schema"
	s.ID = ""
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cases are instances of the reflected schema; want is what pluginkit
// reports, and what santhosh-tekuri/jsonschema reported before.
var cases = []struct {
	name     string
	instance string
	want     []schemacheck.Violation
}{
	{"valid", `{"name":"abc","mode":"fast","level":3,"ratio":0.5,"tags":["a"],"inner":{"path":"p"},"items":[{"path":"x","count":2}],"flag":true}`, nil},
	{"missing required", `{}`, []schemacheck.Violation{{"/name", "missing required key"}}},
	{"unknown keys", `{"name":"ab","zed":1,"also":2}`, []schemacheck.Violation{{"/also", "unknown key"}, {"/zed", "unknown key"}}},
	{"wrong type", `{"name":1}`, []schemacheck.Violation{{"/name", "got number, want string"}}},
	{"null", `{"name":null}`, []schemacheck.Violation{{"/name", "got null, want string"}}},
	{"string checks together", `{"name":"A"}`, []schemacheck.Violation{{"/name", "minLength: got 1, want 2"}, {"/name", "'A' does not match pattern '^[a-z]+$'"}}},
	{"max length in runes", `{"name":"ééééééééé"}`, []schemacheck.Violation{{"/name", "maxLength: got 9, want 8"}, {"/name", "'ééééééééé' does not match pattern '^[a-z]+$'"}}},
	{"enum", `{"name":"ab","mode":"medium"}`, []schemacheck.Violation{{"/mode", "value must be one of 'fast', 'slow'"}}},
	{"maximum", `{"name":"ab","level":10}`, []schemacheck.Violation{{"/level", "maximum: got 10, want 9"}}},
	{"minimum", `{"name":"ab","level":0}`, []schemacheck.Violation{{"/level", "minimum: got 0, want 1"}}},
	{"integer", `{"name":"ab","level":2.5}`, []schemacheck.Violation{{"/level", "got number, want integer"}}},
	{"integer written as 3.0", `{"name":"ab","level":3.0}`, nil},
	{"exclusive bounds", `{"name":"ab","ratio":1}`, []schemacheck.Violation{{"/ratio", "exclusiveMaximum: got 1, want 1"}}},
	{"multipleOf", `{"name":"ab","ratio":0.3}`, []schemacheck.Violation{{"/ratio", "multipleOf: got 0.3, want 0.25"}}},
	{"minItems", `{"name":"ab","tags":[]}`, []schemacheck.Violation{{"/tags", "minItems: got 0, want 1"}}},
	{"maxItems and unique", `{"name":"ab","tags":["a","b","a","c"]}`, []schemacheck.Violation{{"/tags", "maxItems: got 4, want 3"}, {"/tags", "items at 0 and 2 are equal"}}},
	{"item types", `{"name":"ab","tags":["a",2],"codes":[1,"x",3]}`, []schemacheck.Violation{{"/codes/1", "got string, want integer"}, {"/tags/1", "got number, want string"}}},
	{"map values", `{"name":"ab","env":{"A":"1","B":2}}`, []schemacheck.Violation{{"/env/B", "got number, want string"}}},
	{"nested", `{"name":"ab","inner":{"count":-1,"x":1}}`, []schemacheck.Violation{{"/inner/count", "minimum: got -1, want 0"}, {"/inner/path", "missing required key"}, {"/inner/x", "unknown key"}}},
	{"array of objects", `{"name":"ab","items":[{"path":"a"},{"count":300},"no"]}`, []schemacheck.Violation{{"/items/1/count", "maximum: got 300, want 255"}, {"/items/1/path", "missing required key"}, {"/items/2", "got string, want object"}}},
	{"pointer escapes", `{"name":"ab","a/b":1,"c~d":2}`, []schemacheck.Violation{{"/a~1b", "unknown key"}, {"/c~0d", "unknown key"}}},
	{"any takes anything", `{"name":"ab","any":[1,{"x":null}]}`, nil},
	{"every violation at once", `{"mode":"x","level":"high","tags":[1],"inner":[]}`, []schemacheck.Violation{
		{"/inner", "got array, want object"}, {"/level", "got string, want integer"}, {"/mode", "value must be one of 'fast', 'slow'"},
		{"/name", "missing required key"}, {"/tags/0", "got number, want string"}}},
	{"not an object", `[1]`, []schemacheck.Violation{{"", "got array, want object"}}},
}

func TestValidateReflected(t *testing.T) {
	s, err := schemacheck.Compile(reflected(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Validate([]byte(tt.instance))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

// handSchemas exercise the keywords invopop/jsonschema does not emit from
// tags but a Config type may declare through a JSONSchema method.
var handSchemas = []struct {
	name, schema string
	instances    []string
}{
	{"anyOf", `{"anyOf":[{"type":"string"},{"type":"integer","minimum":5}]}`, []string{`"x"`, `7`, `3`, `null`, `1.5`}},
	{"oneOf", `{"oneOf":[{"type":"integer"},{"minimum":2}]}`, []string{`1`, `3`, `1.5`, `"s"`}},
	{"allOf not", `{"allOf":[{"type":"object"},{"required":["a"]}],"not":{"required":["b"]}}`, []string{`{"a":1}`, `{"b":1}`, `{}`, `1`}},
	{"if then else", `{"if":{"properties":{"k":{"const":"a"}}},"then":{"required":["x"]},"else":{"required":["y"]}}`, []string{`{"k":"a"}`, `{"k":"b"}`, `{"k":"a","x":1}`, `{}`}},
	{"ref and defs", `{"$defs":{"pos":{"type":"integer","minimum":0},"node":{"type":"object","properties":{"v":{"$ref":"#/$defs/pos"},"next":{"$ref":"#/$defs/node"}},"additionalProperties":false}},"$ref":"#/$defs/node"}`,
		[]string{`{"v":1,"next":{"v":-1,"next":{"v":"x","w":0}}}`, `{"v":2}`, `[]`}},
	{"prefixItems contains", `{"prefixItems":[{"type":"string"}],"items":{"type":"integer"},"contains":{"const":7},"maxContains":1}`, []string{`["a",7]`, `["a",1,2]`, `[1,7,7]`, `[]`}},
	{"minContains", `{"contains":{"type":"string"},"minContains":2}`, []string{`["a",1,"b"]`, `["a",1]`, `[1]`, `[]`}},
	{"dependentRequired and schemas", `{"dependentRequired":{"a":["b","c"]},"dependentSchemas":{"d":{"required":["e"]}},"minProperties":1,"maxProperties":3}`,
		[]string{`{"a":1}`, `{"a":1,"b":1,"c":1}`, `{"d":1}`, `{}`, `{"a":1,"b":2,"c":3,"d":4}`}},
	{"patternProperties", `{"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":{"type":"boolean"}}`, []string{`{"x-a":"s","b":true}`, `{"x-a":1,"b":"no"}`}},
	{"false schema", `{"properties":{"gone":false}}`, []string{`{"gone":1}`, `{}`}},
	{"enum of mixed values", `{"enum":[1,"a",null,true]}`, []string{`1.0`, `"b"`, `false`, `null`}},
	{"enum with an object", `{"enum":[{"a":1},2]}`, []string{`{"a":1.0}`, `{"a":2}`}},
	{"one-value enum and const object", `{"properties":{"e":{"enum":["x"]},"c":{"const":{"k":[1]}}}}`, []string{`{"e":"y","c":{"k":[1]}}`, `{"e":"x","c":{"k":[2]}}`}},
	{"type list", `{"type":["string","null"]}`, []string{`"a"`, `null`, `1`}},
	{"unique objects", `{"uniqueItems":true}`, []string{`[{"a":1,"b":2},{"b":2,"a":1.0}]`, `[1,"1",[1],[1.0]]`, `[1,2]`}},
	{"quotes in messages", `{"pattern":"^'\"$"}`, []string{`"it's \"x\""`}},
	{"numbers in messages", `{"maximum":1e300,"multipleOf":0.1,"minimum":-2.5e-7}`, []string{`1e301`, `0.35`, `0.3`, `-1e-6`, `12345.67`, `-1234567.1`}},
	{"counts in messages", `{"items":{"maxLength":1000},"minItems":1200,"uniqueItems":true}`, []string{`["","` + strings.Repeat("x", 1234) + `"]`}},
}

// TestSameAsSanthosh compares every report with what
// santhosh-tekuri/jsonschema v6 finds, flattened the way pluginkit did
// before this package replaced it (the leaves of the error tree, unknown
// and missing keys at the key's own path).
func TestSameAsSanthosh(t *testing.T) {
	type run struct{ name, schema, instance string }
	var runs []run
	for _, tt := range cases {
		runs = append(runs, run{"reflected/" + tt.name, string(reflected(t)), tt.instance})
	}
	for _, h := range handSchemas {
		for _, inst := range h.instances {
			runs = append(runs, run{h.name + "/" + inst, h.schema, inst})
		}
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			ours, err := schemacheck.Compile([]byte(r.schema))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ours.Validate([]byte(r.instance))
			if err != nil {
				t.Fatal(err)
			}
			want := viaSanthosh(t, r.schema, r.instance)
			if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
				t.Errorf("violations (-santhosh +ours):\n%s", diff)
			}
		})
	}
}

// FuzzSameAsSanthosh validates arbitrary instances against the reflected
// schema and the hand-written ones with both validators.
func FuzzSameAsSanthosh(f *testing.F) {
	for _, tt := range cases {
		f.Add(0, tt.instance)
	}
	for i, h := range handSchemas {
		for _, inst := range h.instances {
			f.Add(i+1, inst)
		}
	}
	schemas := []string{string(reflected(f))}
	for _, h := range handSchemas {
		schemas = append(schemas, h.schema)
	}
	compiled := make([]*schemacheck.Schema, len(schemas))
	for i, s := range schemas {
		var err error
		if compiled[i], err = schemacheck.Compile([]byte(s)); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, i int, instance string) {
		if i < 0 || i >= len(schemas) {
			return
		}
		var v any
		if json.Unmarshal([]byte(instance), &v) != nil {
			return
		}
		got, err := compiled[i].Validate([]byte(instance))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sorted(viaSanthosh(t, schemas[i], instance)), sorted(got)); diff != "" {
			t.Errorf("schema %d, instance %s: violations (-santhosh +ours):\n%s", i, instance, diff)
		}
	})
}

func TestCompileRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, schema string
		unsupported  bool
	}{
		{"dynamicRef", `{"$dynamicRef":"#x"}`, true},
		{"unevaluatedProperties", `{"properties":{"a":{"unevaluatedProperties":false}}}`, true},
		{"remote ref", `{"$ref":"https://example.com/s.json"}`, true},
		{"older draft", `{"$schema":"http://json-schema.org/draft-07/schema#"}`, true},
		{"dangling ref", `{"$ref":"#/$defs/none"}`, false},
		{"bad pattern", `{"pattern":"("}`, false},
		{"bad type", `{"type":"text"}`, false},
		{"negative count", `{"minItems":-1}`, false},
		{"not a schema", `{"items":3}`, false},
		{"trailing data", `{} {}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := schemacheck.Compile([]byte(tt.schema))
			if err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
			if got := errors.Is(err, schemacheck.ErrUnsupported); got != tt.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupported) = %v, want %v", err, got, tt.unsupported)
			}
		})
	}
}

func TestPropertyNames(t *testing.T) {
	// santhosh-tekuri/jsonschema reports these at the document root; this
	// package reports them at the key.
	s, err := schemacheck.Compile([]byte(`{"properties":{"m":{"propertyNames":{"maxLength":2}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Validate([]byte(`{"m":{"ab":1,"abc":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []schemacheck.Violation{{"/m/abc", "invalid key: maxLength: got 3, want 2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

func TestValidateRejectsNonJSON(t *testing.T) {
	s, err := schemacheck.Compile([]byte(`true`))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{``, `{`, `{} x`, `nul`} {
		if _, err := s.Validate([]byte(in)); err == nil {
			t.Errorf("Validate(%q) succeeded, want an error", in)
		}
	}
}

func sorted(vs []schemacheck.Violation) []schemacheck.Violation {
	vs = slices.Clone(vs)
	slices.SortFunc(vs, func(a, b schemacheck.Violation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return vs
}

var printer = message.NewPrinter(language.English)

// keyRuleSchema has two key rules, as pluginkit writes them: exactly one
// of source (a non-empty string), sources (a non-empty array) and content
// (present, even empty); at least one of debug (true) and level.
const keyRuleSchema = `{"type":"object","properties":{"source":{"type":"string"},"sources":{"type":"array","items":{"type":"string"}},"content":{"type":"string"},"debug":{"type":"boolean"},"level":{"type":"integer"},"nested":{"type":"object","oneOf":[{"required":["a"]},{"required":["b"]}]}},
	"allOf":[
		{"oneOf":[{"required":["source"],"properties":{"source":{"minLength":1}}},{"required":["sources"],"properties":{"sources":{"minItems":1}}},{"required":["content"]}]},
		{"anyOf":[{"required":["debug"],"properties":{"debug":{"const":true}}},{"required":["level"]}]}]}`

// TestKeyRules: a broken key rule is reported at the keys it concerns,
// with one message, where santhosh-tekuri/jsonschema reports the oneOf or
// anyOf at the object (or the first alternative's misses).
func TestKeyRules(t *testing.T) {
	const none = "one of source, sources or content is required"
	const neither = "at least one of debug or level is required"
	for _, tt := range []struct {
		name, instance string
		want           []schemacheck.Violation
		reason         string
	}{
		{name: "one of each", instance: `{"source":"a","debug":true}`},
		{name: "empty content is set", instance: `{"content":"","level":0}`},
		{name: "empty source is not set", instance: `{"source":"","sources":["x"],"level":1}`},
		{name: "none set", instance: `{"debug":true}`, want: []schemacheck.Violation{{"/content", none}, {"/source", none}, {"/sources", none}}},
		{name: "only empty values", instance: `{"source":"","sources":[],"debug":false}`,
			want: []schemacheck.Violation{
				{"/content", none}, {"/debug", neither}, {"/level", neither}, {"/source", none}, {"/sources", none}},
			reason: "what the alternatives found (minItems, const) is not reported: only the rule is"},
		{name: "two set", instance: `{"source":"a","content":"b","level":1}`,
			want: []schemacheck.Violation{{"/content", "only one of source, sources and content may be set; source and content are set"}, {"/source", "only one of source, sources and content may be set; source and content are set"}}},
		{name: "three set", instance: `{"source":"a","sources":["b"],"content":"c","level":1}`,
			want: []schemacheck.Violation{
				{"/content", "only one of source, sources and content may be set; source, sources and content are set"},
				{"/source", "only one of source, sources and content may be set; source, sources and content are set"},
				{"/sources", "only one of source, sources and content may be set; source, sources and content are set"}}},
		{name: "nested rule", instance: `{"content":"","level":1,"nested":{}}`,
			want: []schemacheck.Violation{{"/nested/a", "one of a or b is required"}, {"/nested/b", "one of a or b is required"}}},
		{name: "not an object", instance: `[]`, want: []schemacheck.Violation{{"", "got array, want object"}},
			reason: "the rule concerns keys: it is not checked on a value without any"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schemacheck.Compile([]byte(keyRuleSchema))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Validate([]byte(tt.instance))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			// Only the form of the report differs: the verdict is
			// santhosh-tekuri/jsonschema's.
			if want := viaSanthosh(t, keyRuleSchema, tt.instance); (want == nil) != (got == nil) {
				t.Errorf("santhosh-tekuri/jsonschema reports %v, this package %v", want, got)
			}
		})
	}
}

// FuzzKeyRules validates arbitrary instances against keyRuleSchema: the
// verdict is santhosh-tekuri/jsonschema's, and every violation in an
// object is at a key, never at the object itself.
func FuzzKeyRules(f *testing.F) {
	for _, in := range []string{`{"source":"a","debug":true}`, `{"content":"","level":0}`, `{"source":"","sources":[],"debug":false}`,
		`{"source":"a","sources":["b"],"content":"c","level":1}`, `{"content":"","level":1,"nested":{}}`, `[]`} {
		f.Add(in)
	}
	s, err := schemacheck.Compile([]byte(keyRuleSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, instance string) {
		var v any
		if json.Unmarshal([]byte(instance), &v) != nil {
			return
		}
		got, err := s.Validate([]byte(instance))
		if err != nil {
			t.Fatal(err)
		}
		if want := viaSanthosh(t, keyRuleSchema, instance); (want == nil) != (got == nil) {
			t.Errorf("instance %s: santhosh-tekuri/jsonschema reports %v, this package %v", instance, want, got)
		}
		if _, isObject := v.(map[string]any); isObject {
			for _, g := range got {
				if g.Path == "" {
					t.Errorf("instance %s: violation at the object: %v", instance, g)
				}
			}
		}
	})
}

// viaSanthosh is how pluginkit validated before: santhosh-tekuri/jsonschema,
// leaves of the error tree.
func viaSanthosh(t *testing.T, schema, instance string) []schemacheck.Violation {
	t.Helper()
	doc, err := santhosh.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := santhosh.NewCompiler()
	c.DefaultDraft(santhosh.Draft2020)
	if err := c.AddResource("urn:test:s.json", doc); err != nil {
		t.Fatal(err)
	}
	compiled, err := c.Compile("urn:test:s.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := santhosh.UnmarshalJSON(bytes.NewReader([]byte(instance)))
	if err != nil {
		t.Fatal(err)
	}
	err = compiled.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *santhosh.ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	var out []schemacheck.Violation
	var collect func(*santhosh.ValidationError)
	collect = func(ve *santhosh.ValidationError) {
		if len(ve.Causes) > 0 {
			for _, c := range ve.Causes {
				collect(c)
			}
			return
		}
		loc := slices.Clone(ve.InstanceLocation)
		switch k := ve.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				out = append(out, schemacheck.Violation{Path: ptr(append(loc, p)), Message: "unknown key"})
			}
		case *kind.Required:
			for _, p := range k.Missing {
				out = append(out, schemacheck.Violation{Path: ptr(append(slices.Clone(loc), p)), Message: "missing required key"})
			}
		case *kind.DependentRequired:
			// This package reports each missing key at its own path.
			for _, p := range k.Missing {
				out = append(out, schemacheck.Violation{Path: ptr(append(slices.Clone(loc), p)), Message: "missing key, required when " + k.Prop + " is present"})
			}
		default:
			out = append(out, schemacheck.Violation{Path: ptr(loc), Message: ve.ErrorKind.LocalizedString(printer)})
		}
	}
	collect(ve)
	return out
}

func ptr(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
