package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	santhosh "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/plugintest"
	"github.com/packer-stdio/packer/protocol"
)

// ruleValues are the values a test gives one key of a key rule: one that
// Prepare treats as set and one that is the key's empty value (which may
// still count as set: "content": "" for the file builder).
type ruleValues struct{ set, empty any }

// TestKeyRulesAgreeWithPrepare checks, for every builtin with a key rule,
// that the rule in its config_schema and the test in its Prepare agree on
// every configuration that gives each of the rule's keys no value, its
// empty value or a set one (with the other keys valid): the schema accepts
// exactly the configurations Prepare accepts. Over the protocol, a refused
// one gets errors at the rule's keys only, none at "".
func TestKeyRulesAgreeWithPrepare(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "src.txt")
	if err := os.WriteFile(file, []byte("x\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	shellKeys := map[string]ruleValues{
		"command": {"echo hi", ""},
		"inline":  {[]string{"echo hi"}, []string{}},
		"script":  {file, ""},
		"scripts": {[]string{file}, []string{}},
	}
	withoutCommand := maps.Clone(shellKeys)
	delete(withoutCommand, "command")
	tests := []struct {
		typ, name string
		base      map[string]any
		keys      map[string]ruleValues
	}{
		{protocol.TypeBuilder, "file", map[string]any{"target": filepath.Join(dir, "target.txt")},
			map[string]ruleValues{"source": {file, ""}, "content": {"hi", ""}}},
		{protocol.TypeBuilder, "docker", map[string]any{"image": "alpine"},
			map[string]ruleValues{"commit": {true, false}, "export_path": {filepath.Join(dir, "out.tar"), ""}, "discard": {true, false}}},
		{protocol.TypeProvisioner, "file", map[string]any{"destination": "/tmp/dst/"},
			map[string]ruleValues{"source": {file, ""}, "sources": {[]string{file}, []string{}}, "content": {"hi", ""}}},
		{protocol.TypeProvisioner, "shell", map[string]any{}, withoutCommand},
		{protocol.TypeProvisioner, "shell-local", map[string]any{}, shellKeys},
		{protocol.TypePostProcessor, "shell-local", map[string]any{}, shellKeys},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.name, func(t *testing.T) {
			c := find(t, tt.typ, tt.name)
			srv := pluginkit.NewServer(protocol.Peer{Name: "keyrules", Version: "1"})
			c.register(srv)
			p := plugintest.New(t, srv, host.Options{})
			rules := schemaRules(t, p.Components()[0].ConfigSchema)
			keys := slices.Sorted(maps.Keys(tt.keys))
			if !slices.ContainsFunc(rules.keys, func(ks []string) bool { return slices.Equal(slices.Sorted(slices.Values(ks)), keys) }) {
				t.Fatalf("config_schema has rules over %v, want one over %v", rules.keys, keys)
			}
			for _, cfg := range combinations(tt.base, keys, tt.keys) {
				raw, _ := json.Marshal(cfg)
				schemaOK := rules.accepts(t, raw)
				inst := c.new()
				if err := json.Unmarshal(raw, inst.Config()); err != nil {
					t.Fatalf("%s: %v", raw, err)
				}
				_, perr := inst.Prepare()
				if schemaOK != (perr == nil) {
					t.Errorf("%s: the schema's rules accept it: %v; Prepare: %v", raw, schemaOK, perr)
				}
				_, _, err := p.Prepare(context.Background(), tt.typ, tt.name, json.RawMessage(raw))
				if schemaOK != (err == nil) {
					t.Errorf("%s: the schema's rules accept it: %v; prepared over the protocol: %v", raw, schemaOK, err)
				}
				for _, ce := range host.ConfigErrors(err) {
					if !slices.Contains(keys, strings.TrimPrefix(ce.Path, "/")) {
						t.Errorf("%s: error %+v is not at one of %v", raw, ce, keys)
					}
				}
			}
		})
	}
}

// combinations returns base with every way of giving each of keys no
// value, its empty value or its set value.
func combinations(base map[string]any, keys []string, values map[string]ruleValues) []map[string]any {
	out := []map[string]any{maps.Clone(base)}
	for _, k := range keys {
		var next []map[string]any
		for _, c := range out {
			next = append(next, c)
			for _, v := range []any{values[k].empty, values[k].set} {
				m := maps.Clone(c)
				m[k] = v
				next = append(next, m)
			}
		}
		out = next
	}
	return out
}

func find(t *testing.T, typ, name string) component {
	t.Helper()
	for _, c := range all {
		if c.typ == typ && c.name == name {
			return c
		}
	}
	t.Fatalf("no builtin %s %s", typ, name)
	return component{}
}

// keyRules are the key rules of a config_schema (the oneOf and anyOf
// items of its allOf), compiled on their own.
type keyRules struct {
	keys   [][]string
	schema *santhosh.Schema
}

func schemaRules(t *testing.T, raw json.RawMessage) keyRules {
	t.Helper()
	var sch struct {
		AllOf json.RawMessage `json:"allOf"`
	}
	var items []map[string][]struct {
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(raw, &sch); err != nil || sch.AllOf == nil {
		t.Fatalf("config_schema has no allOf (%v): %s", err, raw)
	}
	if err := json.Unmarshal(sch.AllOf, &items); err != nil {
		t.Fatal(err)
	}
	var r keyRules
	for _, item := range items {
		for _, alts := range item {
			var ks []string
			for _, a := range alts {
				ks = append(ks, a.Required...)
			}
			r.keys = append(r.keys, ks)
		}
	}
	doc, err := santhosh.UnmarshalJSON(bytes.NewReader([]byte(`{"allOf":` + string(sch.AllOf) + `}`)))
	if err != nil {
		t.Fatal(err)
	}
	cc := santhosh.NewCompiler()
	cc.DefaultDraft(santhosh.Draft2020)
	if err := cc.AddResource("urn:keyrules", doc); err != nil {
		t.Fatal(err)
	}
	if r.schema, err = cc.Compile("urn:keyrules"); err != nil {
		t.Fatal(err)
	}
	return r
}

// accepts reports whether the configuration raw keeps every rule.
func (r keyRules) accepts(t *testing.T, raw []byte) bool {
	t.Helper()
	inst, err := santhosh.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return r.schema.Validate(inst) == nil
}
