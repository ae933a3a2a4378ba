// Package build runs the builds of a template: for each build it starts the
// builder's plugin process, prepares every component before anything runs,
// runs the builder, runs the provisioners (each in its own process) when the
// builder calls the provisioning hook, relaying their communicator calls to
// the builder, and then feeds the artifact through the post-processor
// sequences. It knows nothing of template syntax: the caller hands it
// resolved components with rendered configurations.
package build

import (
	"encoding/json"
	"github.com/packer-stdio/packer/internal/suggest"

	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// Component is one plugin component to run.
type Component struct {
	// Type is protocol.TypeBuilder, TypeProvisioner or TypePostProcessor.
	Type string
	// Name is the name the template used, for messages.
	Name string
	// Args is the command line that starts the plugin process.
	Args []string
	// Path, when set, is the file to execute instead of Args[0], which the
	// plugin still gets as its name: "/proc/self/fd/N" of a binary whose
	// checksum was verified (see discovery.Open).
	Path string
	// Component is the component's name inside the plugin binary.
	Component string
	// Config is the rendered configuration.
	Config map[string]any
	// Locate, if not nil, says where in the template the configuration
	// key at a JSON Pointer is written, as "file:line:col" (or "" when it
	// cannot tell), so that a rejected configuration points at the
	// template. The front end that read the template provides it.
	Locate func(pointer string) string
}

// Provisioner is a provisioner of one build, with its template options.
type Provisioner struct {
	Component
	PauseBefore time.Duration
	Timeout     time.Duration
	MaxRetries  int
	// Render, if not nil, renders the configuration again once the builder
	// has shared its generated data (the build template function). When the
	// result differs from Config, the provisioner is prepared again.
	Render func(buildData map[string]any) (map[string]any, error)
}

// PostProcessor is a post-processor of one sequence.
type PostProcessor struct {
	Component
	// KeepInputArtifact is the template's keep_input_artifact, nil if unset.
	KeepInputArtifact *bool
	// Render, if not nil, renders the configuration again with the data
	// the builder shared (see Provisioner.Render) before the
	// post-processor runs; a builder that never ran the provisioning hook
	// shared only Packer's defaults.
	Render func(buildData map[string]any) (map[string]any, error)
}

// Build is one build: a builder and what runs after it.
type Build struct {
	Name         string
	Builder      Component
	Provisioners []*Provisioner
	// ErrorCleanup runs when a provisioner fails, unless OnError is "abort".
	ErrorCleanup   *Provisioner
	PostProcessors [][]*PostProcessor
}

// UI is what the runner needs of a build's console.
type UI interface {
	host.UI
	Close()
}

// Options configure a [Runner].
type Options struct {
	// UI returns the console of a build.
	UI func(build string) UI
	// Log receives packer's own log lines and every plugin's stderr lines,
	// prefixed with the plugin's binary name. Nil discards.
	Log io.Writer
	// Tracer, if not nil, records the messages of every plugin.
	Tracer *protocol.Tracer
	// Redactor, if not nil, masks every plugin's stderr before the host
	// cuts it into pieces or keeps its tail for errors.
	Redactor host.Redactor
	// Env is the environment of plugin processes.
	Env []string
	// Parallel is how many builds run at once; 0 means all.
	Parallel int
	// PackerKeys are the packer_* configuration keys common to all
	// components; the runner adds packer_build_name and packer_builder_type.
	PackerKeys map[string]any
	// OnError is the -on-error value: cleanup, abort, ask or
	// run-cleanup-provisioner.
	OnError string
	// Debug (-debug) pauses before each provisioner until Enter is
	// pressed, as Packer does; builders pause between their own steps.
	Debug bool
	// HostInfo is sent in every handshake.
	HostInfo protocol.Peer
	// AskCapable says whether ui/ask can be answered.
	AskCapable bool
	// PrepareTimeout bounds each component/prepare; zero means
	// host.DefaultPrepareTimeout.
	PrepareTimeout time.Duration
}

// Result is what one build produced.
type Result struct {
	Name      string
	Artifacts []*protocol.Artifact
	Err       error
	// Duration is how long the build ran.
	Duration time.Duration
}

// Runner runs builds. Kill stops every plugin process at once.
type Runner struct {
	o       Options
	logMu   sync.Mutex
	mu      sync.Mutex
	plugins map[*host.Plugin]struct{}
	killed  bool
}

// NewRunner returns a Runner.
func NewRunner(o Options) *Runner {
	if o.Log == nil {
		o.Log = io.Discard
	}
	return &Runner{o: o, plugins: map[*host.Plugin]struct{}{}}
}

// Logf writes a line to the log.
func (r *Runner) Logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.o.Log, time.Now().Format("2006/01/02 15:04:05 ")+format+"\n", args...)
}

// Run runs builds, at most Options.Parallel at once, and returns their
// results in the order given. Cancelling ctx cancels every running build
// through the protocol and lets their cleanup run.
func (r *Runner) Run(ctx context.Context, builds []*Build) []Result {
	results := make([]Result, len(builds))
	limit := r.o.Parallel
	if limit <= 0 {
		limit = len(builds)
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, b := range builds {
		// Slots are taken here, in order, so that with a limit the builds
		// start in the template's order.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			results[i] = Result{Name: b.Name, Err: fmt.Errorf("build %q not started: %w", b.Name, context.Cause(ctx))}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			results[i] = r.runBuild(ctx, b)
			results[i].Duration = time.Since(start)
		}()
	}
	wg.Wait()
	return results
}

// Kill kills every plugin process at once (a second interrupt).
func (r *Runner) Kill() {
	r.mu.Lock()
	r.killed = true
	ps := slices.Collect(maps.Keys(r.plugins))
	r.mu.Unlock()
	for _, p := range ps {
		p.Kill()
	}
}

// stderrLog adapts the log for one plugin's forwarded stderr lines.
type stderrLog struct{ r *Runner }

func (l stderrLog) Write(b []byte) (int, error) {
	l.r.logMu.Lock()
	defer l.r.logMu.Unlock()
	if _, err := io.WriteString(l.r.o.Log, time.Now().Format("2006/01/02 15:04:05 ")); err != nil {
		return 0, err
	}
	return l.r.o.Log.Write(b)
}

// start launches the plugin process of c.
func (r *Runner) start(ctx context.Context, c Component, ui host.UI, hook host.Hook) (*host.Plugin, error) {
	r.mu.Lock()
	killed := r.killed
	r.mu.Unlock()
	if killed {
		return nil, errors.New("packer is stopping")
	}
	if len(c.Args) == 0 {
		return nil, fmt.Errorf("%s %q: no command to start", c.Type, c.Name)
	}
	name := filepath.Base(c.Args[0])
	if len(c.Args) > 2 && c.Args[1] == "plugin" {
		name = c.Args[2] // a builtin: packer plugin packer-builder-file
	}
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	if c.Path != "" {
		cmd.Path = c.Path
	}
	cmd.Env = r.o.Env
	r.Logf("starting %s plugin %s: %q", c.Type, name, c.Args)
	p, err := host.Start(ctx, cmd, host.Options{
		Name:         name,
		Stderr:       stderrLog{r},
		UI:           ui,
		Hook:         hook,
		Tracer:       r.o.Tracer,
		Redactor:     r.o.Redactor,
		HostInfo:     r.o.HostInfo,
		Capabilities: protocol.HostCapabilities{Ask: r.o.AskCapable, Progress: true},

		PrepareTimeout: r.o.PrepareTimeout,
	})
	if err != nil {
		r.Logf("plugin %s did not start: %v", name, err)
		return nil, err
	}
	info := p.Info()
	var comps []string
	for _, c := range info.Components {
		comps = append(comps, c.Type+" "+c.Name)
	}
	r.Logf("plugin %s: handshake done: %s %s, protocol version %d, components: %s",
		name, info.Plugin.Name, info.Plugin.Version, info.ProtocolVersion, strings.Join(comps, ", "))
	r.mu.Lock()
	r.plugins[p] = struct{}{}
	killed = r.killed
	r.mu.Unlock()
	if killed {
		p.Kill()
	}
	return p, nil
}

func (r *Runner) release(p *host.Plugin) error {
	if p == nil {
		return nil
	}
	err := p.Close()
	if err != nil {
		r.Logf("closing plugin: %v", err)
	} else {
		r.Logf("plugin %s exited after shutdown", p.Info().Plugin.Name)
	}
	r.mu.Lock()
	delete(r.plugins, p)
	r.mu.Unlock()
	return err
}

// packerKeys returns the packer_* keys for a component of build b.
func (r *Runner) packerKeys(b *Build) map[string]any {
	m := maps.Clone(r.o.PackerKeys)
	if m == nil {
		m = map[string]any{}
	}
	m["packer_build_name"] = b.Name
	m["packer_builder_type"] = b.Builder.Name
	m["packer_on_error"] = r.o.OnError
	return m
}

// prepared is a started and prepared component.
type prepared struct {
	c      Component
	plugin *host.Plugin
	inst   *host.Instance
}

func (r *Runner) prepare(ctx context.Context, b *Build, c Component, ui UI, hook host.Hook) (*prepared, error) {
	p, err := r.start(ctx, c, ui, hook)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", c.Type, c.Name, err)
	}
	c.Component = ServedName(p.Components(), c)
	inst, warnings, err := p.Prepare(ctx, c.Type, c.Component, c.Config, r.packerKeys(b))
	for _, w := range warnings {
		ui.Say(fmt.Sprintf("Warning (%s %s): %s", c.Type, c.Name, w))
	}
	if err != nil {
		keys := SchemaKeys(p.Components(), c.Type, c.Component)
		r.release(p) //nolint:errcheck // the prepare error is the one to report
		return nil, PrepareError(c, keys, err)
	}
	return &prepared{c: c, plugin: p, inst: inst}, nil
}

// ServedName returns the name to ask a plugin for when preparing c, given
// the components the plugin serves: c.Component when it serves that, else
// c.Name (the name the template used) when it serves that, else
// c.Component, so that the plugin's error lists what it serves.
//
// Discovery cannot know what a packer-plugin-NAME binary registers: it
// maps the template name "NAME-COMPONENT" to COMPONENT and "NAME" to
// "default", while some plugins register the full template names; the
// handshake's component list settles it.
func ServedName(served []protocol.Component, c Component) string {
	has := func(name string) bool {
		return slices.ContainsFunc(served, func(s protocol.Component) bool { return s.Type == c.Type && s.Name == name })
	}
	if !has(c.Component) && c.Name != c.Component && has(c.Name) {
		return c.Name
	}
	return c.Component
}

// PrepareError describes an error from preparing c. When the plugin
// rejected the configuration, the result is a *ConfigError with a line per
// problem, each pointing at the template where c.Locate can tell:
//
//	template.json:7:5: builder "file": /taget: unknown key (did you mean "target"?)
//
// keys are the configuration keys the component accepts (its schema's
// properties, see [SchemaKeys]): a key at fault that is not one of them
// gets the nearest one as a suggestion.
//
// Errors with the same message that point at the same place share a line
// that lists their paths (unless one has a suggestion): a broken key rule is one error at each key it
// concerns (SPEC §6.1), and the keys a template lacks all point at the
// component.
//
//	template.json:3:5: builder "file": /content, /source: one of source or content is required
func PrepareError(c Component, keys []string, err error) error {
	errs := host.ConfigErrors(err)
	if len(errs) == 0 {
		return fmt.Errorf("%s %q: %w", c.Type, c.Name, err)
	}
	type line struct {
		at, message, suggest string
		paths                []string
	}
	var lines []*line
	for _, e := range errs {
		l := &line{message: e.Message, suggest: suggestKey(e.Path, keys)}
		if c.Locate != nil {
			l.at = c.Locate(e.Path)
		}
		i := slices.IndexFunc(lines, func(o *line) bool {
			return o.at == l.at && o.message == l.message && o.suggest == "" && l.suggest == ""
		})
		if i < 0 {
			lines = append(lines, l)
			i = len(lines) - 1
		}
		if e.Path != "" {
			lines[i].paths = append(lines[i].paths, e.Path)
		}
	}
	text := make([]string, len(lines))
	for i, l := range lines {
		s := fmt.Sprintf("%s %q: ", c.Type, c.Name)
		if l.at != "" {
			s = l.at + ": " + s
		}
		if len(l.paths) > 0 {
			s += strings.Join(l.paths, ", ") + ": "
		}
		s += l.message
		if l.suggest != "" {
			s += fmt.Sprintf(" (did you mean %q?)", l.suggest)
		}
		text[i] = s
	}
	return &ConfigError{msg: strings.Join(text, "\n"), err: err}
}

// suggestKey returns the accepted key nearest to the top-level key at
// pointer, when that key is not accepted itself.
func suggestKey(pointer string, keys []string) string {
	key, _, _ := strings.Cut(strings.TrimPrefix(pointer, "/"), "/")
	if key == "" || pointer == "" || slices.Contains(keys, key) {
		return ""
	}
	s, ok := suggest.Closest(key, keys)
	if !ok {
		return ""
	}
	return s
}

// SchemaKeys returns the top-level configuration keys a plugin's
// component accepts: the properties of its configuration schema, less the
// packer_* keys packer itself sends.
func SchemaKeys(served []protocol.Component, typ, name string) []string {
	for _, c := range served {
		if c.Type != typ || c.Name != name {
			continue
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if json.Unmarshal(c.ConfigSchema, &schema) != nil {
			return nil
		}
		var keys []string
		for k := range schema.Properties {
			if !strings.HasPrefix(k, "packer_") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		return keys
	}
	return nil
}

// ConfigError is a component's configuration rejected in prepare.
type ConfigError struct {
	msg string
	err error
}

func (e *ConfigError) Error() string { return e.msg }
func (e *ConfigError) Unwrap() error { return e.err }

// runBuild runs one build from start to finish.
func (r *Runner) runBuild(ctx context.Context, b *Build) (res Result) {
	res.Name = b.Name
	defer func() {
		if res.Err != nil {
			// The whole chain, through every layer, for a bug report;
			// people see its Cause.
			r.Logf("build %q failed: %v", b.Name, res.Err)
		}
	}()
	ui := r.o.UI(b.Name)
	defer ui.Close()
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	keep := func(p *prepared) {
		cleanup = append(cleanup, func() {
			// A plugin that broke the protocol after its last answer (a
			// duplicate answer, say) fails a build that otherwise passed:
			// its answers are not to be trusted (issue #11 item 15).
			if err := r.release(p.plugin); errors.Is(err, host.ErrProtocolViolation) && res.Err == nil {
				res.Err = fmt.Errorf("build %q: %w", b.Name, err)
			}
		})
	}

	// Prepare everything before anything runs, as Packer does, and report
	// every component's errors at once, as validate does.
	var prepErrs []error
	prep := func(c Component, hook host.Hook) *prepared {
		p, err := r.prepare(ctx, b, c, ui, hook)
		if err != nil {
			prepErrs = append(prepErrs, err)
			return nil
		}
		keep(p)
		return p
	}
	provs := make([]*prepared, len(b.Provisioners))
	for i, pv := range b.Provisioners {
		provs[i] = prep(pv.Component, nil)
	}
	var cleanupProv *prepared
	if b.ErrorCleanup != nil {
		cleanupProv = prep(b.ErrorCleanup.Component, nil)
	}
	pps := make([][]*prepared, len(b.PostProcessors))
	for i, seq := range b.PostProcessors {
		for _, pp := range seq {
			pps[i] = append(pps[i], prep(pp.Component, nil))
		}
	}
	hook := &provisionHook{r: r, b: b, ui: ui, provs: provs, cleanupProv: cleanupProv}
	builder := prep(b.Builder, hook)
	if len(prepErrs) > 0 {
		res.Err = errors.Join(prepErrs...)
		return res
	}

	ui.Say(fmt.Sprintf("Running builder: %s", b.Builder.Name))
	r.Logf("build %q: calling builder/run on %s", b.Name, b.Builder.Name)
	art, err := builder.inst.Run(ctx)
	r.Logf("build %q: builder/run returned: %v", b.Name, errOrOK(err))
	if err != nil {
		if failed := hook.firstFailure(); failed != nil && ctx.Err() == nil {
			// The builder failed because a provisioner did: its error,
			// which crossed the builder's process as text, says less than
			// the provisioner's own.
			r.Logf("build %q: builder failed after a provisioner did: %v", b.Name, err)
			err = failed
		}
		res.Err = fmt.Errorf("build %q: %w", b.Name, err)
		if art != nil { // finished despite a cancel: nothing made is lost
			res.Artifacts = append(res.Artifacts, art)
		}
		return res
	}
	if len(b.Provisioners) > 0 && !hook.provisioned() {
		ui.Error(fmt.Sprintf("Warning: builder %s never ran the provisioning hook, so the %d provisioner(s) of this build did not run", b.Builder.Name, len(b.Provisioners)))
	}
	if art == nil {
		ui.Say("Builder produced no artifact")
		return res
	}
	res.Artifacts, res.Err = r.postProcess(ctx, b, ui, builder, art, pps, hook.sharedData())
	return res
}

// rerender renders p's configuration again with the data the builder
// shared (the build template function) and, when that changes it,
// prepares p's plugin again with the result. It returns the instance to
// use.
func (r *Runner) rerender(ctx context.Context, b *Build, ui UI, p *prepared, render func(map[string]any) (map[string]any, error), data map[string]any) (*host.Instance, error) {
	if render == nil {
		return p.inst, nil
	}
	cfg, err := render(data)
	if err != nil {
		return nil, err
	}
	if reflect.DeepEqual(cfg, p.c.Config) {
		return p.inst, nil
	}
	c := p.c
	c.Config = cfg
	inst, warnings, err := p.plugin.Prepare(ctx, c.Type, c.Component, c.Config, r.packerKeys(b))
	for _, w := range warnings {
		ui.Say(fmt.Sprintf("Warning (%s %s): %s", c.Type, c.Name, w))
	}
	if err != nil {
		return nil, PrepareError(c, SchemaKeys(p.plugin.Components(), c.Type, c.Component), err)
	}
	return inst, nil
}

// Packer's values for the keys of the data a builder shares (the build
// template function) that it does not provide, as Packer's SDK fills them.
var packerDataDefaults = map[string]any{
	"ID":                "ERR_ID_NOT_IMPLEMENTED_BY_BUILDER",
	"PackerHTTPIP":      "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
	"PackerHTTPPort":    "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
	"PackerHTTPAddr":    "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
	"Host":              "",
	"Port":              "",
	"User":              "",
	"Password":          "",
	"ConnType":          "",
	"SSHPublicKey":      "",
	"SSHPrivateKey":     "",
	"SSHPrivateKeyFile": "",
	"SSHAgentAuth":      "",
	"WinRMPassword":     "",
}

// withPackerDefaults returns a copy of data in which every key of Packer's
// shared data that data lacks, or holds null, has Packer's value, and
// PackerRunUUID is the run's.
func withPackerDefaults(data map[string]any, runUUID string) map[string]any {
	out := maps.Clone(data)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range packerDataDefaults {
		if cur, ok := out[k]; !ok || cur == nil {
			out[k] = v
		}
	}
	if cur, ok := out["PackerRunUUID"]; !ok || cur == nil {
		out["PackerRunUUID"] = runUUID
	}
	return out
}

// runUUID is PACKER_RUN_UUID from the plugins' environment.
func (r *Runner) runUUID() string {
	for _, kv := range r.o.Env {
		if v, ok := strings.CutPrefix(kv, "PACKER_RUN_UUID="); ok {
			return v
		}
	}
	return ""
}

// errOrOK is err for a log line, or "ok".
func errOrOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}

// made is an artifact with the plugin process that can destroy it.
type made struct {
	art    *protocol.Artifact
	plugin *host.Plugin
}

// postProcess runs the post-processor sequences with Packer's rules for
// keeping and destroying intermediate artifacts.
func (r *Runner) postProcess(ctx context.Context, b *Build, ui UI, builder *prepared, art *protocol.Artifact, pps [][]*prepared, data map[string]any) ([]*protocol.Artifact, error) {
	original := made{art, builder.plugin}
	keepOriginal := len(pps) == 0
	var out []*protocol.Artifact
	var errs []error
	destroy := func(m made, why string) {
		if m.art.Handle == "" {
			return
		}
		r.Logf("destroying artifact %q of build %q: %s", m.art.ID, b.Name, why)
		if err := m.plugin.DestroyArtifact(context.WithoutCancel(ctx), m.art); err != nil {
			errs = append(errs, fmt.Errorf("destroying artifact %q: %w", m.art.ID, err))
		}
	}
	for si, seq := range pps {
		prior := original
		for i, p := range seq {
			spec := b.PostProcessors[si][i]
			ui.Say(fmt.Sprintf("Running post-processor: %s", spec.Name))
			r.Logf("build %q: calling post-processor/post-process on %s", b.Name, spec.Name)
			inst, err := r.rerender(ctx, b, ui, p, spec.Render, data)
			if err != nil {
				errs = append(errs, fmt.Errorf("post-processor %q: %w", spec.Name, err))
				prior = made{}
				break
			}
			next, ppKeep, force, err := inst.PostProcess(ctx, *prior.art)
			r.Logf("build %q: post-processor/post-process on %s returned: %v", b.Name, spec.Name, errOrOK(err))
			if err != nil {
				errs = append(errs, fmt.Errorf("post-processor %q: %w", spec.Name, err))
				prior = made{}
				break
			}
			if next != nil && samePassedThrough(prior.art, next) {
				// A post-processor that hands its input back (manifest
				// does) made nothing new: nothing to keep or destroy.
				prior.art.State = next.State
				continue
			}
			keep := ppKeep
			if spec.KeepInputArtifact != nil {
				if ppKeep && !*spec.KeepInputArtifact && force {
					r.Logf("post-processor %s forces keep_input_artifact=true; the template's false is ignored", spec.Name)
				} else {
					keep = *spec.KeepInputArtifact
				}
			}
			if i == 0 {
				keepOriginal = keepOriginal || keep
			} else if keep {
				out = append(out, prior.art)
			} else {
				destroy(prior, "not kept by "+spec.Name)
			}
			if next == nil {
				prior = made{}
				break
			}
			prior = made{next, p.plugin}
		}
		switch {
		case prior.art == original.art:
			keepOriginal = true // passed through the whole sequence
		case prior.art != nil:
			out = append(out, prior.art)
		}
	}
	if keepOriginal {
		out = append([]*protocol.Artifact{original.art}, out...)
	} else if len(errs) == 0 {
		destroy(original, "input of post-processors, not kept")
	}
	return out, errors.Join(errs...)
}

// samePassedThrough reports whether b is a returned with no handle: the
// post-processor passed its input artifact through.
func samePassedThrough(a, b *protocol.Artifact) bool {
	return b.Handle == "" && a.BuilderID == b.BuilderID && a.ID == b.ID && a.String == b.String && slices.Equal(a.Files, b.Files)
}

// provisionHook runs a build's provisioners when its builder asks.
type provisionHook struct {
	r           *Runner
	b           *Build
	ui          UI
	provs       []*prepared
	cleanupProv *prepared
	mu          sync.Mutex
	// failed is the first provisioner failure, the cause of a builder's
	// failure that follows it.
	failed error
	// ran is set once the builder runs the provisioning hook, and data is
	// what it shared then.
	ran  bool
	data map[string]any
}

// sharedData returns the data the builder passed to the provisioning hook,
// with Packer's defaults; only the defaults when it never ran the hook.
func (h *provisionHook) sharedData() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.data == nil {
		return withPackerDefaults(nil, h.r.runUUID())
	}
	return h.data
}

// provisioned reports whether the builder ran the provisioning hook.
func (h *provisionHook) provisioned() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ran
}

// firstFailure returns the first provisioner failure, if any.
func (h *provisionHook) firstFailure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

func (h *provisionHook) Run(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
	if name != protocol.HookProvision {
		h.r.Logf("build %q: ignoring hook %q", h.b.Name, name)
		return nil
	}
	data = withPackerDefaults(data, h.r.runUUID())
	h.mu.Lock()
	h.ran, h.data = true, data
	h.mu.Unlock()
	for i, p := range h.provs {
		spec := h.b.Provisioners[i]
		if h.r.o.Debug {
			// As Packer: a question that cannot be answered does not
			// stop the build; cancellation does.
			if _, err := h.ui.Ask(ctx, "Pausing before the next provisioner . Press enter to continue."); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				h.r.Logf("build %q: -debug pause: %v", h.b.Name, err)
			}
		}
		if err := h.provision(ctx, spec, p, comm, data); err != nil {
			h.mu.Lock()
			if h.failed == nil {
				h.failed = err
			}
			h.mu.Unlock()
			if h.cleanupProv != nil && h.r.o.OnError != "abort" {
				h.ui.Say("Provisioning step had errors: running the cleanup provisioner, if present...")
				if cerr := h.provision(context.WithoutCancel(ctx), h.b.ErrorCleanup, h.cleanupProv, comm, data); cerr != nil {
					h.ui.Error(fmt.Sprintf("error-cleanup-provisioner failed: %v", cerr))
				}
			}
			return err
		}
	}
	return nil
}

func (h *provisionHook) provision(ctx context.Context, spec *Provisioner, p *prepared, comm host.Communicator, data map[string]any) error {
	if spec.PauseBefore > 0 {
		h.ui.Say(fmt.Sprintf("Pausing %s before the next provisioner...", spec.PauseBefore))
		select {
		case <-time.After(spec.PauseBefore):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	inst, err := h.r.rerender(ctx, h.b, h.ui, p, spec.Render, data)
	if err != nil {
		return fmt.Errorf("provisioner %q: %w", spec.Name, err)
	}
	h.ui.Say(fmt.Sprintf("Provisioning with %s...", spec.Name))
	for attempt := 0; attempt <= spec.MaxRetries; attempt++ {
		if attempt > 0 {
			h.ui.Say(fmt.Sprintf("Provisioner %s failed, retrying (%d of %d)...", spec.Name, attempt, spec.MaxRetries))
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if spec.Timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		}
		h.r.Logf("build %q: calling provisioner/provision on %s", h.b.Name, spec.Name)
		err = inst.Provision(pctx, comm, data)
		h.r.Logf("build %q: provisioner/provision on %s returned: %v", h.b.Name, spec.Name, errOrOK(err))
		timedOut := spec.Timeout > 0 && errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if timedOut {
			err = &causeError{msg: fmt.Sprintf("provisioner %q timed out after %s", spec.Name, spec.Timeout), err: err}
		}
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("provisioner %q: %w", spec.Name, err)
	}
	return nil
}
