package pluginkit

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"

	"github.com/packer-stdio/packer/protocol"
)

// Datasource computes values a template reads while it is loaded (HCL2's
// data "TYPE" "NAME" blocks), before any build runs. The host prepares it
// like any component, then calls Execute once.
type Datasource interface {
	Configurable
	// Output returns a pointer to the struct Execute's output encodes as;
	// pluginkit reflects its JSON Schema once, at registration, and sends
	// it in the handshake as the component's output_schema. Every field
	// without omitempty is required.
	Output() any
	// Execute computes the output: a value that encodes to a JSON object
	// valid against Output's schema (usually a pointer to that struct).
	// ctx is cancelled when the host cancels the request or shuts the
	// plugin down.
	Execute(ctx context.Context) (any, error)
}

// RegisterDatasource registers d under name with the server [Serve] runs;
// see [RegisterBuilder].
func RegisterDatasource(name string, d Datasource) { defaultServer.RegisterDatasource(name, d) }

// RegisterDatasource adds a data source; see [Server.RegisterBuilder]. It
// also panics when d.Output does not return a pointer to a struct.
func (s *Server) RegisterDatasource(name string, d Datasource) {
	s.register(protocol.TypeDatasource, name, d)
}

// reflectOutput returns the output_schema of the struct out points to.
func reflectOutput(out any) (json.RawMessage, error) {
	t := reflect.TypeOf(out)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("the Output method must return a pointer to a struct, got %T", out)
	}
	r := jsonschema.Reflector{DoNotReference: true}
	sch := r.Reflect(out)
	sch.Version = "https://json-schema.org/draft/2020-12/schema"
	sch.ID = ""
	raw, err := json.Marshal(sch)
	if err != nil {
		return nil, fmt.Errorf("encoding output schema of %T: %w", out, err)
	}
	return raw, nil
}

func (s *session) datasourceExecute(ctx context.Context, req *protocol.Request) (any, error) {
	var p protocol.InstanceParams
	if err := req.DecodeParams(&p); err != nil {
		return nil, err
	}
	v, err := s.instance(p.Instance, protocol.TypeDatasource)
	if err != nil {
		return nil, err
	}
	var res protocol.DatasourceExecuteResult
	err = s.protect("datasource/execute", func() error {
		out, err := v.(Datasource).Execute(ctx)
		if err != nil {
			return err
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encoding the output: %w", err)
		}
		if err := json.Unmarshal(raw, &res.Output); err != nil || res.Output == nil {
			return fmt.Errorf("the output %s is not a JSON object", raw)
		}
		return nil
	})
	if err != nil {
		return nil, componentError(ctx, err)
	}
	return res, nil
}
