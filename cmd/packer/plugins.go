package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/packer-stdio/packer/internal/builtin"
	"github.com/packer-stdio/packer/internal/discovery"
)

// catalog is every component packer can run: discovered plugin binaries
// over the builtins, which run as "packer plugin packer-TYPE-NAME".
type catalog struct {
	*discovery.Catalog
}

func discover(e *env) (*catalog, error) {
	o, err := discovery.DefaultOptions(e.getenv)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the packer executable: %w", err)
	}
	for _, c := range builtin.Components() {
		o.Builtins = append(o.Builtins, discovery.Builtin{Type: c.Type, Name: c.Name, Args: []string{exe, "plugin", c.Binary}})
	}
	c, err := discovery.Discover(o)
	if err != nil {
		return nil, err
	}
	return &catalog{c}, nil
}

// command returns the command line that starts the plugin serving the
// component typ/name, and the component's name inside it.
func (c *catalog) command(typ, name string) ([]string, string, error) {
	e, err := c.Lookup(typ, name)
	if err != nil {
		return nil, "", err
	}
	return e.Args, e.Component, nil
}

const pluginsHelp = `Lists every plugin component packer finds, with its type, where it comes
from and what it shadows. Search order, later winning: builtins, the packer
executable's directory, ~/.packer.d/plugins, the working directory,
PACKER_PLUGIN_PATH (earlier directories win), then the config file
(PACKER_CONFIG or ~/.packerconfig).`

func runPlugins(e *env, args []string) int {
	fs := newFlagSet(e, "plugins", "[installed]", pluginsHelp)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != "installed") {
		fmt.Fprintf(e.stderr, "packer plugins: unknown subcommand %q; the only one is \"installed\"\n", strings.Join(fs.Args(), " "))
		return 1
	}
	c, err := discover(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tNAME\tSOURCE\tPATH")
	for _, en := range c.All() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", en.Type, en.Name, en.Source, describePath(en))
		for _, s := range en.Shadowed {
			fmt.Fprintf(tw, "\t\t  shadows %s\t%s\n", s.Source, describePath(s))
		}
	}
	tw.Flush()
	for _, w := range c.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	return 0
}

func describePath(en *discovery.Entry) string {
	if en.Source == discovery.SourceBuiltin {
		return filepath.Base(en.Args[0]) + " " + strings.Join(en.Args[1:], " ")
	}
	return en.Path
}
