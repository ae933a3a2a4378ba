package pluginkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/invopop/jsonschema"
	validator "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/packer-stdio/packer/protocol"
)

// configSchema is a component's configuration schema, as sent in the
// handshake and compiled for validation.
type configSchema struct {
	raw      json.RawMessage
	compiled *validator.Schema
}

// reflectSchema builds the schema of the struct cfg points to: draft 2020-12,
// self-contained, additionalProperties false, required only where a field is
// tagged `jsonschema:"required"`, and always with the packer_* keys of
// PackerConfig among its properties.
func reflectSchema(cfg any) (*configSchema, error) {
	t := reflect.TypeOf(cfg)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("the Config method must return a pointer to a struct, got %T", cfg)
	}
	r := jsonschema.Reflector{RequiredFromJSONSchemaTags: true, DoNotReference: true}
	s := r.Reflect(cfg)
	pk := r.Reflect(&PackerConfig{})
	if s.Properties == nil {
		s.Properties = jsonschema.NewProperties()
	}
	for p := pk.Properties.Oldest(); p != nil; p = p.Next() {
		if _, ok := s.Properties.Get(p.Key); !ok {
			s.Properties.Set(p.Key, p.Value)
		}
	}
	s.AdditionalProperties = jsonschema.FalseSchema
	s.Version = "https://json-schema.org/draft/2020-12/schema"
	s.ID = ""
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding schema of %T: %w", cfg, err)
	}
	doc, err := validator.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decoding schema of %T: %w", cfg, err)
	}
	c := validator.NewCompiler()
	const url = "urn:pluginkit:config.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema of %T: %w", cfg, err)
	}
	compiled, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compiling schema of %T: %w", cfg, err)
	}
	return &configSchema{raw: raw, compiled: compiled}, nil
}

// mergeConfigs merges JSON objects in order: a key in a later object
// replaces the same key in an earlier one. It fails, with an error wrapping
// ErrInvalidParams, when one of them is not an object.
func mergeConfigs(configs []json.RawMessage) (map[string]json.RawMessage, error) {
	merged := map[string]json.RawMessage{}
	for i, c := range configs {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c, &obj); err != nil || obj == nil {
			return nil, protocol.ErrInvalidParams.WithMessage("%s: configs[%d] is not a JSON object", protocol.MethodPrepare, i)
		}
		for k, v := range obj {
			merged[k] = v
		}
	}
	return merged, nil
}

var printer = message.NewPrinter(language.English)

// validate checks the merged configuration against the schema and returns
// one ConfigError per violation, sorted by path.
func (s *configSchema) validate(merged []byte) ([]ConfigError, error) {
	inst, err := validator.UnmarshalJSON(bytes.NewReader(merged))
	if err != nil {
		return nil, err
	}
	err = s.compiled.Validate(inst)
	if err == nil {
		return nil, nil
	}
	ve, ok := err.(*validator.ValidationError)
	if !ok {
		return nil, err
	}
	var out []ConfigError
	collect(ve, &out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// collect appends the leaves of a validation error tree. Unknown and missing
// keys are reported at the key's own path.
func collect(ve *validator.ValidationError, out *[]ConfigError) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, out)
		}
		return
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, ConfigError{Path: pointer(append(slices.Clone(ve.InstanceLocation), p)), Message: "unknown key"})
		}
	case *kind.Required:
		for _, p := range k.Missing {
			*out = append(*out, ConfigError{Path: pointer(append(slices.Clone(ve.InstanceLocation), p)), Message: "missing required key"})
		}
	default:
		*out = append(*out, ConfigError{Path: pointer(ve.InstanceLocation), Message: ve.ErrorKind.LocalizedString(printer)})
	}
}

// pointer formats a JSON Pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
