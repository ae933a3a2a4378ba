package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/packer-stdio/packer/internal/builtin"
	"github.com/packer-stdio/packer/internal/discovery"
)

// catalog is every component packer can run: discovered plugin binaries
// over the builtins, which run as "packer plugin packer-TYPE-NAME".
type catalog struct {
	*discovery.Catalog
	cachePath string
	exe       string
	// attach maps TYPE/NAME to the pipes of a plugin the author started
	// (PACKER_PLUGIN_ATTACH).
	attach map[string]string

	// stderr receives, once per binary, the line saying what a
	// discovered binary shadows and the warnings about who may write it.
	stderr io.Writer

	mu sync.Mutex
	// warned holds the binaries whose warnings were printed.
	warned map[string]bool
}

// opened holds, by binary path, the plugin binaries opened (and
// checksum-verified) in this process. They stay open until packer exits,
// so every start executes the file that was verified: a package variable,
// because an *os.File that becomes unreachable is closed by the garbage
// collector, and a catalog is unreachable once the builds are planned
// while the runner still starts plugins through /proc/self/fd/N.
var opened = struct {
	sync.Mutex
	m map[string]*discovery.Executable
}{m: map[string]*discovery.Executable{}}

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
	attach, err := parseAttach(e.getenv(envAttach))
	if err != nil {
		return nil, err
	}
	return &catalog{Catalog: c, cachePath: discovery.CachePath(o), exe: exe, attach: attach,
		stderr: e.stderr, warned: map[string]bool{}}, nil
}

// command returns the command line that starts the plugin serving the
// component typ/name, the file to execute for it (see [catalog.open]) and
// the component's name inside it.
func (c *catalog) command(typ, name string) (args []string, path, component string, err error) {
	if path, ok := c.attach[typ+"/"+name]; ok {
		// The author runs this plugin: "packer plugin attach=PATH" relays
		// to it. Its component name is what discovery would ask for, when
		// discovery knows the name.
		// When discovery does not know it, NAME-COMPONENT is guessed, and
		// the host falls back to NAME when the plugin does not serve that.
		component := discovery.DefaultComponent
		if e, err := c.Lookup(typ, name); err == nil {
			component = e.Component
		} else if _, after, ok := strings.Cut(name, "-"); ok && after != "" {
			component = after
		}
		return []string{c.exe, "plugin", attachArg + path}, c.exe, component, nil
	}
	e, err := c.Lookup(typ, name)
	if err != nil {
		return nil, "", "", err
	}
	if e.Source == discovery.SourceBuiltin {
		return e.Args, e.Args[0], e.Component, nil
	}
	c.warn(e)
	x, err := c.open(e)
	if err != nil {
		return nil, "", "", err
	}
	return e.Args, x.Path, e.Component, nil
}

// warn prints, the first time e's binary is used, which entries it
// shadows (one line) and who besides its owner may replace it.
func (c *catalog) warn(e *discovery.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := e.Type + " " + e.Name + " " + e.Path
	if c.warned[k] || c.stderr == nil {
		return
	}
	c.warned[k] = true
	if len(e.Shadowed) > 0 {
		var what []string
		for _, s := range e.Shadowed {
			if s.Source == discovery.SourceBuiltin {
				what = append(what, "the builtin "+s.Name)
			} else {
				what = append(what, fmt.Sprintf("%s (%s)", s.Path, s.Source))
			}
		}
		fmt.Fprintf(c.stderr, "packer: %s %q is %s (%s), which shadows %s\n", e.Type, e.Name, e.Path, e.Source, strings.Join(what, " and "))
	}
	if c.warned[e.Path] {
		return
	}
	c.warned[e.Path] = true
	for _, w := range discovery.Writable(e) {
		fmt.Fprintf(c.stderr, "warning: %s\n", w)
	}
}

// open opens (and for a versioned install verifies) e's binary once per
// run; see discovery.Open.
func (c *catalog) open(e *discovery.Entry) (*discovery.Executable, error) {
	opened.Lock()
	defer opened.Unlock()
	if x, ok := opened.m[e.Path]; ok {
		return x, nil
	}
	x, err := discovery.Open(e)
	if err != nil {
		return nil, err
	}
	opened.m[e.Path] = x
	return x, nil
}

const pluginsHelp = `Lists every plugin component packer finds, with its type, where it comes
from and what it shadows. Search order, later winning: builtins, the packer
executable's directory, ~/.packer.d/plugins, the working directory,
PACKER_PLUGIN_PATH (earlier directories win), then the config file
(PACKER_CONFIG or ~/.packerconfig).

Subcommands:
  packer plugins install --path BINARY [NAME]   install a plugin binary
  packer plugins installed                      list installed plugins and versions
  packer plugins remove NAME [VERSION]          remove an installed plugin`

func runPlugins(e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "install":
			return runPluginsInstall(e, args[1:])
		case "installed":
			return runPluginsInstalled(e, args[1:])
		case "remove":
			return runPluginsRemove(e, args[1:])
		}
	}
	fs := newFlagSet(e, "plugins", "[install|installed|remove]", pluginsHelp)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "packer plugins: unknown subcommand %q; they are install, installed and remove\n", strings.Join(fs.Args(), " "))
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
