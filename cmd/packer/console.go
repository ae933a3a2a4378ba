package main

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
)

const consoleHelp = `Evaluates expressions against a template's variables, one per line:
HCL2 expressions (var.x, local.y, data.T.N.attr, upper("a"), path.root...)
for an HCL2 template or with no template, {{ }} strings for a JSON
template. On a terminal it prompts; otherwise it reads standard input to
its end. "variables" lists the variables, "exit" stops. Sensitive values
print as <sensitive>.`

func runConsole(e *env, args []string) int {
	fs := newFlagSet(e, "console", "[TEMPLATE]", consoleHelp)
	vars := templateFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 1
	}
	var eval func(string) (string, error)
	var listVars func() []string
	masker := (*template.Masker)(nil)
	switch {
	case fs.NArg() == 0 || hcl2.IsHCL2(fs.Arg(0)):
		var res *hcl2.Result
		if fs.NArg() == 0 {
			res = hcl2.Empty(hcl2.Options{PackerVersion: Version, Now: time.Now(), Environ: environ(e)})
		} else {
			var err error
			if res, err = loadHCL2(e, fs.Arg(0), vars, true); err != nil {
				fmt.Fprintf(e.stderr, "packer console: %v\n", err)
				return 1
			}
			masker = template.NewMasker(res.Template.MaskedValues(res.Context.UserVars))
		}
		eval, listVars = res.Eval, res.Variables
	default:
		t, tctx, err := loadTemplate(e, fs, vars)
		if err != nil {
			fmt.Fprintf(e.stderr, "packer console: %v\n", err)
			return 1
		}
		masker = template.NewMasker(t.MaskedValues(tctx.UserVars))
		eval = tctx.Render
		listVars = func() []string {
			var out []string
			for _, v := range t.Variables {
				out = append(out, fmt.Sprintf("%s = %s", v.Name, tctx.UserVars[v.Name]))
			}
			return out
		}
	}
	interactive := isTerminal(e.stdin) && isTerminal(e.stdout)
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(nil, 1<<20)
	failed := false
	for {
		if interactive {
			fmt.Fprint(e.stdout, "> ")
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "exit":
			return 0
		case "variables":
			for _, v := range listVars() {
				fmt.Fprintln(e.stdout, masker.Mask(v))
			}
			continue
		}
		out, err := eval(line)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s\n", masker.Mask(err.Error()))
			failed = true
			continue
		}
		fmt.Fprintln(e.stdout, masker.Mask(out))
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(e.stderr, "packer console: reading input: %v\n", err)
		return 1
	}
	if failed && !interactive {
		return 1
	}
	return 0
}
