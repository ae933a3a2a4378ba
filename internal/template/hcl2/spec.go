package hcl2

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// configSpec is the HCL decoding spec of one component configuration, made
// from the JSON Schema the plugin declares in its handshake.
type configSpec struct {
	spec hcldec.ObjectSpec
	// blockLists are the keys decoded from repeated blocks: an empty list
	// means "no block" and is left out of the configuration.
	blockLists map[string]bool
	// required are the top-level keys the schema requires.
	required []string
}

// jsonSchema is the part of a JSON Schema the decoder reads.
type jsonSchema struct {
	Ref                  string                 `json:"$ref"`
	Defs                 map[string]*jsonSchema `json:"$defs"`
	Definitions          map[string]*jsonSchema `json:"definitions"`
	Type                 json.RawMessage        `json:"type"`
	Properties           map[string]*jsonSchema `json:"properties"`
	Items                *jsonSchema            `json:"items"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`
	Required             []string               `json:"required"`
}

// types returns the schema's "type", a string or an array of strings,
// without "null".
func (s *jsonSchema) types() []string {
	var one string
	var many []string
	if json.Unmarshal(s.Type, &one) == nil && one != "" {
		many = []string{one}
	} else {
		_ = json.Unmarshal(s.Type, &many)
	}
	return slices.DeleteFunc(many, func(t string) bool { return t == "null" })
}

// schemaReader resolves local $refs ("#/$defs/X", "#/definitions/X").
type schemaReader struct {
	root  *jsonSchema
	depth int
}

func (r *schemaReader) resolve(s *jsonSchema) *jsonSchema {
	for i := 0; s != nil && s.Ref != "" && i < 32; i++ {
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		defs := r.root.Defs
		if !ok {
			name, ok = strings.CutPrefix(s.Ref, "#/definitions/")
			defs = r.root.Definitions
		}
		if !ok || defs[name] == nil {
			return nil
		}
		s = defs[name]
	}
	return s
}

// newConfigSpec turns a component's JSON Schema into its decoding spec:
//
//   - string, number/integer, boolean properties are attributes of that type;
//   - an array of scalars is a list attribute;
//   - an object with properties is a nested block of that name (as Packer's
//     plugins decode nested structs), an array of such objects a repeated
//     block;
//   - an object with only additionalProperties is a map attribute;
//   - anything else is an attribute of any type.
//
// Every attribute is optional in the spec, so that a build's overrides can
// supply what a source lacks; missingRequired checks the schema's top-level
// required keys on the final configuration, and the plugin checks the rest
// when it prepares it.
func newConfigSpec(schema []byte) (*configSpec, error) {
	root := new(jsonSchema)
	if err := json.Unmarshal(schema, root); err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	r := &schemaReader{root: root}
	top := r.resolve(root)
	if top == nil {
		return nil, fmt.Errorf("config schema: unresolvable $ref %q", root.Ref)
	}
	cs := &configSpec{blockLists: map[string]bool{}}
	cs.spec = r.object(top, cs.blockLists)
	for _, k := range top.Required {
		if _, ok := cs.spec[k]; ok {
			cs.required = append(cs.required, k)
		}
	}
	return cs, nil
}

func (r *schemaReader) object(s *jsonSchema, blockLists map[string]bool) hcldec.ObjectSpec {
	spec := hcldec.ObjectSpec{}
	r.depth++
	defer func() { r.depth-- }()
	for name, prop := range s.Properties {
		if !hclsyntax.ValidIdentifier(name) {
			continue
		}
		prop = r.resolve(prop)
		if prop == nil {
			spec[name] = &hcldec.AttrSpec{Name: name, Type: cty.DynamicPseudoType}
			continue
		}
		types := prop.types()
		switch {
		case r.depth < 8 && slices.Contains(types, "object") && len(types) == 1 && len(prop.Properties) > 0:
			spec[name] = &hcldec.BlockSpec{TypeName: name, Nested: r.object(prop, nil)}
		case r.depth < 8 && slices.Equal(types, []string{"array"}) && r.isBlockObject(prop.Items):
			spec[name] = &hcldec.BlockListSpec{TypeName: name, Nested: r.object(r.resolve(prop.Items), nil)}
			if blockLists != nil {
				blockLists[name] = true
			}
		default:
			spec[name] = &hcldec.AttrSpec{Name: name, Type: r.ctyType(prop, 0)}
		}
	}
	return spec
}

func (r *schemaReader) isBlockObject(items *jsonSchema) bool {
	items = r.resolve(items)
	return items != nil && slices.Equal(items.types(), []string{"object"}) && len(items.Properties) > 0
}

// ctyType is the attribute type of a schema; cty.DynamicPseudoType accepts
// any value and leaves checking to the plugin.
func (r *schemaReader) ctyType(s *jsonSchema, depth int) cty.Type {
	s = r.resolve(s)
	if s == nil || depth > 8 {
		return cty.DynamicPseudoType
	}
	types := s.types()
	if len(types) != 1 {
		return cty.DynamicPseudoType
	}
	switch types[0] {
	case "string":
		return cty.String
	case "number", "integer":
		return cty.Number
	case "boolean":
		return cty.Bool
	case "array":
		if s.Items == nil {
			return cty.List(cty.DynamicPseudoType)
		}
		return cty.List(r.ctyType(s.Items, depth+1))
	case "object":
		var ap jsonSchema
		if len(s.Properties) == 0 && len(s.AdditionalProperties) > 0 && json.Unmarshal(s.AdditionalProperties, &ap) == nil {
			if et := r.ctyType(&ap, depth+1); et != cty.DynamicPseudoType {
				return cty.Map(et)
			}
		}
	}
	return cty.DynamicPseudoType
}

// withAttrs returns a copy of spec with extra optional attributes of any
// type, for the options the template itself reads (only, except, ...).
func withAttrs(spec hcldec.ObjectSpec, names ...string) hcldec.ObjectSpec {
	out := make(hcldec.ObjectSpec, len(spec)+len(names))
	for k, v := range spec {
		out[k] = v
	}
	for _, n := range names {
		out[n] = &hcldec.AttrSpec{Name: n, Type: cty.DynamicPseudoType}
	}
	return out
}

// justAttributes decodes a body whose component schema is not known
// (syntax-only checks): attributes only, of any type.
func justAttributes(body hcl.Body, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	attrs, diags := body.JustAttributes()
	vals := map[string]cty.Value{}
	for name, a := range attrs {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		vals[name] = v
	}
	return cty.ObjectVal(vals), diags
}

// missingRequired reports the required keys cfg lacks, at rng.
func (cs *configSpec) missingRequired(cfg map[string]any, what string, rng hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if cs == nil {
		return nil
	}
	for _, k := range cs.required {
		if _, ok := cfg[k]; !ok {
			diags = append(diags, diagf(rng.Ptr(), "Missing required argument", "%s needs the argument %q", what, k))
		}
	}
	return diags
}
