package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/packer-stdio/packer/internal/suggest"
)

// flagSet is a command's flags: -h prints the full usage on stdout, and a
// mistake prints one line on stderr and how to get the usage.
type flagSet struct {
	*flag.FlagSet
	e                *env
	name, args, help string
}

// newFlagSet returns the flags of "packer NAME"; args names the positional
// arguments for the usage line, help describes the command.
func newFlagSet(e *env, name, args, help string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("packer "+name, flag.ContinueOnError), e: e, name: name, args: args, help: help}
	// The flag package prints errors and usage itself; parseFlags does.
	fs.SetOutput(io.Discard)
	fs.Usage = func() { fs.usageHint() }
	return fs
}

// printUsage writes the full usage of the command to w.
func (fs *flagSet) printUsage(w io.Writer) {
	opts := ""
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		opts = " [options]"
	}
	line := "packer " + fs.name + opts
	if fs.args != "" {
		line += " " + fs.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", line, fs.help)
	if hasFlags {
		fmt.Fprintf(w, "\nOptions:\n\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// usageHint tells, on stderr, how to get the usage; it follows an error.
func (fs *flagSet) usageHint() {
	fmt.Fprintf(fs.e.stderr, "Run 'packer %s -h' for usage.\n", fs.name)
}

// fail reports a mistake in the command line: one line, then the hint. It
// returns the exit status, 1.
func (fs *flagSet) fail(format string, args ...any) int {
	fmt.Fprintf(fs.e.stderr, "packer %s: %s\n", fs.name, fmt.Sprintf(format, args...))
	fs.usageHint()
	return 1
}

// parseFlags parses args; it returns false (and the exit code) when the
// command must stop: -h (usage on stdout, 0) or a mistake (one line on
// stderr, 1).
func parseFlags(fs *flagSet, args []string) (int, bool) {
	usage := fs.Usage
	fs.Usage = func() {} // Parse calls it on -h and on errors; handled below
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage(fs.e.stdout)
		return 0, false
	case err != nil:
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag -" + name
			if s, ok := suggest.Closest(name, fs.names()); ok {
				msg += fmt.Sprintf(" (did you mean -%s?)", s)
			}
		}
		return fs.fail("%s", msg), false
	}
	// The flag package stops at the first argument that is not a flag, so
	// in "packer build t.json -force" the -force is taken for a second
	// template. Say what happened instead.
	for i, a := range fs.Args() {
		if i == 0 || !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) != nil {
			return fs.fail("flag %s comes after %q: flags go before the arguments (packer %s %s %s)",
				a, fs.Arg(0), fs.name, a, strings.Join(without(fs.Args(), i), " ")), false
		}
	}
	return 0, true
}

func (fs *flagSet) names() []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

func without(s []string, i int) []string {
	out := make([]string, 0, len(s)-1)
	out = append(out, s[:i]...)
	return append(out, s[i+1:]...)
}
