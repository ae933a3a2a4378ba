package main

import (
	"fmt"
	"os"

	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
)

const hcl2UpgradeHelp = `Writes an HCL2 template equivalent to a JSON template: variables,
sources (one per builder, named after the build), one build block with the
provisioners and post-processors, and {{ }} functions turned into HCL2
expressions. Component configurations follow each plugin's schema (nested
objects become blocks), so plugins are looked up as for validate; a
component whose plugin is not found is written with attributes only.

The result goes to TEMPLATE.pkr.hcl unless -output-file says otherwise (-
for standard output). Builds are named TYPE.NAME in HCL2, so outputs that
use the build name ({{.BuildName}}, manifests) name them so.`

func runHCL2Upgrade(e *env, args []string) int {
	fs := newFlagSet(e, "hcl2_upgrade", "TEMPLATE.json", hcl2UpgradeHelp)
	output := fs.String("output-file", "", "where to write the HCL2 template (default TEMPLATE.pkr.hcl; - for stdout)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	path := fs.Arg(0)
	t, err := template.ParseFile(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer hcl2_upgrade: %v\n", err)
		return 1
	}
	var schemas hcl2.Schemas
	if c, err := discover(e); err == nil {
		logw, closeLog, err := openLog(e)
		if err != nil {
			fmt.Fprintf(e.stderr, "packer hcl2_upgrade: %v\n", err)
			return 1
		}
		defer closeLog()
		schemas = &hcl2Components{catalog: c, logw: logw}
	}
	out, err := hcl2.Upgrade(t, schemas)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer hcl2_upgrade: %s: %v\n", path, err)
		return 1
	}
	if *output == "-" {
		e.stdout.Write(out)
		return 0
	}
	if *output == "" {
		*output = path + ".pkr.hcl"
	}
	if err := os.WriteFile(*output, out, 0o644); err != nil {
		fmt.Fprintf(e.stderr, "packer hcl2_upgrade: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "Successfully created %s.\n", *output)
	return 0
}
