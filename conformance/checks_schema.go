package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/packer-stdio/packer/protocol"
)

// schemaChecks enforce what SPEC §6.1 says about the rules a
// config_schema states. A plugin whose schemas state none passes them:
// their rules are about the rules a schema has.
var schemaChecks = []Check{
	{
		ID: "config/key-rules", Section: "§6.1", Level: Must,
		Title: "a configuration that breaks a key rule of config_schema (none of its keys set; two set, for a oneOf) gets -32003 with an error at each key concerned, all with one message",
		run:   checkKeyRules,
	},
}

// keyRule is a key rule of a config_schema (SPEC §6.1): a oneOf
// (exactlyOne) or anyOf whose alternatives each require one key. at is the
// JSON Pointer of the oneOf or anyOf in the schema.
type keyRule struct {
	at         string
	exactlyOne bool
	keys       []string
}

func (r keyRule) String() string {
	kw := "anyOf"
	if r.exactlyOne {
		kw = "oneOf"
	}
	return fmt.Sprintf("%s %s over %s", kw, r.at, strings.Join(r.keys, ", "))
}

// keyRulesOf returns the key rules of the schema raw: its top-level oneOf
// and anyOf, and those of its top-level allOf's items, when they have the
// form SPEC §6.1 gives.
func keyRulesOf(raw json.RawMessage) []keyRule {
	var root map[string]any
	if json.Unmarshal(raw, &root) != nil {
		return nil
	}
	var rules []keyRule
	add := func(at string, node map[string]any) {
		for _, kw := range []string{"oneOf", "anyOf"} {
			if keys := keyRuleKeys(node[kw]); keys != nil {
				rules = append(rules, keyRule{at: at + "/" + kw, exactlyOne: kw == "oneOf", keys: keys})
			}
		}
	}
	add("", root)
	if items, ok := root["allOf"].([]any); ok {
		for i, item := range items {
			if m, ok := item.(map[string]any); ok {
				add(fmt.Sprintf("/allOf/%d", i), m)
			}
		}
	}
	return rules
}

// keyRuleKeys returns the key each alternative of alts requires, or nil
// when alts is not a key rule's: two or more objects, each with "required"
// naming one key and at most "properties" holding only that key besides,
// no two naming the same key.
func keyRuleKeys(alts any) []string {
	arr, ok := alts.([]any)
	if !ok || len(arr) < 2 {
		return nil
	}
	var keys []string
	for _, a := range arr {
		m, ok := a.(map[string]any)
		if !ok {
			return nil
		}
		req, ok := m["required"].([]any)
		if !ok || len(req) != 1 {
			return nil
		}
		k, ok := req[0].(string)
		if !ok || slices.Contains(keys, k) {
			return nil
		}
		for kw, v := range m {
			switch kw {
			case "required":
			case "properties":
				props, ok := v.(map[string]any)
				if !ok || len(props) != 1 || props[k] == nil {
					return nil
				}
			default:
				return nil
			}
		}
		keys = append(keys, k)
	}
	return keys
}

func checkKeyRules(c *checkCtx) error {
	s, res, err := c.ready()
	if err != nil {
		return err
	}
	tried := 0
	for _, comp := range res.Components {
		rules := keyRulesOf(comp.ConfigSchema)
		if len(rules) == 0 {
			continue
		}
		values := newSetValues(comp.ConfigSchema)
		for _, r := range rules {
			c.tr.notef("%s %s: key rule %s", comp.Type, comp.Name, r)
			// None of the keys set: {} breaks every key rule.
			if err := c.expectKeyRuleErrors(s, comp, json.RawMessage("{}"), r.keys); err != nil {
				return err
			}
			tried++
			if !r.exactlyOne {
				continue
			}
			cfg := map[string]any{}
			for i, k := range r.keys {
				v, ok := values.set(r, i)
				if ok {
					cfg[k] = v
				}
				if len(cfg) == 2 {
					break
				}
			}
			if len(cfg) < 2 {
				c.tr.notef("%s %s: no value found that sets two keys of %s: that half is not tried", comp.Type, comp.Name, r)
				continue
			}
			raw, _ := json.Marshal(cfg)
			if err := c.expectKeyRuleErrors(s, comp, raw, slices.Sorted(maps.Keys(cfg))); err != nil {
				return err
			}
			tried++
		}
	}
	if tried == 0 {
		c.tr.notef("no component's config_schema has a key rule: nothing to check")
		return nil
	}
	return c.ping(s, "after configurations that break key rules")
}

// expectKeyRuleErrors prepares comp with cfg, which breaks a key rule over
// keys, and checks the answer: -32003 with an error at each key's pointer,
// one message common to all of them.
func (c *checkCtx) expectKeyRuleErrors(s *session, comp protocol.Component, cfg json.RawMessage, keys []string) error {
	m, err := c.prepareRaw(s, comp, cfg)
	if err != nil {
		return err
	}
	errs, err := configErrors(m)
	if err != nil {
		return failf("%s %s: prepare with %s, which breaks a key rule over %s: %v", comp.Type, comp.Name, cfg, strings.Join(keys, ", "), err)
	}
	var common []string
	for i, k := range keys {
		var at []string
		for _, e := range errs {
			if e.Path == "/"+escapePointer(k) {
				at = append(at, e.Message)
			}
		}
		if i == 0 {
			common = at
		} else {
			common = slices.DeleteFunc(common, func(msg string) bool { return !slices.Contains(at, msg) })
		}
	}
	if len(common) == 0 {
		got, _ := json.Marshal(errs)
		paths := make([]string, len(keys))
		for i, k := range keys {
			paths[i] = fmt.Sprintf("%q", "/"+escapePointer(k))
		}
		return failf("%s %s: prepare with %s breaks a key rule: want an error at each of %s, with one message (SPEC §6.1), got %s",
			comp.Type, comp.Name, cfg, strings.Join(paths, ", "), got)
	}
	return nil
}

func escapePointer(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// setValues finds, for a key of a key rule, a value that sets it: one its
// property's schema and its alternative's both accept.
type setValues struct {
	compiler *jsonschema.Compiler
	ok       bool
}

const configSchemaURL = "urn:conformance:config-schema.json"

func newSetValues(raw json.RawMessage) *setValues {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &setValues{}
	}
	cc := jsonschema.NewCompiler()
	cc.DefaultDraft(jsonschema.Draft2020)
	if cc.AddResource(configSchemaURL, doc) != nil {
		return &setValues{}
	}
	return &setValues{compiler: cc, ok: true}
}

// probes are the values tried, in order, after the property's enum.
var probes = []string{`"x"`, `1`, `true`, `["x"]`, `[1]`, `{"x":"x"}`}

// set returns a value that sets the i-th key of r.
func (v *setValues) set(r keyRule, i int) (any, bool) {
	if !v.ok {
		return nil, false
	}
	k := escapePointer(r.keys[i])
	alt, err := v.compiler.Compile(fmt.Sprintf("%s#%s/%d", configSchemaURL, r.at, i))
	if err != nil {
		return nil, false
	}
	prop, err := v.compiler.Compile(configSchemaURL + "#/properties/" + k)
	if err != nil {
		prop = nil // no such property: the alternative alone decides
	}
	var candidates []any
	if prop != nil && prop.Enum != nil {
		candidates = append(candidates, prop.Enum.Values...)
	}
	for _, p := range probes {
		x, _ := jsonschema.UnmarshalJSON(strings.NewReader(p))
		candidates = append(candidates, x)
	}
	for _, x := range candidates {
		if prop != nil && prop.Validate(x) != nil {
			continue
		}
		// The alternative is checked against an object holding the value.
		if alt.Validate(map[string]any{r.keys[i]: x}) == nil {
			return x, true
		}
	}
	return nil, false
}
