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

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/suggest"
	"github.com/packer-stdio/packer/internal/ui"
)

// Version is packer's version. Release builds may set it with -ldflags.
var Version = "0.1.0-dev"

// env is what a command may use of its process: testable without globals.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// args is the command line after "packer", for the log's header.
	args []string
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

// packerMain is main without the exit, for testscript. Except as a builtin
// plugin ("packer plugin"), packer adopts what its plugins leave behind and
// kills it before it exits (see host.AdoptOrphans).
func packerMain() int {
	if len(os.Args) < 2 || os.Args[1] != "plugin" {
		if err := host.AdoptOrphans(); err == nil {
			defer host.KillOrphans()
		}
	}
	return run(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, args: os.Args[1:]}, os.Args[1:])
}

// exitUnknownCommand is the status of an unknown or missing command, as
// Packer's own CLI returns.
const exitUnknownCommand = 127

func run(e *env, args []string) int {
	args = moveMachineReadable(args)
	if len(args) == 0 {
		usage(e.stderr)
		return exitUnknownCommand
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return 0
	case "help":
		return runHelp(e, args[1:])
	case "-v", "-version", "--version":
		return runVersion(e, nil)
	}
	cmd, ok := lookupCommand(e, args[0])
	if !ok {
		return exitUnknownCommand
	}
	return cmd.run(e, args[1:])
}

// moveMachineReadable lets -machine-readable stand anywhere, as Packer's
// global flag does: one given before the command is moved after it, where
// the commands that print machine-readable output read it.
func moveMachineReadable(args []string) []string {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			break // the command
		}
		if a == "-machine-readable" || a == "--machine-readable" {
			rest := without(args, i)
			if len(rest) == 0 {
				return rest
			}
			return append([]string{rest[0], a}, rest[1:]...)
		}
	}
	return args
}

// lookupCommand returns the command called name, or says on stderr that
// there is none (with the nearest name, if one is near).
func lookupCommand(e *env, name string) (command, bool) {
	if cmd, ok := commands[name]; ok {
		return cmd, true
	}
	msg := fmt.Sprintf("packer: unknown command %q", name)
	if s, ok := suggest.Closest(name, publicCommands()); ok {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	fmt.Fprintf(e.stderr, "%s\nRun 'packer -h' for the list of commands.\n", msg)
	return command{}, false
}

// runHelp is "packer help [COMMAND]": the list of commands, or a command's
// usage, on stdout.
func runHelp(e *env, args []string) int {
	switch len(args) {
	case 0:
		usage(e.stdout)
		return 0
	case 1:
		cmd, ok := lookupCommand(e, args[0])
		if !ok {
			return exitUnknownCommand
		}
		return cmd.run(e, []string{"-h"})
	}
	fmt.Fprintf(e.stderr, "packer help: expected at most one command name, got %d arguments\n", len(args))
	return 1
}

func publicCommands() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.internal {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: packer [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n")
	for _, n := range publicCommands() {
		fmt.Fprintf(w, "    %-10s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintf(w, "\nRun \"packer help COMMAND\" or \"packer COMMAND -h\" for a command's usage.\n")
}

func runVersion(e *env, args []string) int {
	fs := newFlagSet(e, "version", "", "Prints the version of packer.")
	machine := fs.Bool("machine-readable", false, "print machine-readable output")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.fail("takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if *machine {
		// Packer's lines: version, version-prerelease, version-commit.
		core, pre, _ := strings.Cut(Version, "-")
		u := ui.New(ui.Options{Stdout: e.stdout, Stderr: e.stderr, MachineReadable: true}).Build("")
		u.Machine("version", core)
		u.Machine("version-prelease", pre)
		u.Machine("version-commit", "")
		u.Plain("Packer v"+Version, false)
		return 0
	}
	fmt.Fprintf(e.stdout, "Packer v%s\n", Version)
	return 0
}
