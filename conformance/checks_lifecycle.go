package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

var configChecks = []Check{
	{
		ID: "config/schema-valid", Section: "§5.1", Level: Must,
		Title: "every component's config_schema is a valid JSON Schema (draft 2020-12)",
		run:   checkSchemaValid,
	},
	{
		ID: "config/packer-keys", Section: "§6.1", Level: Must,
		Title: "every component's config_schema accepts the host's packer_* keys",
		run:   checkPackerKeys,
	},
	{
		ID: "prepare/empty-config", Section: "§6.1", Level: Must,
		Title: "prepare with {} gives an instance or -32003 with errors, and the plugin lives on",
		run:   checkEmptyConfig,
	},
	{
		ID: "prepare/wrong-type", Section: "§6.1", Level: Must,
		Title: "prepare with a config that is not an object gives -32602; a key of the wrong type gives -32003 with its path",
		run:   checkWrongType,
	},
	{
		ID: "prepare/unknown-component", Section: "§6.1", Level: Must,
		Title: "prepare of a component the plugin did not advertise gives -32004",
		run:   checkUnknownComponent,
	},
	{
		ID: "run/builder", Section: "§6.2", Level: Must,
		Title: "every builder runs to a result (host answers ui, hook and communicator callbacks)",
		run:   runKind(protocol.TypeBuilder),
	},
	{
		ID: "run/provisioner", Section: "§6.3", Level: Must,
		Title: "every provisioner provisions through the runner's communicator",
		run:   runKind(protocol.TypeProvisioner),
	},
	{
		ID: "run/post-processor", Section: "§6.4", Level: Must,
		Title: "every post-processor post-processes a sample artifact",
		run:   runKind(protocol.TypePostProcessor),
	},
	{
		ID: "run/unknown-handle", Section: "§6.6", Level: Must,
		Title: "builder/run and artifact/destroy with handles never minted give -32005",
		run:   checkUnknownHandle,
	},
}

var endChecks = []Check{
	{
		ID: "cancel/run", Section: "§8", Level: Must,
		Title: "a cancelled run, kept busy by a hook/run the runner holds, is answered (-32006 or its result) within 5s and the plugin stays usable",
		run:   checkCancel,
	},
	{
		ID: "shutdown/exit", Section: "§9.1", Level: Must,
		Title: "shutdown is answered with null and the plugin exits 0 within 5s, stdin still open",
		run:   checkShutdownExit,
	},
	{
		ID: "shutdown/after", Section: "§9.1", Level: Must,
		Title: "a request after shutdown gets -32010 (or no answer because the plugin exited)",
		run:   checkAfterShutdown,
	},
	{
		ID: "eof/exit", Section: "§9.2", Level: Must,
		Title: "stdin EOF makes the plugin exit 0 within 2s",
		run:   checkEOFExit,
	},
}

// packerKeys are the keys SPEC §6 says a host sends to every component.
var packerKeys = []string{
	"packer_build_name", "packer_builder_type", "packer_debug", "packer_force",
	"packer_on_error", "packer_user_variables", "packer_sensitive_variables",
}

// hostKeys is the last config object the runner sends, as a host does. It
// says -force: the runner runs a builder several times, and a builder may
// rightly refuse to replace its own output without it.
func hostKeys(comp protocol.Component) json.RawMessage {
	builderType := "conformance"
	if comp.Type == protocol.TypeBuilder {
		builderType = comp.Name
	}
	b, _ := json.Marshal(map[string]any{
		"packer_build_name":          "conformance",
		"packer_builder_type":        builderType,
		"packer_debug":               false,
		"packer_force":               true,
		"packer_on_error":            "cleanup",
		"packer_user_variables":      map[string]string{},
		"packer_sensitive_variables": []string{},
	})
	return b
}

func checkSchemaValid(c *checkCtx) error {
	_, res, err := c.ready()
	if err != nil {
		return err
	}
	for _, comp := range res.Components {
		var head struct {
			Schema *string `json:"$schema"`
		}
		if err := json.Unmarshal(comp.ConfigSchema, &head); err != nil {
			return failf("%s %s: config_schema: %v", comp.Type, comp.Name, err)
		}
		if head.Schema != nil && strings.TrimSuffix(*head.Schema, "#") != "https://json-schema.org/draft/2020-12/schema" {
			return failf("%s %s: config_schema declares $schema %q, want draft 2020-12", comp.Type, comp.Name, *head.Schema)
		}
		if err := compileConfigSchema(comp.Type+"/"+comp.Name, comp.ConfigSchema); err != nil {
			return failf("%s %s: config_schema is not a valid JSON Schema: %v", comp.Type, comp.Name, err)
		}
	}
	return nil
}

func checkPackerKeys(c *checkCtx) error {
	_, res, err := c.ready()
	if err != nil {
		return err
	}
	for _, comp := range res.Components {
		var sch struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		json.Unmarshal(comp.ConfigSchema, &sch)
		var missing []string
		for _, k := range packerKeys {
			if _, ok := sch.Properties[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return failf("%s %s: config_schema.properties lacks %s", comp.Type, comp.Name, strings.Join(missing, ", "))
		}
	}
	return nil
}

// prepareRaw sends component/prepare with configs and returns the answer.
func (c *checkCtx) prepareRaw(s *session, comp protocol.Component, configs ...json.RawMessage) (*message, error) {
	m, err := s.call(c.ctx, protocol.MethodPrepare, protocol.PrepareParams{Type: comp.Type, Name: comp.Name, Configs: configs})
	if err != nil {
		return nil, failf("%s %s: component/prepare: %v", comp.Type, comp.Name, err)
	}
	return m, nil
}

// configErrors checks that m is a -32003 answer whose data lists errors,
// and returns them.
func configErrors(m *message) ([]protocol.ConfigError, error) {
	if err := expectCode(m, protocol.CodeConfigInvalid, ""); err != nil {
		return nil, err
	}
	var data protocol.ConfigInvalidData
	if err := json.Unmarshal(m.wireErr().Data, &data); err != nil || len(data.Errors) == 0 {
		return nil, failf("error -32003 must carry data {\"errors\":[{\"path\",\"message\"}...]}, got %s", printable(m.wireErr().Data))
	}
	for _, e := range data.Errors {
		if e.Path != "" && !strings.HasPrefix(e.Path, "/") {
			return nil, failf("error path %q is not a JSON pointer", e.Path)
		}
	}
	return data.Errors, nil
}

func checkEmptyConfig(c *checkCtx) error {
	s, res, err := c.ready()
	if err != nil {
		return err
	}
	if len(res.Components) == 0 {
		return skipf("plugin advertises no components")
	}
	for _, comp := range res.Components {
		m, err := c.prepareRaw(s, comp, json.RawMessage("{}"))
		if err != nil {
			return err
		}
		if m.wireErr() == nil {
			var pr protocol.PrepareResult
			if err := json.Unmarshal(m.Result, &pr); err != nil || pr.Instance == "" {
				return failf("%s %s: prepare with {} answered %s, want an instance handle", comp.Type, comp.Name, m.describe())
			}
			continue
		}
		if _, err := configErrors(m); err != nil {
			return failf("%s %s: prepare with {}: %v", comp.Type, comp.Name, err)
		}
	}
	return c.ping(s, "after preparing with {}")
}

// stringProperty returns a property of the schema that must be a string
// (and is not a packer_* key), or "".
func stringProperty(raw json.RawMessage) string {
	var sch struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	json.Unmarshal(raw, &sch)
	var names []string
	for name, p := range sch.Properties {
		if t, ok := p.Type.(string); ok && t == "string" && !strings.HasPrefix(name, "packer_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func checkWrongType(c *checkCtx) error {
	s, res, err := c.ready()
	if err != nil {
		return err
	}
	if len(res.Components) == 0 {
		return skipf("plugin advertises no components")
	}
	for _, comp := range res.Components {
		m, err := c.prepareRaw(s, comp, json.RawMessage(`["not","an","object"]`))
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidParams, ""); err != nil {
			return failf("%s %s: prepare with a config that is an array (SPEC §6.1: -32602): %v", comp.Type, comp.Name, err)
		}
		prop := stringProperty(comp.ConfigSchema)
		if prop == "" {
			continue
		}
		cfg, _ := json.Marshal(map[string]any{prop: 12345})
		m, err = c.prepareRaw(s, comp, cfg)
		if err != nil {
			return err
		}
		errs, err := configErrors(m)
		if err != nil {
			return failf("%s %s: prepare with %s: %v", comp.Type, comp.Name, cfg, err)
		}
		found := false
		for _, e := range errs {
			found = found || e.Path == "/"+prop
		}
		if !found {
			return failf("%s %s: prepare with %s: no error has path %q: %+v", comp.Type, comp.Name, cfg, "/"+prop, errs)
		}
	}
	return c.ping(s, "after wrong-type configs")
}

func checkUnknownComponent(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	comp := protocol.Component{Type: protocol.TypeBuilder, Name: "conformance-no-such-component"}
	m, err := c.prepareRaw(s, comp, json.RawMessage("{}"))
	if err != nil {
		return err
	}
	return expectCode(m, protocol.CodeUnknownComponent, "")
}

// userConfig returns the -config file given for comp, if any.
func (c *checkCtx) userConfig(comp protocol.Component) (json.RawMessage, bool) {
	if cfg, ok := c.cfg.Configs[comp.Type+"/"+comp.Name]; ok {
		return cfg, true
	}
	cfg, ok := c.cfg.Configs[comp.Name]
	return cfg, ok
}

// prepare prepares comp as a host would: the -config file for it (or {})
// followed by the host's packer_* keys. Without a -config file, a refused
// prepare is a skip; with one, a failure.
func (c *checkCtx) prepare(s *session, comp protocol.Component) (string, error) {
	cfg, given := c.userConfig(comp)
	if !given {
		cfg = json.RawMessage("{}")
	}
	m, err := c.prepareRaw(s, comp, cfg, hostKeys(comp))
	if err != nil {
		return "", err
	}
	if e := m.wireErr(); e != nil {
		if !given {
			return "", skipf("%s %s: needs -config %s=file.json (prepare with {}: %s)", comp.Type, comp.Name, comp.Name, m.describe())
		}
		return "", failf("%s %s: prepare with the -config file: %s", comp.Type, comp.Name, m.describe())
	}
	var pr protocol.PrepareResult
	if err := json.Unmarshal(m.Result, &pr); err != nil || pr.Instance == "" {
		return "", failf("%s %s: prepare answered %s, want an instance handle", comp.Type, comp.Name, m.describe())
	}
	return pr.Instance, nil
}

// runRequest returns the method and params that run a prepared instance.
func (c *checkCtx) runRequest(s *session, comp protocol.Component, instance string) (string, any, func(), error) {
	switch comp.Type {
	case protocol.TypeBuilder:
		return protocol.MethodBuilderRun, protocol.InstanceParams{Instance: instance}, func() {}, nil
	case protocol.TypeProvisioner:
		h := s.host.mintComm()
		return protocol.MethodProvision, protocol.ProvisionParams{Instance: instance, Communicator: h, Data: map[string]any{"ID": "conformance"}},
			func() { s.host.releaseComm(h) }, nil
	default:
		if c.cfg.Artifact != nil {
			if in, ok := c.cfg.Artifact(comp); ok {
				return protocol.MethodPostProcess, protocol.PostProcessParams{Instance: instance, Artifact: in}, func() {}, nil
			}
		}
		in, err := c.sampleArtifact()
		if err != nil {
			return "", nil, nil, err
		}
		return protocol.MethodPostProcess, protocol.PostProcessParams{Instance: instance, Artifact: in}, func() {}, nil
	}
}

// sampleArtifact writes a small file and returns an artifact made of it.
func (c *checkCtx) sampleArtifact() (protocol.Artifact, error) {
	dir, err := os.MkdirTemp(c.tmp, "artifact")
	if err != nil {
		return protocol.Artifact{}, err
	}
	f := filepath.Join(dir, "sample.txt")
	if err := os.WriteFile(f, []byte("conformance sample artifact\n"), 0o644); err != nil {
		return protocol.Artifact{}, err
	}
	return protocol.Artifact{BuilderID: "packer-stdio.conformance", ID: "sample", Files: []string{f}, String: "a sample artifact from plugin-conformance"}, nil
}

// runComponent runs a prepared instance to its answer and destroys the
// artifact it returns, if any.
func (c *checkCtx) runComponent(s *session, comp protocol.Component, instance string) error {
	method, params, release, err := c.runRequest(s, comp, instance)
	if err != nil {
		return err
	}
	m, err := s.call(c.ctx, method, params)
	release()
	if err != nil {
		return failf("%s %s: %s: %v", comp.Type, comp.Name, method, err)
	}
	if m.wireErr() != nil {
		return failf("%s %s: %s answered %s", comp.Type, comp.Name, method, m.describe())
	}
	var art *protocol.Artifact
	switch comp.Type {
	case protocol.TypeBuilder:
		var r protocol.BuilderRunResult
		if err := json.Unmarshal(m.Result, &r); err != nil {
			return failf("%s %s: builder/run result: %v", comp.Type, comp.Name, err)
		}
		art = r.Artifact
	case protocol.TypePostProcessor:
		var r protocol.PostProcessResult
		if err := json.Unmarshal(m.Result, &r); err != nil {
			return failf("%s %s: postprocessor/postprocess result: %v", comp.Type, comp.Name, err)
		}
		art = r.Artifact
	default:
		if string(m.Result) != "null" {
			return failf("%s %s: provisioner/provision result is %s, want null", comp.Type, comp.Name, printable(m.Result))
		}
	}
	if art == nil || art.Handle == "" {
		return nil
	}
	m, err = s.call(c.ctx, protocol.MethodArtifactDestroy, protocol.ArtifactDestroyParams{Artifact: art.Handle})
	if err != nil {
		return failf("%s %s: artifact/destroy %s: %v", comp.Type, comp.Name, art.Handle, err)
	}
	if m.wireErr() != nil || string(m.Result) != "null" {
		return failf("%s %s: artifact/destroy %s answered %s, want null", comp.Type, comp.Name, art.Handle, m.describe())
	}
	return nil
}

// runKind returns the check that runs every component of type typ.
func runKind(typ string) func(c *checkCtx) error {
	return func(c *checkCtx) error {
		s, res, err := c.ready()
		if err != nil {
			return err
		}
		ran := 0
		var skipped []string
		for _, comp := range res.Components {
			if comp.Type != typ {
				continue
			}
			instance, err := c.prepare(s, comp)
			var skip *skipError
			if errors.As(err, &skip) {
				skipped = append(skipped, skip.reason)
				continue
			}
			if err != nil {
				return err
			}
			if err := c.runComponent(s, comp, instance); err != nil {
				return err
			}
			ran++
		}
		switch {
		case ran == 0 && len(skipped) == 0:
			return skipf("plugin advertises no %s", typ)
		case ran == 0:
			return skipf("%s", strings.Join(skipped, "; "))
		}
		if len(skipped) > 0 {
			c.tr.notef("not run: %s", strings.Join(skipped, "; "))
		}
		return nil
	}
}

func checkUnknownHandle(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	m, err := s.call(c.ctx, protocol.MethodBuilderRun, protocol.InstanceParams{Instance: "i999999"})
	if err != nil {
		return err
	}
	if err := expectCode(m, protocol.CodeUnknownHandle, ""); err != nil {
		return failf("builder/run of instance i999999: %v", err)
	}
	m, err = s.call(c.ctx, protocol.MethodArtifactDestroy, protocol.ArtifactDestroyParams{Artifact: "a999999"})
	if err != nil {
		return err
	}
	if err := expectCode(m, protocol.CodeUnknownHandle, ""); err != nil {
		return failf("artifact/destroy of a999999: %v", err)
	}
	return nil
}

// firstRunnable prepares components, builders first, until one prepares.
func (c *checkCtx) firstRunnable(s *session, res *protocol.InitializeResult) (protocol.Component, string, error) {
	var skipped []string
	for _, typ := range []string{protocol.TypeBuilder, protocol.TypeProvisioner, protocol.TypePostProcessor} {
		for _, comp := range res.Components {
			if comp.Type != typ {
				continue
			}
			instance, err := c.prepare(s, comp)
			var skip *skipError
			if errors.As(err, &skip) {
				skipped = append(skipped, skip.reason)
				continue
			}
			return comp, instance, err
		}
	}
	if len(skipped) == 0 {
		return protocol.Component{}, "", skipf("plugin advertises no components")
	}
	return protocol.Component{}, "", skipf("no component prepares without -config: %s", strings.Join(skipped, "; "))
}

// busyRun is a run request of the first runnable component, started while
// the runner holds its hook/run calls (see startBusy).
type busyRun struct {
	s      *session
	comp   protocol.Component
	method string
	id     json.RawMessage
	ch     chan *message
	early  *message // the answer, when the run finished before it was busy
}

// startBusyRun starts a fresh session, prepares its first runnable
// component and starts running it busy, as the checks that interrupt a
// run (cancel, SIGTERM) need. The caller must call release once done with
// the run; on error nothing is left to release.
func (c *checkCtx) startBusyRun() (r busyRun, release func(), err error) {
	s, res, err := c.ready()
	if err != nil {
		return busyRun{}, nil, err
	}
	comp, instance, err := c.firstRunnable(s, res)
	if err != nil {
		return busyRun{}, nil, err
	}
	method, params, release, err := c.runRequest(s, comp, instance)
	if err != nil {
		return busyRun{}, nil, err
	}
	s.host.setHook(hookBlock)
	id, ch, early, err := c.startBusy(s, method, params)
	if err != nil {
		release()
		return busyRun{}, nil, err
	}
	return busyRun{s: s, comp: comp, method: method, id: id, ch: ch, early: early}, release, nil
}

func checkCancel(c *checkCtx) error {
	r, release, err := c.startBusyRun()
	if err != nil {
		return err
	}
	defer release()
	s, comp, method, id, ch, early := r.s, r.comp, r.method, r.id, r.ch, r.early
	if early != nil {
		c.tr.notef("the run was answered before it could be cancelled: cancellation was not exercised")
		return c.ping(s, fmt.Sprintf("after %s", method))
	}
	if err := s.notify(protocol.MethodCancelRequest, protocol.CancelParams{ID: id}); err != nil {
		return err
	}
	m, err := answeredWithin(c.ctx, s, id, ch, cancelBound)
	if err != nil {
		return failf("%s %s: %s cancelled at once: %v", comp.Type, comp.Name, method, err)
	}
	if e := m.wireErr(); e != nil && e.Code != protocol.CodeCancelled {
		return failf("%s %s: cancelled %s answered %s, want error %d or its result", comp.Type, comp.Name, method, m.describe(), protocol.CodeCancelled)
	}
	return c.ping(s, fmt.Sprintf("after cancelling %s", method))
}

// shutdown sends shutdown and checks that it is answered with null.
func (c *checkCtx) shutdown(s *session) error {
	id, ch, err := s.start(protocol.MethodShutdown, nil)
	if err != nil {
		return err
	}
	m, err := answeredWithin(c.ctx, s, id, ch, exitBound)
	if err != nil {
		return failf("shutdown: %v", err)
	}
	if m.wireErr() != nil || string(m.Result) != "null" {
		return failf("shutdown answered %s, want result null", m.describe())
	}
	return nil
}

func checkShutdownExit(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	if err := c.shutdown(s); err != nil {
		return err
	}
	st, ok := s.waitExit(c.ctx, shutdownExitBound)
	if !ok {
		return failf("still running %v after answering shutdown (stdin open): it must exit promptly", shutdownExitBound)
	}
	if st.ExitCode() != 0 {
		return failf("exited with %v after shutdown, want status 0", st)
	}
	return nil
}

func checkAfterShutdown(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	if err := c.shutdown(s); err != nil {
		return err
	}
	id, ch, err := s.start(protocol.MethodPrepare, protocol.PrepareParams{Type: protocol.TypeBuilder, Name: "conformance-no-such-component", Configs: []json.RawMessage{json.RawMessage("{}")}})
	if err != nil {
		c.tr.notef("plugin no longer reads stdin after shutdown: fine")
		return nil
	}
	m, err := answeredWithin(c.ctx, s, id, ch, exitBound)
	if errors.Is(err, errExited) {
		c.tr.notef("plugin exited without answering the request after shutdown: fine")
		return nil
	}
	if err != nil {
		return failf("request after shutdown: %v", err)
	}
	if err := expectCode(m, protocol.CodeShuttingDown, ""); err != nil {
		return failf("request after shutdown: %v", err)
	}
	return nil
}

func checkEOFExit(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	s.closeStdin()
	st, ok := s.waitExit(c.ctx, exitBound)
	if !ok {
		return failf("still running %v after its stdin was closed: EOF means exit", exitBound)
	}
	if st.ExitCode() != 0 {
		return failf("exited with %v on stdin EOF, want status 0", st)
	}
	return nil
}
