package pluginkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

// decodeParams decodes req's params into v, a pointer to one of protocol's
// params types, and checks them against the method's params schema before
// anything else looks at them (SPEC §4.1, "Error precedence"): members the
// schema requires must be present, unknown members and wrong JSON types are
// refused, and the bounds the schema states (non-empty handles and names,
// the component type enum, the message size minimum) hold. Every violation
// is an [protocol.ErrInvalidParams]; lookups (components, handles, versions)
// come after, so the same bad request gets the same code from every
// implementation.
func decodeParams(req *protocol.Request, v any) error {
	if err := req.DecodeParams(v); err != nil {
		return err
	}
	if err := missingMembers(req.Params, reflect.TypeOf(v).Elem(), ""); err != nil {
		return protocol.ErrInvalidParams.WithMessage("%s: %v", req.Method, err)
	}
	if err := checkBounds(v); err != nil {
		return protocol.ErrInvalidParams.WithMessage("%s: %v", req.Method, err)
	}
	return nil
}

// missingMembers reports the first member that t's JSON encoding always
// has (a field without omitempty, which the generated schema lists as
// required) and raw lacks, looking into nested objects and arrays of them.
func missingMembers(raw json.RawMessage, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Struct {
			return nil
		}
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, item := range items {
			if err := missingMembers(item, t.Elem(), fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		if t == reflect.TypeOf(json.RawMessage(nil)) {
			return nil
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			member, ok := obj[name]
			if !ok {
				if !strings.Contains(","+opts+",", ",omitempty,") {
					return fmt.Errorf("member %q is missing", strings.TrimPrefix(path+"/"+name, "/"))
				}
				continue
			}
			if err := missingMembers(member, f.Type, path+"/"+name); err != nil {
				return err
			}
		}
	}
	return nil
}

// errEmpty is the bound every handle and name has: minLength 1.
var errEmpty = errors.New("must not be empty")

// checkBounds checks what the params schemas state beyond members and
// types.
func checkBounds(v any) error {
	switch p := v.(type) {
	case *protocol.InitializeParams:
		if len(p.ProtocolVersions) == 0 {
			return errors.New("protocol_versions must list at least one version")
		}
		for _, pv := range p.ProtocolVersions {
			if pv < 1 {
				return fmt.Errorf("protocol_versions: %d is not a version (versions start at 1)", pv)
			}
		}
		if p.Host.Name == "" {
			return fmt.Errorf("host.name %w", errEmpty)
		}
		if m := p.Limits.MaxMessageSize; m < protocol.MinMaxMessageSize {
			return fmt.Errorf("limits.max_message_size %d is below the minimum %d", m, protocol.MinMaxMessageSize)
		}
	case *protocol.PrepareParams:
		switch p.Type {
		case protocol.TypeBuilder, protocol.TypeProvisioner, protocol.TypePostProcessor, protocol.TypeDatasource:
		default:
			return fmt.Errorf("type %q is not one of builder, provisioner, post-processor, datasource", p.Type)
		}
		if p.Name == "" {
			return fmt.Errorf("name %w", errEmpty)
		}
		for i, c := range p.Configs {
			if c = bytes.TrimSpace(c); len(c) == 0 || c[0] != '{' {
				return fmt.Errorf("configs[%d] is not a JSON object", i)
			}
		}
	case *protocol.InstanceParams:
		return nonEmpty("instance", p.Instance)
	case *protocol.ProvisionParams:
		return nonEmpty("instance", p.Instance)
	case *protocol.PostProcessParams:
		return nonEmpty("instance", p.Instance)
	case *protocol.ArtifactDestroyParams:
		return nonEmpty("artifact", p.Artifact)
	}
	return nil
}

func nonEmpty(member, value string) error {
	if value == "" {
		return fmt.Errorf("%s %w", member, errEmpty)
	}
	return nil
}

// shutdownParams checks the params of shutdown, which takes none: the
// member is omitted, or is an empty object. An array (even an empty one)
// or an object with members is refused with -32602, as for every method
// whose params are not an object (SPEC §9.1).
func shutdownParams(req *protocol.Request) error {
	raw := bytes.TrimSpace(req.Params)
	if len(raw) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return protocol.ErrInvalidParams.WithMessage("%s takes no params: omit the member or send {}", req.Method)
	}
	if len(obj) > 0 {
		return protocol.ErrInvalidParams.WithMessage("%s takes no params, got %d members", req.Method, len(obj))
	}
	return nil
}
