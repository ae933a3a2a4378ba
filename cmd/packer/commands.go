package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/build"
	"github.com/packer-stdio/packer/internal/builtin"
	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
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
	fs.Var(&only, "only", "validate only these builds")
	fs.Var(&except, "except", "skip these builds and post-processors")
	vars := templateFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *syntaxOnly {
		if fs.NArg() != 1 {
			fs.Usage()
			return 1
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
	t, tctx, err := loadTemplate(e, fs, vars)
	if err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	catalog, err := discover(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	if err := catalog.checkRequired(t); err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	builds, err := planBuilds(t, tctx, catalog, only, except)
	if err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	// Plugins' stderr, their warnings and their errors can echo sensitive
	// values from the configuration: everything goes through the masker.
	masker := masker(t, tctx)
	logw, closeLog, err := openLog(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "Template validation failed: %v\n", err)
		return 1
	}
	defer closeLog()
	mlog := masker.Writer(logw)
	defer mlog.Close()
	stderr := masker.Writer(e.stderr)
	defer stderr.Close()
	keys := packerKeys(t, tctx, false, false)
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
			if err := prepareOnce(c, b, keys, mlog, stderr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "Template validation failed:\n%v\n", err)
		return 1
	}
	fmt.Fprintln(e.stdout, "The configuration is valid.")
	return 0
}

// prepareOnce starts a component's plugin, prepares it as build b would and
// shuts it down. Warnings go to stderr.
func prepareOnce(c build.Component, b *build.Build, keys map[string]any, logw, stderr io.Writer) error {
	p, err := startPlugin(c.Args, logw)
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
		return fmt.Errorf("build %q: %w", b.Name, build.PrepareError(c, err))
	}
	return nil
}

// startPlugin starts a plugin for a short-lived question (validate,
// describe); its stderr goes to logw.
func startPlugin(args []string, logw io.Writer) (*host.Plugin, error) {
	cmd := exec.Command(args[0], args[1:]...)
	name := ""
	if len(args) > 2 && args[1] == "plugin" {
		name = args[2]
	}
	return host.Start(context.Background(), cmd, host.Options{Name: name, Stderr: logw, HostInfo: protocol.Peer{Name: "packer", Version: Version}})
}

const inspectHelp = `Shows a template's variables, builds, provisioners and post-processors.`

func runInspect(e *env, args []string) int {
	fs := newFlagSet(e, "inspect", "TEMPLATE", inspectHelp)
	vars := templateFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	var t *template.Template
	var err error
	if fs.Arg(0) == "-" {
		t, err = template.Parse(e.stdin, "-")
	} else if hcl2.IsHCL2(fs.Arg(0)) {
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
	w := e.stdout
	if t.Description != "" {
		fmt.Fprintf(w, "Description:\n\n%s\n\n", t.Description)
	}
	var optional, required []*template.Variable
	for _, v := range t.Variables {
		if v.Required {
			required = append(required, v)
		} else {
			optional = append(optional, v)
		}
	}
	sensitive := map[string]bool{}
	for _, s := range t.SensitiveVariables {
		sensitive[s] = true
	}
	if len(optional)+len(required) == 0 {
		fmt.Fprintf(w, "Variables:\n\n  <No variables>\n\n")
	} else {
		if len(required) > 0 {
			fmt.Fprintf(w, "Required variables:\n\n")
			for _, v := range required {
				fmt.Fprintf(w, "  %s\n", v.Name)
			}
			fmt.Fprintln(w)
		}
		if len(optional) > 0 {
			fmt.Fprintf(w, "Optional variables and their defaults:\n\n")
			tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
			for _, v := range optional {
				def := v.Default
				if sensitive[v.Name] {
					def = "<sensitive>"
				}
				fmt.Fprintf(tw, "  %s\t= %q\n", v.Name, def)
			}
			tw.Flush()
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "Builders:\n\n")
	if len(t.Builders) == 0 {
		fmt.Fprintf(w, "  <No builders>\n")
	}
	for _, b := range t.Builders {
		if b.Name == b.Type {
			fmt.Fprintf(w, "  %s\n", b.Name)
		} else {
			fmt.Fprintf(w, "  %s (%s)\n", b.Name, b.Type)
		}
	}
	fmt.Fprintf(w, "\nProvisioners:\n\n")
	if len(t.Provisioners) == 0 {
		fmt.Fprintf(w, "  <No provisioners>\n")
	}
	for _, p := range t.Provisioners {
		fmt.Fprintf(w, "  %s%s\n", p.Type, scope(p.Only, p.Except))
	}
	if p := t.ErrorCleanupProvisioner; p != nil {
		fmt.Fprintf(w, "\nError cleanup provisioner:\n\n  %s\n", p.Type)
	}
	fmt.Fprintf(w, "\nPost-processors:\n\n")
	if len(t.PostProcessors) == 0 {
		fmt.Fprintf(w, "  <No post-processors>\n")
	}
	for i, seq := range t.PostProcessors {
		names := make([]string, len(seq))
		for j, pp := range seq {
			names[j] = pp.Type
			if pp.Name != pp.Type {
				names[j] += " (" + pp.Name + ")"
			}
			names[j] += scope(pp.Only, pp.Except)
		}
		fmt.Fprintf(w, "  %d: %s\n", i, strings.Join(names, " -> "))
	}
	return 0
}

func scope(only, except []string) string {
	switch {
	case len(only) > 0:
		return " [only: " + strings.Join(only, ", ") + "]"
	case len(except) > 0:
		return " [except: " + strings.Join(except, ", ") + "]"
	}
	return ""
}

const describeHelp = `Prints the JSON Schema of a component's configuration, as its plugin
advertises it. TYPE is builder, provisioner or post-processor.`

func runDescribe(e *env, args []string) int {
	fs := newFlagSet(e, "describe", "TYPE NAME", describeHelp)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 1
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
	args2, component, err := catalog.command(typ, name)
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
	p, err := startPlugin(args2, logw)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer describe: %v\n", err)
		return 1
	}
	defer p.Close()
	component = build.ServedName(p.Components(), build.Component{Type: typ, Name: name, Component: component})
	for _, c := range p.Components() {
		if c.Type == typ && c.Name == component {
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
