// Command packer builds machine images from a JSON template, running every
// builder, provisioner and post-processor as a separate plugin process that
// speaks newline-delimited JSON-RPC 2.0 on its stdin and stdout.
//
// Run "packer help" for the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Version is packer's version. Release builds may set it with -ldflags.
var Version = "0.1.0-dev"

// env is what a command may use of its process: testable without globals.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

type command struct {
	synopsis string
	run      func(e *env, args []string) int
	internal bool
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"build":        {synopsis: "build image(s) from a template", run: runBuild},
		"validate":     {synopsis: "check that a template is valid", run: runValidate},
		"inspect":      {synopsis: "see the components of a template", run: runInspect},
		"version":      {synopsis: "print the packer version", run: runVersion},
		"plugins":      {synopsis: "list the plugins packer finds", run: runPlugins},
		"describe":     {synopsis: "print a component's configuration schema", run: runDescribe},
		"fmt":          {synopsis: "rewrite HCL2 templates in the canonical format", run: runFmt},
		"hcl2_upgrade": {synopsis: "write an HCL2 template equivalent to a JSON one", run: runHCL2Upgrade},
		"console":      {synopsis: "evaluate expressions against a template's variables", run: runConsole},
		"init":         {synopsis: "check a template's required plugins and install them from files", run: runInit},
		"plugin":       {synopsis: "run a builtin plugin (used by packer itself)", run: runPlugin, internal: true},
	}
}

func main() {
	os.Exit(packerMain())
}

// packerMain is main without the exit, for testscript.
func packerMain() int {
	return run(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 1
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return 0
	case "-v", "-version", "--version":
		return runVersion(e, nil)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "packer: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return 1
	}
	return cmd.run(e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: packer [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.internal {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "    %-10s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintf(w, "\nRun \"packer <command> -help\" for a command's flags.\n")
}

func runVersion(e *env, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "packer version: takes no arguments, got %q\n", strings.Join(args, " "))
		return 1
	}
	fmt.Fprintf(e.stdout, "Packer v%s\n", Version)
	return 0
}
