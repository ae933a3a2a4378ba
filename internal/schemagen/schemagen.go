// Package schemagen generates the JSON Schema files of package schema from
// the Go types in package protocol, with github.com/invopop/jsonschema.
//
// Reflection gives the shape of every struct: member names, types, which
// members are required (those without omitempty) and that no other member
// is allowed. What a Go type cannot say is added by patches, each tied to
// one member of one type: the JSON Schema of a json.RawMessage member,
// nullable pointers, numeric bounds, non-empty handles. A patch whose type
// or member no longer exists is an error, so a rename in protocol/ cannot
// silently drop a constraint.
//
// The command in cmd/schemagen writes the files; the tests of package
// schema compare them with [Generate] to catch drift.
package schemagen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/invopop/jsonschema"
	"github.com/packer-stdio/packer/protocol"
	"github.com/packer-stdio/packer/schema"
)

// Draft is the JSON Schema dialect of every generated file.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Generate returns every schema file of package schema, keyed by file name,
// as indented JSON ending in a newline. The output is deterministic.
func Generate() (map[string][]byte, error) {
	out := map[string]any{}
	used := map[member]bool{}
	for _, m := range schema.Methods {
		who := m.Direction.String()
		if m.Params == nil {
			out[m.ParamsFile()] = map[string]any{
				"$schema":       Draft,
				"$id":           schema.BaseURI + m.ParamsFile(),
				"title":         m.Name + " params",
				"description":   fmt.Sprintf("%s (%s) takes no params: the params member is omitted, or an empty object. See SPEC.md.", m.Name, who),
				"type":          "object",
				"maxProperties": 0,
			}
		} else {
			s, err := reflectType(m.Params, m.ParamsFile(), m.Name+" params",
				fmt.Sprintf("Params of the %s %s (%s). See SPEC.md.", m.Name, kind(m), who), used)
			if err != nil {
				return nil, err
			}
			out[m.ParamsFile()] = s
		}
		if m.Notification {
			continue
		}
		if m.Result == nil {
			out[m.ResultFile()] = map[string]any{
				"$schema":     Draft,
				"$id":         schema.BaseURI + m.ResultFile(),
				"title":       m.Name + " result",
				"description": fmt.Sprintf("The result of %s (%s) is null. See SPEC.md.", m.Name, who),
				"type":        "null",
			}
			continue
		}
		s, err := reflectType(m.Result, m.ResultFile(), m.Name+" result",
			fmt.Sprintf("Result of the %s request (%s). See SPEC.md.", m.Name, who), used)
		if err != nil {
			return nil, err
		}
		out[m.ResultFile()] = s
	}
	for _, e := range schema.ErrorData {
		s, err := reflectType(e.Data, e.File(), fmt.Sprintf("data of error %d", e.Code),
			fmt.Sprintf("The data member of an error answer with code %d. See SPEC.md.", e.Code), used)
		if err != nil {
			return nil, err
		}
		out[e.File()] = s
	}
	var unused []string
	for m := range patches {
		if !used[m] {
			unused = append(unused, m.typ+"."+m.name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return nil, fmt.Errorf("patches for types no schema defines (renamed or removed?): %s", strings.Join(unused, ", "))
	}
	for name, s := range envelopes() {
		out[name] = s
	}
	files := make(map[string][]byte, len(out))
	for name, v := range out {
		b, err := encode(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		files[name] = b
	}
	return files, nil
}

func kind(m schema.Method) string {
	if m.Notification {
		return "notification"
	}
	return "request"
}

// encode writes v as indented JSON without HTML escaping.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// reflectType reflects v's type into a self-contained schema with the given
// file name, title and description, and applies the patches.
func reflectType(v any, file, title, description string, used map[member]bool) (*jsonschema.Schema, error) {
	r := &jsonschema.Reflector{Anonymous: true}
	s := r.Reflect(v)
	s.Version = Draft
	s.ID = jsonschema.ID(schema.BaseURI + file)
	s.Title = title
	s.Description = description
	fullDescriptions(s, reflect.TypeOf(v))
	if err := applyPatches(s, used); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// A patch rewrites the schema of one member of one type.
type patch func(member *jsonschema.Schema) *jsonschema.Schema

type member struct{ typ, name string }

// patches holds every constraint reflection cannot express, by Go type name
// and JSON member name.
var patches = map[member]patch{
	// json.RawMessage members.
	{"Component", "config_schema"}: retype(&jsonschema.Schema{Type: "object"}),
	{"PrepareParams", "configs"}: func(s *jsonschema.Schema) *jsonschema.Schema {
		return &jsonschema.Schema{Type: "array", Items: &jsonschema.Schema{Type: "object"}, Description: s.Description}
	},
	{"CancelParams", "id"}: retype(&jsonschema.Schema{OneOf: []*jsonschema.Schema{
		{Type: "string"},
		{Type: "integer", Minimum: "0", Maximum: "9223372036854775807"},
	}}),
	// Pointers that are null when absent.
	{"BuilderRunResult", "artifact"}:  nullable,
	{"PostProcessResult", "artifact"}: nullable,
	// Numeric bounds.
	{"InitializeParams", "protocol_versions"}: func(s *jsonschema.Schema) *jsonschema.Schema {
		s.Items.Minimum = "1"
		return s
	},
	{"UnsupportedVersionData", "supported"}: func(s *jsonschema.Schema) *jsonschema.Schema {
		s.Items.Minimum = "1"
		return s
	},
	{"InitializeResult", "protocol_version"}: minimum("1"),
	{"Limits", "max_message_size"}:           minimum(fmt.Sprint(protocol.MinMaxMessageSize)),
	{"UIProgressParams", "total"}:            minimum("-1"),
	{"CommUploadParams", "size"}:             minimum("-1"),
	{"CommUploadParams", "mode"}: func(s *jsonschema.Schema) *jsonschema.Schema {
		s.Minimum, s.Maximum = "0", "4095"
		return s
	},
	{"StreamReadParams", "max"}:   maximum(fmt.Sprint(protocol.MaxChunkSize)),
	{"StreamReadResult", "data"}:  maxLength(base64Len(protocol.MaxChunkSize)),
	{"StreamWriteParams", "data"}: maxLength(base64Len(protocol.MaxChunkSize)),
	// A chunk carries at least one byte (§7.5.2): 4 characters of base64.
	{"StreamDataParams", "data"}: func(s *jsonschema.Schema) *jsonschema.Schema {
		s = maxLength(base64Len(protocol.MaxChunkSize))(s)
		least := base64Len(1)
		s.MinLength = &least
		return s
	},
	// Names and handles that must not be empty.
	{"Peer", "name"}:                          nonEmpty,
	{"PrepareParams", "name"}:                 nonEmpty,
	{"PrepareResult", "instance"}:             nonEmpty,
	{"InstanceParams", "instance"}:            nonEmpty,
	{"ProvisionParams", "instance"}:           nonEmpty,
	{"PostProcessParams", "instance"}:         nonEmpty,
	{"ArtifactDestroyParams", "artifact"}:     nonEmpty,
	{"HookRunParams", "name"}:                 nonEmpty,
	{"UIProgressParams", "id"}:                nonEmpty,
	{"CommStartParams", "communicator"}:       nonEmpty,
	{"CommUploadParams", "communicator"}:      nonEmpty,
	{"CommUploadParams", "source"}:            nonEmpty,
	{"CommDownloadParams", "communicator"}:    nonEmpty,
	{"CommDownloadParams", "sink"}:            nonEmpty,
	{"CommUploadDirParams", "communicator"}:   nonEmpty,
	{"CommUploadDirParams", "source"}:         nonEmpty,
	{"CommDownloadDirParams", "communicator"}: nonEmpty,
	{"CommDownloadDirParams", "sink"}:         nonEmpty,
	{"StreamReadParams", "stream"}:            nonEmpty,
	{"StreamWriteParams", "stream"}:           nonEmpty,
	{"StreamCloseParams", "stream"}:           nonEmpty,
}

// retype replaces a member's schema by s, keeping its description.
func retype(s *jsonschema.Schema) patch {
	return func(old *jsonschema.Schema) *jsonschema.Schema {
		c := *s
		c.Description = old.Description
		return &c
	}
}

// nullable allows null besides the member's own schema.
func nullable(s *jsonschema.Schema) *jsonschema.Schema {
	desc := s.Description
	s.Description = ""
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{s, {Type: "null"}}, Description: desc}
}

func minimum(n string) patch {
	return func(s *jsonschema.Schema) *jsonschema.Schema { s.Minimum = json.Number(n); return s }
}

func maximum(n string) patch {
	return func(s *jsonschema.Schema) *jsonschema.Schema { s.Maximum = json.Number(n); return s }
}

func maxLength(n uint64) patch {
	return func(s *jsonschema.Schema) *jsonschema.Schema { s.MaxLength = &n; return s }
}

func nonEmpty(s *jsonschema.Schema) *jsonschema.Schema {
	one := uint64(1)
	s.MinLength = &one
	return s
}

// base64Len is the length of the padded standard base64 encoding of n bytes.
func base64Len(n int) uint64 { return uint64((n + 2) / 3 * 4) }

// applyPatches applies every patch whose type is defined in s, and records
// it in used. It fails when a patch names a member its type does not have.
func applyPatches(s *jsonschema.Schema, used map[member]bool) error {
	names := make([]string, 0, len(s.Definitions))
	for name := range s.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, tname := range names {
		def := s.Definitions[tname]
		for m, p := range patches {
			if m.typ != tname {
				continue
			}
			if def.Properties == nil {
				return fmt.Errorf("patch for %s.%s: %s has no members", m.typ, m.name, tname)
			}
			old, ok := def.Properties.Get(m.name)
			if !ok {
				return fmt.Errorf("patch for %s.%s: %s has no member %q", m.typ, m.name, tname, m.name)
			}
			def.Properties.Set(m.name, p(old))
			used[m] = true
		}
		if streamRefTypes[tname] {
			// Exactly one of source and sink names the stream (StreamRef).
			def.OneOf = []*jsonschema.Schema{{Required: []string{"source"}}, {Required: []string{"sink"}}}
		}
	}
	return nil
}

// streamRefTypes embed protocol.StreamRef: exactly one of its members is set.
var streamRefTypes = map[string]bool{
	"StreamDataParams": true, "StreamCreditParams": true, "StreamEndParams": true, "StreamCancelParams": true,
}

// fullDescriptions restores descriptions that contain commas. The
// jsonschema tags in package protocol put description last, and invopop
// splits tags at commas, keeping only the text before the first comma of
// the description; here the description is everything after
// "description=". It walks every struct type reachable from t.
func fullDescriptions(s *jsonschema.Schema, t reflect.Type) {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		def := s.Definitions[t.Name()]
		for i := range t.NumField() {
			f := t.Field(i)
			walk(f.Type)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			_, desc, ok := strings.Cut(f.Tag.Get("jsonschema"), "description=")
			if def == nil || def.Properties == nil || name == "" || !ok {
				continue
			}
			if p, ok := def.Properties.Get(name); ok {
				p.Description = desc
			}
		}
	}
	walk(t)
}
