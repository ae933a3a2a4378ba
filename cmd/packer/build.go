package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

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
func templateFlags(fs *flag.FlagSet) *varFlags {
	v := &varFlags{vars: map[string]string{}}
	fs.Var(varFlag{v}, "var", "set a template variable: -var 'name=value' (repeatable; later wins)")
	fs.Var(varFileFlag{v}, "var-file", "JSON file of template variables (repeatable; later wins)")
	return v
}

func newFlagSet(e *env, name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("packer "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packer %s [options] %s\n\n%s\n\nOptions:\n\n", name, args, help)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns false (and the exit code) when the
// command must stop: -help (0) or a bad flag (1).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 1, false
	}
	return 0, true
}

// loadTemplate reads the template named by the one argument ("-" is stdin)
// and resolves its variables.
func loadTemplate(e *env, fs *flag.FlagSet, vars *varFlags) (*template.Template, *template.Context, error) {
	if fs.NArg() != 1 {
		fs.Usage()
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
	ctx := template.NewContext(t, Version, time.Now())
	uv, err := ctx.ResolveVariables(t, vars.vars, vars.files, e.getenv)
	if err != nil {
		return t, nil, err
	}
	ctx.UserVars = uv
	return t, ctx, nil
}

const buildHelp = `Runs the builds in the template: each builder, provisioner and post-processor
runs as its own plugin process. Ctrl-C cancels every build and lets cleanup
run; a second Ctrl-C kills the plugins at once.

Environment: PACKER_LOG=1 writes the log (packer's and every plugin's stderr)
to stderr, PACKER_LOG_PATH=FILE to a file instead; PACKER_RPC_TRACE=FILE
records every protocol message.`

func runBuild(e *env, args []string) int {
	fs := newFlagSet(e, "build", "TEMPLATE", buildHelp)
	var only, except listFlag
	fs.Var(&only, "only", "build only these builds (comma-separated names)")
	fs.Var(&except, "except", "skip these builds and post-processors (comma-separated names)")
	parallel := fs.Int("parallel-builds", 0, "how many builds run at once; 0 means all")
	onError := fs.String("on-error", "cleanup", "what a failed build does: cleanup, abort, ask or run-cleanup-provisioner")
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
	t, tctx, err := loadTemplate(e, fs, vars)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	masker := masker(t, tctx)

	logw, closeLog, err := openLog(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	defer closeLog()
	logw = masker.Writer(logw)
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
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	if err := catalog.checkRequired(t); err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	builds, err := planBuilds(t, tctx, catalog, only, except)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer build: %v\n", err)
		return 1
	}
	if len(builds) == 0 {
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
		Color:           *color && stdoutTTY && !*machine,
		Timestamps:      *timestamps,
		MachineReadable: *machine,
		Progress:        isTerminal(e.stderr) && !*machine,
		Mask:            masker.Mask,
	})
	keys := packerKeys(t, tctx, *debug, *force)
	runner := build.NewRunner(build.Options{
		UI:         func(name string) build.UI { return console.Build(name) },
		Log:        logw,
		Tracer:     tracer,
		Env:        append(os.Environ(), "PACKER_RUN_UUID="+newUUID(), "PACKER_BUILD_TIMESTAMP="+strconv.FormatInt(tctx.Timestamp.Unix(), 10)),
		Parallel:   *parallel,
		PackerKeys: keys,
		OnError:    *onError,
		HostInfo:   protocol.Peer{Name: "packer", Version: Version},
		AskCapable: askIn != nil,
	})

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stopSignals := handleSignals(console.Build(""), cancel, runner)
	defer stopSignals()

	start := time.Now()
	results := runner.Run(ctx, builds)
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
	go func() {
		count := 0
		for {
			select {
			case sig := <-ch:
				count++
				if count == 1 {
					u.Error(fmt.Sprintf("%s received: cancelling the builds and cleaning up (again to stop at once)...", sigName(sig)))
					cancel(fmt.Errorf("interrupted by %s", sigName(sig)))
				} else {
					u.Error("Stopping at once: killing every plugin process.")
					runner.Kill()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

func sigName(s os.Signal) string {
	if s == os.Interrupt {
		return "Interrupt"
	}
	return "Terminate"
}

// report prints Packer's end-of-run summary and returns the exit code.
func report(console *ui.Console, results []build.Result, took time.Duration, interrupted bool) int {
	u := console.Build("")
	failed := false
	for _, r := range results {
		if r.Err != nil {
			failed = true
			bu := console.Build(r.Name)
			bu.Error(fmt.Sprintf("Build '%s' errored after %s: %v", r.Name, r.Duration.Round(time.Millisecond), r.Err))
			bu.Machine("error", r.Err.Error())
		} else {
			console.Build(r.Name).Say(fmt.Sprintf("Build '%s' finished after %s.", r.Name, r.Duration.Round(time.Millisecond)))
		}
	}
	u.Say(fmt.Sprintf("Wait completed after %s", took.Round(time.Millisecond)))
	if failed {
		u.Error("Some builds didn't complete successfully and had errors:")
		for _, r := range results {
			if r.Err != nil {
				u.Error(fmt.Sprintf("--> %s: %v", r.Name, r.Err))
			}
		}
	}
	var lines []string
	for _, r := range results {
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
			lines = append(lines, fmt.Sprintf("--> %s: %s", r.Name, a.String))
		}
	}
	if len(lines) > 0 {
		u.Say("Builds finished. The artifacts of successful builds are:")
		for _, l := range lines {
			u.Message(l)
		}
	} else {
		u.Say("Builds finished but no artifacts were created.")
	}
	if failed || interrupted {
		return 1
	}
	return 0
}

// planBuilds turns the template into the runner's builds: components
// resolved to plugin commands, configurations rendered for each build.
func planBuilds(t *template.Template, tctx *template.Context, catalog *catalog, only, except []string) ([]*build.Build, error) {
	for _, n := range append(slices.Clone(only), except...) {
		if t.Builder(n) == nil && !hasPostProcessor(t, n) {
			return nil, fmt.Errorf("no build or post-processor named %q in %s", n, t.Path)
		}
	}
	var builds []*build.Build
	var errs []error
	for _, tb := range t.Builders {
		if (len(only) > 0 && !slices.Contains(only, tb.Name)) || slices.Contains(except, tb.Name) {
			continue
		}
		bctx := tctx.ForBuild(tb)
		b := &build.Build{Name: tb.Name}
		c, err := resolve(catalog, protocol.TypeBuilder, tb.Type, tb.Key, tb.Config, bctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.Builder = c
		for _, tp := range t.Provisioners {
			if tp.Skip(tb.Name) {
				continue
			}
			p, err := provisioner(catalog, tp, tb.Name, bctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			b.Provisioners = append(b.Provisioners, p)
		}
		if tp := t.ErrorCleanupFor(tb.Name); tp != nil {
			p, err := provisioner(catalog, tp, tb.Name, bctx)
			if err != nil {
				errs = append(errs, err)
			} else {
				b.ErrorCleanup = p
			}
		}
		for _, seq := range t.PostProcessors {
			var out []*build.PostProcessor
			for _, tp := range seq {
				if tp.Skip(tb.Name) || slices.Contains(except, tp.Name) {
					continue
				}
				c, err := resolve(catalog, protocol.TypePostProcessor, tp.Type, tp.Key, tp.Config, bctx)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				c.Name = tp.Name
				out = append(out, &build.PostProcessor{Component: c, KeepInputArtifact: tp.KeepInputArtifact})
			}
			if len(out) > 0 {
				b.PostProcessors = append(b.PostProcessors, out)
			}
		}
		builds = append(builds, b)
	}
	return builds, errors.Join(errs...)
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

func provisioner(catalog *catalog, tp *template.Provisioner, buildName string, bctx *template.Context) (*build.Provisioner, error) {
	raw := tp.ConfigFor(buildName)
	c, err := resolve(catalog, protocol.TypeProvisioner, tp.Type, tp.Key, raw, bctx)
	if err != nil {
		return nil, err
	}
	return &build.Provisioner{
		Component:   c,
		PauseBefore: tp.PauseBefore,
		Timeout:     tp.Timeout,
		MaxRetries:  tp.MaxRetries,
		Render: func(data map[string]any) (map[string]any, error) {
			cc := *bctx
			cc.Build = data
			if cc.Build == nil {
				cc.Build = map[string]any{}
			}
			return cc.RenderConfigAt(tp.Key, raw)
		},
	}, nil
}

// resolve finds the plugin of a component and renders its configuration.
func resolve(catalog *catalog, typ, name, key string, raw map[string]any, bctx *template.Context) (build.Component, error) {
	cmd, component, err := catalog.command(typ, name)
	if err != nil {
		return build.Component{}, fmt.Errorf("%s: %w", key, err)
	}
	cfg, err := bctx.RenderConfigAt(key, raw)
	if err != nil {
		return build.Component{}, err
	}
	return build.Component{Type: typ, Name: name, Args: cmd, Component: component, Config: cfg}, nil
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
