package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/packer-stdio/packer/protocol"
)

// datasourceChecks enforce SPEC §6.7. A plugin without data sources passes
// them: their rules are about every data source it serves.
var datasourceChecks = []Check{
	{
		ID: "handshake/output-schema", Section: "§6.7", Level: Must,
		Title: "every data source declares an output_schema (a draft 2020-12 schema); no other component does",
		run:   checkOutputSchema,
	},
	{
		ID: "run/datasource", Section: "§6.7", Level: Must,
		Title: "every data source prepares and executes to an object valid against its output_schema",
		run:   checkDatasourceRun,
	},
}

func checkOutputSchema(c *checkCtx) error {
	_, res, err := c.ready()
	if err != nil {
		return err
	}
	n := 0
	for _, comp := range res.Components {
		key := comp.Type + "/" + comp.Name
		if comp.Type != protocol.TypeDatasource {
			if len(comp.OutputSchema) > 0 {
				return failf("component %s is not a data source but declares an output_schema", key)
			}
			continue
		}
		n++
		if len(comp.OutputSchema) == 0 {
			return failf("data source %s declares no output_schema", key)
		}
		if _, err := compileSchema("output:"+comp.Name, comp.OutputSchema); err != nil {
			return failf("data source %s: output_schema: %v", key, err)
		}
	}
	if n == 0 {
		c.tr.notef("plugin advertises no data source")
	}
	return nil
}

func checkDatasourceRun(c *checkCtx) error {
	s, res, err := c.ready()
	if err != nil {
		return err
	}
	n := 0
	for _, comp := range res.Components {
		if comp.Type != protocol.TypeDatasource {
			continue
		}
		n++
		key := comp.Type + "/" + comp.Name
		// A missing or broken output_schema is handshake/output-schema's
		// failure; the output is then checked only for being an object.
		var sch *jsonschema.Schema
		if len(comp.OutputSchema) > 0 {
			sch, _ = compileSchema("output:"+comp.Name, comp.OutputSchema)
		}
		cfg, given := c.userConfig(comp)
		if !given {
			cfg = json.RawMessage("{}")
		}
		m, err := c.prepareRaw(s, comp, cfg)
		if err != nil {
			return err
		}
		if m.wireErr() != nil {
			if !given {
				c.tr.notef("%s: needs -config %s=file.json (prepare with {}: %s); not executed", key, comp.Name, m.describe())
				continue
			}
			return failf("%s: prepare with the -config file: %s", key, m.describe())
		}
		var pr protocol.PrepareResult
		if err := json.Unmarshal(m.Result, &pr); err != nil || pr.Instance == "" {
			return failf("%s: prepare answered %s, want an instance handle", key, m.describe())
		}
		m, err = s.call(c.ctx, protocol.MethodDatasourceExecute, protocol.InstanceParams{Instance: pr.Instance})
		if err != nil {
			return failf("%s: datasource/execute: %v", key, err)
		}
		if m.wireErr() != nil {
			return failf("%s: datasource/execute answered %s", key, m.describe())
		}
		var r struct {
			Output json.RawMessage `json:"output"`
		}
		if err := json.Unmarshal(m.Result, &r); err != nil || len(r.Output) == 0 || r.Output[0] != '{' {
			return failf("%s: datasource/execute answered %s, want {\"output\": OBJECT}", key, printable(m.Result))
		}
		out, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Output))
		if err != nil {
			return failf("%s: output: %v", key, err)
		}
		if sch == nil {
			continue
		}
		if err := sch.Validate(out); err != nil {
			return failf("%s: the output does not match its output_schema: %s", key, oneLine(err))
		}
	}
	if n == 0 {
		c.tr.notef("plugin advertises no data source")
	}
	return nil
}

// compileSchema compiles a schema a plugin sent as draft 2020-12.
func compileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	url := "urn:packer-stdio:" + name
	if err := comp.AddResource(url, doc); err != nil {
		return nil, err
	}
	sch, err := comp.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s", oneLine(err))
	}
	return sch, nil
}
