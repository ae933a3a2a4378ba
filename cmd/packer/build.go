package main

import (
	"github.com/hako/durafmt"

	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/build"
	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
	"github.com/packer-stdio/packer/internal/ui"
	"github.com/packer-stdio/packer/protocol"
	"golang.org/x/term"
)

// listFlag is a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// varFlags collects -var and -var-file in order.
type varFlags struct {
	vars  map[string]string
	files []string
}

type varFlag struct{ v *varFlags }

func (f varFlag) String() string { return "" }
func (f varFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("-var %q: want NAME=VALUE", s)
	}
	f.v.vars[k] = v
	return nil
}

type varFileFlag struct{ v *varFlags }

func (f varFileFlag) String() string { return "" }
func (f varFileFlag) Set(s string) error {
	f.v.files = append(f.v.files, s)
	return nil
}

// templateFlags are the flags every template command takes.
func templateFlags(fs *flagSet) *varFlags {
	v := &varFlags{vars: map[string]string{}}
	fs.Var(varFlag{v}, "var", "set the template variable `NAME=VALUE` (repeatable; the last one wins)")
	fs.Var(varFileFlag{v}, "var-file", "read template variables from the JSON `FILE` (repeatable; a later file wins)")
	return v
}

// loadTemplate reads the template named by the one argument ("-" is stdin)
// and resolves its variables.
func loadTemplate(e *env, fs *flagSet, vars *varFlags) (*template.Template, *template.Context, error) {
	if fs.NArg() != 1 {
		return nil, nil, fmt.Errorf("expected one template path (or - for stdin), got %d arguments", fs.NArg())
	}
	path := fs.Arg(0)
	if path != "-" && hcl2.IsHCL2(path) {
		res, err := loadHCL2(e, path, vars, true)
		if err != nil {
			return nil, nil, err
		}
		if len(res.Template.Builders) == 0 {
			return nil, nil, fmt.Errorf("%s: no build block uses a source: nothing to build", path)
		}
		return res.Template, res.Context, nil
	}
	var t *template.Template
	var err error
	if path == "-" {
		t, err = template.Parse(e.stdin, "-")
	} else {
		t, err = template.ParseFile(path)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := t.CheckVersion(Version); err != nil {
		return nil, nil, err
	}
	if _, warning := template.UndeclaredVars(t, vars.vars); warning != "" {
		fmt.Fprintf(e.stderr, "Warning: %s\n", warning)
	}
	ctx := template.NewContext(t, Version, time.Now())
	uv, err := ctx.ResolveVariables(t, vars.vars, vars.files, e.getenv)
	if err != nil {
		return t, nil, err
	}
	ctx.UserVars = uv
	if err := t.RenderBuilderNames(ctx); err != nil {
		return t, nil, err
	}
	return t, ctx, nil
}

const buildHelp = `Runs the builds in the template: each builder, provisioner and post-processor
runs as its own plugin process. Ctrl-C cancels every build and lets cleanup
run; a second Ctrl-C kills the plugins at once.

Environment: PACKER_LOG=1 writes the log (packer's and every plugin's stderr)
to stderr, PACKER_LOG_PATH=FILE to a file instead; PACKER_RPC_TRACE=FILE
records every protocol message; PACKER_NO_COLOR or NO_COLOR (any value)
turns colours off; PACKER_PREPARE_TIMEOUT=DURATION (default 1m) bounds how
long a plugin may take to check its configuration.`

func runBuild(e *env, args []string) int {
	fs := newFlagSet(e, "build", "TEMPLATE", buildHelp)
	var only, except listFlag
	fs.Var(&only, "only", "build only the builds named in `NAMES` (comma-separated)")
	fs.Var(&except, "except", "skip the builds and post-processors named in `NAMES` (comma-separated)")
	parallel := fs.Int("parallel-builds", 0, "run at most `N` builds at once; 0 means all")
	onError := fs.String("on-error", "cleanup", "what a failed build does (`ACTION`: cleanup, abort, ask or run-cleanup-provisioner)")
	force := fs.Bool("force", false, "ask components to replace existing artifacts")
	debug := fs.Bool("debug", false, "debug mode: components pause between steps, breakpoints stop")
	color := fs.Bool("color", true, "colour the output on a terminal")
	timestamps := fs.Bool("timestamp-ui", false, "prefix every line with the time")
	machine := fs.Bool("machine-readable", false, "print machine-readable output")
	vars := templateFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch *onError {
	case "cleanup", "abort", "ask", "run-cleanup-provisioner":
	default:
		fmt.Fprintf(e.stderr, "packer build: -on-error=%s: want cleanup, abort, ask or run-cleanup-provisioner\n", *onError)
		return 1
	}
	if len(only) > 0 && len(except) > 0 {
		fmt.Fprintln(e.stderr, "packer build: -only and -except cannot be used together")
		return 1
	}
	if *debug {
		*parallel = 1 // as Packer: -debug disables parallel builds
	}
	if *parallel < 0 {
		fmt.Fprintln(e.stderr, "packer build: -parallel-builds must be 0 or more")
		return 1
	}
	if fs.NArg() != 1 {
		return fs.fail("expected one template path (or - for stdin), got %d arguments", fs.NArg())
	}
	t, tctx, err := loadTemplate(e, fs, vars)
	// Every error from here on may quote a secret: mask it.
	masker := secretsMasker(t, tctx, vars)
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "packer build: %s\n", masker.Mask(err.Error()))
		return 1
	}
	if err != nil {
		return fail(err)
	}
	warnShortSecrets(e, t, tctx)

	logw, closeLog, err := openLog(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	defer closeLog()
	logw = masker.Writer(logw) // the header too: -var can carry secrets
	logHeader(logw, e.args)
	var traceMask func(string) string // nil records the bytes exactly as sent
	if len(t.SensitiveVariables)+len(t.SensitiveValues) > 0 {
		traceMask = masker.Mask
	}
	tracer, closeTrace, err := openTrace(e, traceMask)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	defer closeTrace()

	catalog, err := discover(e)
	if err != nil {
		return fail(err)
	}
	if err := catalog.checkRequired(t); err != nil {
		return fail(err)
	}
	builds, failed, err := planBuilds(t, tctx, catalog, only, except)
	if err != nil {
		return fail(err)
	}
	if len(builds) == 0 && len(failed) == 0 {
		fmt.Fprintln(e.stderr, "packer build: no builds to run (check -only and -except)")
		return 1
	}

	stdoutTTY := isTerminal(e.stdout)
	// Questions (ui/ask, e.g. the breakpoint provisioner) are answered from
	// standard input, as Packer does, unless it carried the template or
	// the output is for machines.
	askIn := e.stdin
	if fs.Arg(0) == "-" || *machine {
		askIn = nil
	}
	console := ui.New(ui.Options{
		Stdout: e.stdout, Stderr: e.stderr, Stdin: askIn,
		Color:           *color && stdoutTTY && !*machine && e.getenv("PACKER_NO_COLOR") == "" && e.getenv("NO_COLOR") == "",
		Timestamps:      *timestamps,
		MachineReadable: *machine,
		Progress:        isTerminal(e.stderr) && !*machine,
		StdoutTerminal:  stdoutTTY,
		Mask:            masker.Mask,
	})
	defer console.Close()
	keys := packerKeys(t, tctx, *debug, *force)
	timeout, err := prepareTimeout(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	// The plugins' temporary files (shell-local's scripts among them) go
	// to a directory of this run, removed when it ends, even when a second
	// Ctrl-C killed the plugins before they could clean up. What the
	// plugins left running is killed first.
	runTmp, err := os.MkdirTemp("", "packer-run-")
	if err != nil {
		return fail(err)
	}
	defer func() {
		host.KillOrphans()
		os.RemoveAll(runTmp)
	}()
	runner := build.NewRunner(build.Options{
		UI:       func(name string) build.UI { return console.Build(name) },
		Log:      logw,
		Tracer:   tracer,
		Redactor: redactor(masker),
		Env: append(os.Environ(), "PACKER_RUN_UUID="+newUUID(), "PACKER_BUILD_TIMESTAMP="+strconv.FormatInt(tctx.Timestamp.Unix(), 10),
			"TMPDIR="+runTmp, "TMP="+runTmp, "TEMP="+runTmp),
		Parallel:   *parallel,
		PackerKeys: keys,
		OnError:    *onError,
		Debug:      *debug,
		HostInfo:   protocol.Peer{Name: "packer", Version: Version},
		AskCapable: askIn != nil,

		PrepareTimeout: timeout,
	})

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stopSignals := handleSignals(console.Build(""), cancel, runner)
	defer stopSignals()

	// Each build keeps one colour, dealt in the order builds run.
	var names []string
	for _, b := range builds {
		names = append(names, b.Name)
	}
	for _, f := range failed {
		names = append(names, f.Name)
	}
	console.Assign(names...)
	// A build that could not be planned fails on its own (report says
	// why); the others run.
	start := time.Now()
	results := runner.Run(ctx, builds)
	results = append(results, failed...)
	slices.SortStableFunc(results, func(a, b build.Result) int { return strings.Compare(a.Name, b.Name) })
	return report(console, results, time.Since(start), ctx.Err() != nil)
}

// packerKeys are the packer_* configuration keys every component of a run
// gets; the runner adds the build's own.
func packerKeys(t *template.Template, tctx *template.Context, debug, force bool) map[string]any {
	return map[string]any{
		"packer_debug":               debug,
		"packer_force":               force,
		"packer_user_variables":      tctx.UserVars,
		"packer_sensitive_variables": nonNil(t.SensitiveVariables),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// handleSignals cancels the builds on the first SIGINT or SIGTERM and kills
// every plugin on the second.
func handleSignals(u *ui.BuildUI, cancel context.CancelCauseFunc, runner *build.Runner) func() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var saying sync.WaitGroup
	say := func(msg string) {
		saying.Add(1)
		go func() {
			defer saying.Done()
			u.Error(msg)
		}()
	}
	go func() {
		count := 0
		for {
			select {
			case sig := <-ch:
				count++
				// Act first, then say so on another goroutine: a
				// terminal that does not take output (flooded,
				// paused) must not stop Ctrl-C from working.
				if count == 1 {
					cancel(fmt.Errorf("interrupted by %s", sigName(sig)))
					say(fmt.Sprintf("%s received: cancelling the builds and cleaning up (again to stop at once)...", sigName(sig)))
				} else {
					runner.Kill()
					say("Stopping at once: killing every plugin process.")
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		// Let the messages out, unless the terminal does not take them.
		said := make(chan struct{})
		go func() { saying.Wait(); close(said) }()
		select {
		case <-said:
		case <-time.After(time.Second):
		}
	}
}

func sigName(s os.Signal) string {
	if s == os.Interrupt {
		return "Interrupt"
	}
	return "Terminate"
}

// report prints Packer's end-of-run summary and returns the exit code: a
// line per build with its duration and, for a failed one, the cause; then
// the failed builds and the artifacts of the successful ones, each block
// after a blank line, with "--> NAME:" at the start of its lines. Each
// build keeps its colour. The artifacts of a failed build (say, the
// builder's when a post-processor failed) are not listed, as in Packer; in
// machine-readable output error-count, error and artifact lines follow
// Packer's.
func report(console *ui.Console, results []build.Result, took time.Duration, interrupted bool) int {
	u := console.Build("")
	var failed []build.Result
	for _, r := range results {
		bu := console.Build(r.Name)
		if r.Err != nil {
			failed = append(failed, r)
			bu.Plain(fmt.Sprintf("Build '%s' errored after %s: %s", r.Name, humanDuration(r.Duration), build.Cause(r.Err)), true)
		} else {
			bu.Plain(fmt.Sprintf("Build '%s' finished after %s.", r.Name, humanDuration(r.Duration)), false)
		}
	}
	u.Plain(fmt.Sprintf("\n==> Wait completed after %s", humanDuration(took)), false)
	if len(failed) > 0 {
		u.Machine("error-count", strconv.Itoa(len(failed)))
		u.Plain("\n==> Some builds didn't complete successfully and had errors:", true)
		for _, r := range failed {
			bu := console.Build(r.Name)
			bu.Machine("error", build.Cause(r.Err))
			bu.Plain(fmt.Sprintf("--> %s: %s", r.Name, build.Cause(r.Err)), true)
		}
	}
	var artifacts int
	for _, r := range results {
		if r.Err == nil {
			artifacts += len(r.Artifacts)
		}
	}
	if artifacts > 0 {
		u.Plain("\n==> Builds finished. The artifacts of successful builds are:", false)
	} else {
		u.Plain("\n==> Builds finished but no artifacts were created.", false)
	}
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		bu := console.Build(r.Name)
		bu.Machine("artifact-count", strconv.Itoa(len(r.Artifacts)))
		for i, a := range r.Artifacts {
			n := strconv.Itoa(i)
			bu.Machine("artifact", n, "builder-id", a.BuilderID)
			bu.Machine("artifact", n, "id", a.ID)
			bu.Machine("artifact", n, "string", a.String)
			bu.Machine("artifact", n, "files-count", strconv.Itoa(len(a.Files)))
			for j, f := range a.Files {
				bu.Machine("artifact", n, "file", strconv.Itoa(j), f)
			}
			bu.Machine("artifact", n, "end")
			// One line per artifact: a newline in its description
			// must not add a fake artifact to the list.
			bu.Plain(fmt.Sprintf("--> %s: %s", r.Name, ui.Neutralize(a.String)), false)
		}
	}
	if len(failed) > 0 || interrupted {
		return 1
	}
	return 0
}

// humanDuration writes d as Packer does: its two largest units, such as
// "1 minute 56 seconds" or "53 milliseconds".
func humanDuration(d time.Duration) string {
	if d < time.Millisecond {
		return "0 seconds"
	}
	return durafmt.Parse(d.Round(time.Millisecond)).LimitFirstN(2).String()
}

// planBuilds turns the template into the runner's builds: components
// resolved to plugin commands, configurations rendered for each build. The
// builds come sorted by name, the order Packer runs them in. A build whose
// components cannot be resolved (an unknown type, a configuration that does
// not render) is returned in failed, sorted too, with its errors, so that
// the other builds can still run; err reports what concerns the whole run
// (an -only or -except name that matches nothing).
func planBuilds(t *template.Template, tctx *template.Context, catalog *catalog, only, except []string) (builds []*build.Build, failed []build.Result, err error) {
	for _, n := range append(slices.Clone(only), except...) {
		if t.Builder(n) == nil && !hasPostProcessor(t, n) {
			return nil, nil, fmt.Errorf("no build or post-processor named %q in %s", n, t.Path)
		}
	}
	for _, tb := range t.Builders {
		if (len(only) > 0 && !slices.Contains(only, tb.Name)) || slices.Contains(except, tb.Name) {
			continue
		}
		b, errs := planBuild(t, tb, tctx, catalog, except)
		if len(errs) > 0 {
			failed = append(failed, build.Result{Name: tb.Name, Err: errors.Join(errs...)})
			continue
		}
		builds = append(builds, b)
	}
	slices.SortStableFunc(builds, func(a, b *build.Build) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(failed, func(a, b build.Result) int { return strings.Compare(a.Name, b.Name) })
	return builds, failed, nil
}

// planBuild plans the build of one builder, collecting every error.
func planBuild(t *template.Template, tb *template.Builder, tctx *template.Context, catalog *catalog, except []string) (*build.Build, []error) {
	var errs []error
	bctx := tctx.ForBuild(tb)
	b := &build.Build{Name: tb.Name}
	c, err := resolve(t, catalog, protocol.TypeBuilder, tb.Type, tb.Key, tb.Place, tb.Config, bctx)
	if err != nil {
		errs = append(errs, err)
	}
	b.Builder = c
	for _, tp := range t.Provisioners {
		if tp.Skip(tb.Name) {
			continue
		}
		p, err := provisioner(t, catalog, tp, tb.Name, bctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.Provisioners = append(b.Provisioners, p)
	}
	if tp := t.ErrorCleanupFor(tb.Name); tp != nil {
		p, err := provisioner(t, catalog, tp, tb.Name, bctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			b.ErrorCleanup = p
		}
	}
	for _, seq := range t.PostProcessors {
		var out []*build.PostProcessor
		for _, tp := range seq {
			if tp.Skip(tb.Name) {
				continue
			}
			// As in Packer, -except NAME of a post-processor drops it and
			// the rest of its sequence, which would otherwise get an
			// artifact it was never meant to see.
			if slices.Contains(except, tp.Name) {
				break
			}
			c, err := resolve(t, catalog, protocol.TypePostProcessor, tp.Type, tp.Key, tp.Place, tp.Config, bctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.Name = tp.Name
			out = append(out, &build.PostProcessor{Component: c, KeepInputArtifact: tp.KeepInputArtifact,
				Render: renderWithBuild(bctx, tp.Key, tp.Config)})
		}
		if len(out) > 0 {
			b.PostProcessors = append(b.PostProcessors, out)
		}
	}
	return b, errs
}

func hasPostProcessor(t *template.Template, name string) bool {
	for _, seq := range t.PostProcessors {
		for _, pp := range seq {
			if pp.Name == name {
				return true
			}
		}
	}
	return false
}

func provisioner(t *template.Template, catalog *catalog, tp *template.Provisioner, buildName string, bctx *template.Context) (*build.Provisioner, error) {
	raw := tp.ConfigFor(buildName)
	c, err := resolve(t, catalog, protocol.TypeProvisioner, tp.Type, tp.Key, tp.Place, raw, bctx)
	if err != nil {
		return nil, err
	}
	return &build.Provisioner{
		Component:   c,
		PauseBefore: tp.PauseBefore,
		Timeout:     tp.Timeout,
		MaxRetries:  tp.MaxRetries,
		Render:      renderWithBuild(bctx, tp.Key, raw),
	}, nil
}

// renderWithBuild returns the function that renders the configuration raw
// of the component at key again once the builder has shared its data, for
// the build template function.
func renderWithBuild(bctx *template.Context, key string, raw map[string]any) func(map[string]any) (map[string]any, error) {
	return func(data map[string]any) (map[string]any, error) {
		cc := *bctx
		cc.Build = data
		if cc.Build == nil {
			cc.Build = map[string]any{}
		}
		return cc.RenderConfigAt(key, raw)
	}
}

// resolve finds the plugin of a component and renders its configuration.
// Errors at a configuration key point at the template: through t.Locate
// for a JSON template, through place for an HCL2 one.
func resolve(t *template.Template, catalog *catalog, typ, name, key string, place *template.Place, raw map[string]any, bctx *template.Context) (build.Component, error) {
	cmd, path, component, err := catalog.command(typ, name)
	if err != nil {
		return build.Component{}, fmt.Errorf("%s: %w", key, err)
	}
	cfg, err := bctx.RenderConfigAt(key, raw)
	if err != nil {
		return build.Component{}, err
	}
	locate := func(pointer string) string {
		if pos := t.Locate(key, pointer); pos.IsValid() {
			return fmt.Sprintf("%s:%s", t.Path, pos)
		}
		return place.Where(pointer)
	}
	return build.Component{Type: typ, Name: name, Args: cmd, Path: path, Component: component, Config: cfg, Locate: locate}, nil
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newUUID returns a random version 4 UUID for PACKER_RUN_UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
