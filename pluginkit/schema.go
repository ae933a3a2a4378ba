package pluginkit

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"

	"github.com/packer-stdio/packer/pluginkit/internal/schemacheck"
	"github.com/packer-stdio/packer/protocol"
)

// configSchema is a component's configuration schema, as sent in the
// handshake and compiled for validation.
type configSchema struct {
	raw      json.RawMessage
	compiled *schemacheck.Schema
}

// reflectSchema builds the schema of the struct cfg points to: draft 2020-12,
// self-contained, additionalProperties false, required only where a field is
// tagged `jsonschema:"required"`, always with the packer_* keys of
// PackerConfig among its properties, and with the key rules of cfg when it
// is a [KeyRuler].
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
	if err := addKeyRules(s, cfg); err != nil {
		return nil, err
	}
	s.Version = "https://json-schema.org/draft/2020-12/schema"
	s.ID = ""
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding schema of %T: %w", cfg, err)
	}
	compiled, err := schemacheck.Compile(raw)
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

// validate checks the merged configuration against the schema and returns
// one ConfigError per violation, sorted by path: every violation at once,
// each at its instance's JSON Pointer (an unknown or missing key at the
// key's own path).
func (s *configSchema) validate(merged []byte) ([]ConfigError, error) {
	vs, err := s.compiled.Validate(merged)
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	out := make([]ConfigError, len(vs))
	for i, v := range vs {
		out[i] = ConfigError{Path: v.Path, Message: v.Message}
	}
	return out, nil
}
