// Command plugin-conformance checks that a packer plugin binary speaks the
// protocol of SPEC.md, and says which rule it breaks, with the bytes that
// were exchanged.
//
//	plugin-conformance [flags] ./packer-builder-foo [args...]
//	plugin-conformance [flags] -- packer plugin packer-builder-file
//	plugin-conformance host [flags] -- packer build {template}
//
// The host form plays scripted plugins and checks a host instead (see
// [conformance.RunHost] for the placeholders).
//
// Exit status: 0 when every MUST check passes, 1 when one fails (or a check
// listed in -expect-fail passes), 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"

	"github.com/packer-stdio/packer/conformance"
)

func main() {
	conformance.MaybeServeScriptedPlugin()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// configFlags collects repeated -config NAME=FILE flags.
type configFlags map[string]json.RawMessage

func (c configFlags) String() string { return "" }

func (c configFlags) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return errors.New("want NAME=FILE")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("%s: not a JSON object: %v", file, err)
	}
	c[name] = json.RawMessage(b)
	return nil
}

const usageText = `usage: plugin-conformance [flags] PLUGIN [ARGS...]
       plugin-conformance [flags] -- COMMAND [ARGS...]
       plugin-conformance host [flags] -- HOST-COMMAND [ARGS...]

Runs the plugin protocol conformance checks against a plugin binary, each
against a fresh process, and reports which SPEC.md rules it breaks.

With "host", the runner plays scripted plugins and checks a host: each check
runs HOST-COMMAND once in a fresh directory that holds the scripted plugin
(packer-builder-conformance, packer-provisioner-conformance and
packer-post-processor-conformance) and template.json, a build of builder
"conformance" with provisioner "conformance". These placeholders in
HOST-COMMAND's arguments are replaced: {plugin} (the scripted plugin
binary), {dir} (the directory), {template} (the template) and {config} (the
builder's configuration, JSON text). For example:

    plugin-conformance host -- packer build template.json
    plugin-conformance host -- python3 pyhost.py --builder conformance --config {config} {plugin}

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	hostMode := len(args) > 0 && args[0] == "host"
	if hostMode {
		args = args[1:]
	}
	fs := flag.NewFlagSet("plugin-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "write the report as JSON on stdout")
	junit := fs.String("junit", "", "also write a JUnit XML report to `FILE`")
	runRE := fs.String("run", "", "run only the checks whose id matches `REGEXP`")
	defTimeout := conformance.DefaultTimeout
	if hostMode {
		defTimeout = conformance.DefaultHostTimeout
	}
	timeout := fs.Duration("timeout", defTimeout, "time limit of each check")
	expect := fs.String("expect-fail", "", "`FILE` listing check ids expected to fail, one per line (# comments)")
	verbose := fs.Bool("v", false, "print transcripts of passing checks too")
	list := fs.Bool("list", false, "list the checks and exit")
	configs := configFlags{}
	fs.Var(configs, "config", "configuration for a component, `NAME=FILE` (a JSON object; NAME or TYPE/NAME); repeatable")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *list {
		cat := conformance.Catalogue()
		if hostMode {
			cat = conformance.HostCatalogue()
		}
		for _, c := range cat {
			fmt.Fprintf(stdout, "%-34s %-6s %-5s %s\n", c.ID, c.Level, c.Section, c.Title)
		}
		return 0
	}
	if fs.NArg() == 0 && hostMode {
		fmt.Fprintln(stderr, "plugin-conformance: no host command given")
		fs.Usage()
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "plugin-conformance: no plugin command given")
		fs.Usage()
		return 2
	}
	cfg := conformance.Config{Command: fs.Args(), Configs: configs, Timeout: *timeout}
	if *runRE != "" {
		re, err := regexp.Compile(*runRE)
		if err != nil {
			fmt.Fprintf(stderr, "plugin-conformance: -run: %v\n", err)
			return 2
		}
		cfg.Run = re
	}
	if *expect != "" {
		f, err := os.Open(*expect)
		if err != nil {
			fmt.Fprintf(stderr, "plugin-conformance: -expect-fail: %v\n", err)
			return 2
		}
		cfg.ExpectFail, err = conformance.ReadExpectFile(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "plugin-conformance: -expect-fail: %v\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var rep *conformance.Report
	var err error
	if hostMode {
		rep, err = conformance.RunHost(ctx, conformance.HostConfig{Command: cfg.Command, Run: cfg.Run, Timeout: cfg.Timeout, ExpectFail: cfg.ExpectFail})
	} else {
		rep, err = conformance.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "plugin-conformance: %v\n", err)
		return 2
	}
	if *jsonOut {
		err = rep.WriteJSON(stdout, *verbose)
	} else {
		err = rep.WriteTable(stdout, *verbose)
	}
	if err != nil {
		fmt.Fprintf(stderr, "plugin-conformance: %v\n", err)
		return 1
	}
	if *junit != "" {
		f, err := os.Create(*junit)
		if err == nil {
			err = rep.WriteJUnit(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "plugin-conformance: -junit: %v\n", err)
			return 1
		}
	}
	if rep.MustFailed() {
		return 1
	}
	return 0
}
