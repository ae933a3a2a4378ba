package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/build"
	"github.com/packer-stdio/packer/internal/builtin"
	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
	"github.com/packer-stdio/packer/internal/ui"
	"github.com/packer-stdio/packer/protocol"
)

func runPlugin(e *env, args []string) int {
	if len(args) == 1 && strings.HasPrefix(args[0], attachArg) {
		return relayAttached(e, strings.TrimPrefix(args[0], attachArg))
	}
	if len(args) != 1 {
		fmt.Fprintln(e.stderr, "Usage: packer plugin PLUGIN-BINARY-NAME\n\nRuns a builtin component as a plugin process; packer itself starts it, e.g. packer plugin packer-builder-file.")
		return 1
	}
	if err := builtin.Serve(args[0], Version); err != nil {
		fmt.Fprintf(e.stderr, "packer plugin: %v\n", err)
		return 1
	}
	return 0
}

const validateHelp = `Checks that a template is valid: its syntax, its variables, and (unless
-syntax-only) that every component's plugin is found and accepts its
configuration. Exits 0 when valid, 1 otherwise.`

func runValidate(e *env, args []string) int {
	fs := newFlagSet(e, "validate", "TEMPLATE", validateHelp)
	syntaxOnly := fs.Bool("syntax-only", false, "check only the template's syntax")
	var only, except listFlag
	fs.Var(&only, "only", "validate only the builds named in `NAMES` (comma-separated)")
	fs.Var(&except, "except", "skip the builds and post-processors named in `NAMES` (comma-separated)")
	vars := templateFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *syntaxOnly {
		if fs.NArg() != 1 {
			return fs.fail("expected one template path (or - for stdin), got %d arguments", fs.NArg())
		}
		var err error
		if fs.Arg(0) == "-" {
			_, err = template.Parse(e.stdin, "-")
		} else if hcl2.IsHCL2(fs.Arg(0)) {
			_, err = loadHCL2(e, fs.Arg(0), vars, false)
		} else {
			_, err = template.ParseFile(fs.Arg(0))
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
			return 1
		}
		fmt.Fprintln(e.stdout, "Syntax-only check passed. Everything looks okay.")
		return 0
	}
	if fs.NArg() != 1 {
		return fs.fail("expected one template path (or - for stdin), got %d arguments", fs.NArg())
	}
	t, tctx, err := loadTemplate(e, fs, vars)
	// Errors (a template function's among them), plugins' stderr, their
	// warnings and their errors can echo sensitive values from the
	// configuration: everything goes through the masker.
	masker := secretsMasker(t, tctx, vars)
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "Template validation failed: %s\n", masker.Mask(err.Error()))
		return 1
	}
	if err != nil {
		return fail(err)
	}
	warnShortSecrets(e, t, tctx)
	catalog, err := discover(e)
	if err != nil {
		return fail(err)
	}
	if err := catalog.checkRequired(t); err != nil {
		return fail(err)
	}
	builds, failed, err := planBuilds(t, tctx, catalog, only, except)
	if err == nil && len(failed) > 0 {
		var errs []error
		for _, f := range failed {
			errs = append(errs, fmt.Errorf("build %q: %w", f.Name, f.Err))
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		return fail(err)
	}
	logw, closeLog, err := openLog(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	defer closeLog()
	mlog := masker.Writer(logw)
	logHeader(mlog, e.args)
	defer mlog.Close()
	stderr := masker.Writer(e.stderr)
	defer stderr.Close()
	keys := packerKeys(t, tctx, false, false)
	timeout, err := prepareTimeout(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	var errs []error
	for _, b := range builds {
		comps := []build.Component{b.Builder}
		for _, p := range b.Provisioners {
			comps = append(comps, p.Component)
		}
		for _, seq := range b.PostProcessors {
			for _, p := range seq {
				comps = append(comps, p.Component)
			}
		}
		for _, c := range comps {
			if err := prepareOnce(c, b, keys, timeout, mlog, stderr, redactor(masker)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		// A provisioner or post-processor of several builds is rejected
		// once per build, with the same lines: say each once.
		var lines []string
		for _, e := range errs {
			for _, l := range strings.Split(e.Error(), "\n") {
				if !slices.Contains(lines, l) {
					lines = append(lines, l)
				}
			}
		}
		fmt.Fprintf(stderr, "Template validation failed:\n%s\n", strings.Join(lines, "\n"))
		return 1
	}
	fmt.Fprintln(e.stdout, "The configuration is valid.")
	return 0
}

// prepareOnce starts a component's plugin, prepares it as build b would and
// shuts it down. Warnings go to stderr.
func prepareOnce(c build.Component, b *build.Build, keys map[string]any, timeout time.Duration, logw, stderr io.Writer, red host.Redactor) error {
	p, err := startPlugin(c.Args, c.Path, timeout, logw, red)
	if err != nil {
		return fmt.Errorf("%s %q: %w", c.Type, c.Name, err)
	}
	defer p.Close()
	c.Component = build.ServedName(p.Components(), c)
	ckeys := maps.Clone(keys)
	ckeys["packer_build_name"] = b.Name
	ckeys["packer_builder_type"] = b.Builder.Name
	_, warnings, err := p.Prepare(context.Background(), c.Type, c.Component, c.Config, ckeys)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "Warning (%s %s, build %s): %s\n", c.Type, c.Name, b.Name, w)
	}
	if err != nil {
		err = build.PrepareError(c, build.SchemaKeys(p.Components(), c.Type, c.Component), err)
		var ce *build.ConfigError
		if errors.As(err, &ce) {
			return err // its lines point at the template
		}
		return fmt.Errorf("build %q: %w", b.Name, err)
	}
	return nil
}

// startPlugin starts a plugin for a short-lived question (validate,
// describe) by executing path (args[0] when empty) with args; its stderr
// goes to logw, masked by red (when not nil) before it is cut.
// prepareTimeout bounds each component/prepare (zero: the host's default).
func startPlugin(args []string, path string, prepareTimeout time.Duration, logw io.Writer, red host.Redactor) (*host.Plugin, error) {
	cmd := exec.Command(args[0], args[1:]...)
	if path != "" {
		cmd.Path = path
	}
	name := filepath.Base(args[0])
	if len(args) > 2 && args[1] == "plugin" {
		name = args[2]
	}
	return host.Start(context.Background(), cmd, host.Options{Name: name, Stderr: logw, Redactor: red, HostInfo: protocol.Peer{Name: "packer", Version: Version}, PrepareTimeout: prepareTimeout})
}

const inspectHelp = `Shows a template's variables, builds and provisioners, as Packer's inspect
does. It only parses the template: nothing is validated or started.`

func runInspect(e *env, args []string) int {
	fs := newFlagSet(e, "inspect", "TEMPLATE", inspectHelp)
	machine := fs.Bool("machine-readable", false, "print machine-readable output")
	vars := templateFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.fail("expected one template path (or - for stdin), got %d arguments", fs.NArg())
	}
	var t *template.Template
	var err error
	mode := "JSON"
	if fs.Arg(0) == "-" {
		t, err = template.Parse(e.stdin, "-")
	} else if hcl2.IsHCL2(fs.Arg(0)) {
		mode = "HCL2"
		var res *hcl2.Result
		if res, err = loadHCL2(e, fs.Arg(0), vars, false); err == nil {
			t = res.Template
		}
	} else {
		t, err = template.ParseFile(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "packer inspect: %v\n", err)
		return 1
	}
	u := ui.New(ui.Options{Stdout: e.stdout, Stderr: e.stderr, MachineReadable: *machine}).Build("")
	inspect(u, t, mode)
	return 0
}

// inspect writes what Packer's inspect writes for a JSON template, in its
// layout (for an HCL2 template too, whose model is the same; Packer's own
// HCL2 layout differs): variables (required first, then the optional ones with their
// defaults, sensitive ones masked), builders sorted by name with their
// types, provisioners in order; and its template-variable, template-builder
// and template-provisioner machine-readable lines.
func inspect(u *ui.BuildUI, t *template.Template, mode string) {
	say := func(s string) { u.Plain(s, false) }
	say("Packer Inspect: " + mode + " mode")
	if t.Description != "" {
		say("Description:\n")
		say(t.Description + "\n")
	}
	sensitive := map[string]bool{}
	for _, s := range t.SensitiveVariables {
		sensitive[s] = true
	}
	vars := slices.Clone(t.Variables)
	slices.SortFunc(vars, func(a, b *template.Variable) int { return strings.Compare(a.Name, b.Name) })
	def := func(v *template.Variable) string {
		if sensitive[v.Name] {
			return "<sensitive>"
		}
		return v.Default
	}
	if len(vars) == 0 {
		say("Variables:\n")
		say("  <No variables>")
	} else {
		width, required := 0, false
		for _, v := range vars {
			width = max(width, len(v.Name))
			if v.Required {
				if !required {
					say("Required variables:\n")
					required = true
				}
				u.Machine("template-variable", v.Name, def(v), "1")
				say("  " + v.Name)
			}
		}
		if required {
			say("")
		}
		say("Optional variables and their defaults:\n")
		for _, v := range vars {
			if !v.Required {
				u.Machine("template-variable", v.Name, def(v), "0")
				say(fmt.Sprintf("  %-*s = %s", width, v.Name, def(v)))
			}
		}
	}
	say("")
	say("Builders:\n")
	builders := slices.Clone(t.Builders)
	slices.SortFunc(builders, func(a, b *template.Builder) int { return strings.Compare(a.Name, b.Name) })
	if len(builders) == 0 {
		say("  <No builders>")
	}
	width := 0
	for _, b := range builders {
		width = max(width, len(b.Name))
	}
	for _, b := range builders {
		line := fmt.Sprintf("  %-*s", width, b.Name)
		if b.Name != b.Type {
			line += " (" + b.Type + ")"
		}
		u.Machine("template-builder", b.Name, b.Type)
		say(line)
	}
	say("")
	say("Provisioners:\n")
	if len(t.Provisioners) == 0 {
		say("  <No provisioners>")
	}
	for _, p := range t.Provisioners {
		u.Machine("template-provisioner", p.Type)
		say("  " + p.Type)
	}
	say("\nNote: If your build names contain user variables or template\n" +
		"functions such as 'timestamp', these are processed at build time,\n" +
		"and therefore only show in their raw form here.")
}

// describedFrom says where a component comes from, for describe: the
// builtin's name, or the plugin binary's path.
func describedFrom(args []string) string {
	if len(args) > 2 && args[1] == "plugin" {
		return "builtin, " + args[2]
	}
	return args[0]
}

const describeHelp = `Describes a component's configuration, as its plugin advertises it: the
required and optional keys with their types, defaults and descriptions.
TYPE is builder, provisioner or post-processor.`

func runDescribe(e *env, args []string) int {
	fs := newFlagSet(e, "describe", "TYPE NAME", describeHelp)
	asJSON := fs.Bool("json", false, "print the configuration's JSON Schema instead")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return fs.fail("expected a component type and name, such as builder file, got %d arguments", fs.NArg())
	}
	typ, name := fs.Arg(0), fs.Arg(1)
	switch typ {
	case protocol.TypeBuilder, protocol.TypeProvisioner, protocol.TypePostProcessor:
	default:
		fmt.Fprintf(e.stderr, "packer describe: unknown component type %q: want builder, provisioner or post-processor\n", typ)
		return 1
	}
	catalog, err := discover(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer describe: %v\n", err)
		return 1
	}
	args2, path, component, err := catalog.command(typ, name)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer describe: %v\n", err)
		return 1
	}
	logw, closeLog, err := openLog(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer describe: %v\n", err)
		return 1
	}
	defer closeLog()
	p, err := startPlugin(args2, path, 0, logw, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer describe: %v\n", err)
		return 1
	}
	defer p.Close()
	component = build.ServedName(p.Components(), build.Component{Type: typ, Name: name, Component: component})
	for _, c := range p.Components() {
		if c.Type == typ && c.Name == component {
			if !*asJSON {
				if err := writeDescription(e.stdout, typ, name, describedFrom(args2), c.ConfigSchema); err != nil {
					fmt.Fprintf(e.stderr, "packer describe: %s %s: %v\n", typ, name, err)
					return 1
				}
				return 0
			}
			var v any
			if err := json.Unmarshal(c.ConfigSchema, &v); err != nil {
				fmt.Fprintf(e.stderr, "packer describe: %s %s: the plugin's schema is not JSON: %v\n", typ, name, err)
				return 1
			}
			out, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintf(e.stdout, "%s\n", out)
			return 0
		}
	}
	fmt.Fprintf(e.stderr, "packer describe: %s does not serve %s %q\n", args2[0], typ, component)
	return 1
}
