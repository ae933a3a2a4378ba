package pluginkit

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"
)

// KeyRule ties top-level keys of a configuration together: exactly one of
// them, or at least one, must be set. Make one with [ExactlyOneOf] or
// [AtLeastOneOf] and return it from the configuration's KeyRules method
// ([KeyRuler]).
type KeyRule struct {
	exactlyOne bool
	keys       []string
}

// ExactlyOneOf is the rule that exactly one of keys is set, such as a file
// builder's source and content.
func ExactlyOneOf(keys ...string) KeyRule { return KeyRule{exactlyOne: true, keys: keys} }

// AtLeastOneOf is the rule that one or more of keys are set.
func AtLeastOneOf(keys ...string) KeyRule { return KeyRule{keys: keys} }

// KeyRuler is implemented by a configuration struct (the value a
// component's Config method returns) whose keys depend on each other.
//
// pluginkit writes each rule into the component's config_schema, so a host
// that builds a configuration from the schema knows it: an item of the
// schema's allOf holding a oneOf (exactly one) or an anyOf (at least one)
// with one alternative per key, which requires the key and says what value
// counts as set (SPEC §6.1, key rules). A key counts as set when decoding
// the configuration leaves its field non-zero, as a Prepare method tests
// it: a string is not "", a slice or map is not empty (a []byte is not
// ""), a bool is true, a number is not 0, and a pointer or interface
// field is set by any value but null (so "content": "" sets a *string,
// and writes an empty file).
//
// A configuration that breaks a rule is refused before Prepare is called,
// with one error at the JSON Pointer of each key concerned, all with the
// same message: each key of the rule when none is set, each key set when
// several are set and only one may be. Prepare therefore sees every rule
// hold; it may test one again (to keep an invariant its code relies on),
// but the test must then agree with the schema's verdict exactly.
//
// Every key must be a top-level key of the configuration, of a kind listed
// above (not a struct, an array, or a type that decodes itself, a
// json.Unmarshaler or encoding.TextUnmarshaler: make such a field a
// pointer); a rule needs two keys or more, all different. Registering a
// component whose rules break this panics, like any other configuration
// type pluginkit cannot describe.
type KeyRuler interface {
	KeyRules() []KeyRule
}

// addKeyRules adds the rules of cfg, if it is a KeyRuler, to s, the schema
// reflected from it.
func addKeyRules(s *jsonschema.Schema, cfg any) error {
	kr, ok := cfg.(KeyRuler)
	if !ok {
		return nil
	}
	fields := configFields(reflect.TypeOf(cfg).Elem(), map[string]reflect.Type{})
	for _, r := range kr.KeyRules() {
		if len(r.keys) < 2 {
			return fmt.Errorf("key rule %q: a rule needs two keys or more", r.keys)
		}
		alts := make([]*jsonschema.Schema, len(r.keys))
		for i, k := range r.keys {
			if slices.Contains(r.keys[:i], k) {
				return fmt.Errorf("key rule %q: key %q is named twice", r.keys, k)
			}
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("key rule %q: %T has no key %q", r.keys, cfg, k)
			}
			set, err := setSchema(ft)
			if err != nil {
				return fmt.Errorf("key rule %q: key %q: %w", r.keys, k, err)
			}
			alt := &jsonschema.Schema{Required: []string{k}, Properties: jsonschema.NewProperties()}
			alt.Properties.Set(k, set)
			alts[i] = alt
		}
		if r.exactlyOne {
			s.AllOf = append(s.AllOf, &jsonschema.Schema{OneOf: alts})
		} else {
			s.AllOf = append(s.AllOf, &jsonschema.Schema{AnyOf: alts})
		}
	}
	return nil
}

// setSchema returns the schema a value of a field of type t must satisfy
// to leave the field non-zero once decoded, or an error when the kind of
// t does not tell (a struct, an array, a type that decodes itself).
func setSchema(t reflect.Type) (*jsonschema.Schema, error) {
	one := uint64(1)
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		// null leaves the field nil, whatever the type's schema allows.
		return &jsonschema.Schema{Not: &jsonschema.Schema{Type: "null"}}, nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil, fmt.Errorf("a %s decodes itself, so whether a value sets it cannot be told; use a pointer", t)
	}
	switch t.Kind() {
	case reflect.String:
		return &jsonschema.Schema{MinLength: &one}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			// A []byte is a base64 string; only "" decodes to no bytes.
			return &jsonschema.Schema{MinLength: &one}, nil
		}
		return &jsonschema.Schema{MinItems: &one}, nil
	case reflect.Map:
		return &jsonschema.Schema{MinProperties: &one}, nil
	case reflect.Bool:
		return &jsonschema.Schema{Const: true}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return &jsonschema.Schema{Not: &jsonschema.Schema{Const: json.Number("0")}}, nil
	}
	return nil, fmt.Errorf("a field of kind %s cannot be tested for being set; use a pointer", t.Kind())
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// configFields adds to fields the type of each top-level configuration key
// of the struct type t, by JSON name, as encoding/json decodes them: the
// fields of embedded structs without a name are keys too, unless t has a
// key of the same name itself. It returns fields.
func configFields(t reflect.Type, fields map[string]reflect.Type) map[string]reflect.Type {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			embedded = append(embedded, ft)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := fields[name]; !ok {
			fields[name] = f.Type
		}
	}
	for _, e := range embedded {
		configFields(e, fields)
	}
	return fields
}
