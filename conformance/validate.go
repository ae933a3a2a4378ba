package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/packer-stdio/packer/schema"
)

// validator checks messages against the protocol's JSON Schemas.
type validator struct {
	schemas map[string]*jsonschema.Schema // by file name
}

var (
	defaultValidatorOnce sync.Once
	defaultValidator     *validator
	defaultValidatorErr  error
)

// protocolValidator returns the validator for the schema files in
// schema.FS, compiled once.
func protocolValidator() (*validator, error) {
	defaultValidatorOnce.Do(func() {
		defaultValidator, defaultValidatorErr = newValidator(schema.FS)
	})
	return defaultValidator, defaultValidatorErr
}

// newValidator compiles every *.json file at the root of fsys.
func newValidator(fsys fs.FS) (*validator, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		if err := c.AddResource(schema.BaseURI+name, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	v := &validator{schemas: map[string]*jsonschema.Schema{}}
	for _, name := range names {
		sch, err := c.Compile(schema.BaseURI + name)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		v.schemas[name] = sch
	}
	return v, nil
}

// validate checks raw JSON against the schema file name. A file that does
// not exist is not checked.
func (v *validator) validate(file string, raw json.RawMessage) error {
	sch, ok := v.schemas[file]
	if !ok {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := sch.Validate(doc); err != nil {
		return fmt.Errorf("%s: %s", file, oneLine(err))
	}
	return nil
}

// oneLine flattens a validation error's report.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// checkMessage validates one message the plugin sent: the envelope, the
// params of a request or notification it sent, and the result or error
// data of an answer to a request of the runner, whose method comes from
// sent (id key → method).
func (v *validator) checkMessage(m *message, sent map[string]string) error {
	if m.isResponse() {
		if err := v.validate(schema.EnvelopeResponse, m.Raw); err != nil {
			return err
		}
		method, ok := sent[m.idKey()]
		if !ok {
			return nil
		}
		return v.checkAnswer(m, method)
	}
	return v.checkCall(m, "plugin", schema.HostToPlugin, "only a host may send")
}

// checkHostMessage validates a message a host sent to a plugin: the
// envelope, the direction of a method, its params, and the result of an
// answer to one of the plugin's requests (sent maps their ids to methods).
func (v *validator) checkHostMessage(m *message, sent map[string]string) error {
	if m.isResponse() {
		if err := v.validate(schema.EnvelopeResponse, m.Raw); err != nil {
			return err
		}
		method, ok := sent[m.idKey()]
		if !ok {
			return fmt.Errorf("an answer to id %s, which the plugin never sent", m.idKey())
		}
		return v.checkAnswer(m, method)
	}
	return v.checkCall(m, "host", schema.PluginToHost, "only a plugin may send")
}

// checkAnswer validates the answer m to a request of method: the data of
// an error whose code SPEC gives a data schema, or else the result. The
// same rules hold whichever side answers, so the plugin-side and host-side
// checks share it.
func (v *validator) checkAnswer(m *message, method string) error {
	if e := m.wireErr(); e != nil {
		if d, ok := schema.LookupErrorData(e.Code); ok {
			if e.Data == nil {
				return fmt.Errorf("error %d to %s has no data; SPEC requires %s", e.Code, method, d.File())
			}
			return v.validate(d.File(), e.Data)
		}
		return nil
	}
	meth, ok := schema.Lookup(method)
	if !ok || meth.ResultFile() == "" {
		return nil
	}
	return v.validate(meth.ResultFile(), m.Result)
}

// checkCall validates a request or notification m that sender ("plugin"
// or "host") sent: its envelope, that its method exists, is not of the
// direction wrong (which only the other side may send, as whose says),
// is sent as the request or notification it is, and that its params
// match the method's schema.
func (v *validator) checkCall(m *message, sender string, wrong schema.Direction, whose string) error {
	envelope := schema.EnvelopeNotification
	if m.isRequest() {
		envelope = schema.EnvelopeRequest
	}
	if err := v.validate(envelope, m.Raw); err != nil {
		return err
	}
	meth, ok := schema.Lookup(m.method)
	if !ok {
		return fmt.Errorf("%s sent %q, which is not a method of the protocol", sender, m.method)
	}
	if meth.Direction == wrong {
		return fmt.Errorf("%s sent %s, which %s", sender, m.method, whose)
	}
	if meth.Notification != !m.isRequest() {
		if meth.Notification {
			return fmt.Errorf("%s sent %s as a request; it is a notification", sender, m.method)
		}
		return fmt.Errorf("%s sent %s as a notification; it is a request", sender, m.method)
	}
	return v.validate(meth.ParamsFile(), paramsOrEmpty(m))
}

// compileConfigSchema compiles a component's config_schema as a draft
// 2020-12 JSON Schema, which also checks it against the meta-schema.
func compileConfigSchema(name string, raw json.RawMessage) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	url := "urn:packer-stdio:config:" + name
	if err := c.AddResource(url, doc); err != nil {
		return err
	}
	if _, err := c.Compile(url); err != nil {
		return fmt.Errorf("%s", oneLine(err))
	}
	return nil
}
