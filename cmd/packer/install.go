package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/discovery"
	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/protocol"
)

const installHelp = `Installs a plugin binary into ~/.packer.d/plugins in the versioned layout
NAME/VERSION/packer-plugin-NAME, with packer-plugin-NAME_SHA256SUM beside it.
packer first runs the binary's handshake to learn its components and version.
NAME defaults to the binary's name without "packer-plugin-" (or
"packer-builder-" and the like); VERSION to the version the plugin reports.
Templates use its components as NAME-COMPONENT.`

func runPluginsInstall(e *env, args []string) int {
	fs := newFlagSet(e, "plugins install", "--path BINARY [NAME]", installHelp)
	path := fs.String("path", "", "the plugin binary to install (required)")
	version := fs.String("version", "", "install under this version instead of the one the plugin reports")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *path == "" {
		return fs.fail("-path is required: the plugin binary to install")
	}
	if fs.NArg() > 1 {
		return fs.fail("expected at most one plugin name, got %d arguments", fs.NArg())
	}
	name := fs.Arg(0)
	if name == "" {
		_, n, ok := discovery.ParseName(filepath.Base(*path), isWindows())
		if !ok {
			fmt.Fprintf(e.stderr, "packer plugins install: cannot tell the plugin's name from %q: name it packer-plugin-NAME or pass NAME\n", filepath.Base(*path))
			return 1
		}
		name = n
	}
	o, err := discovery.DefaultOptions(e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins install: %v\n", err)
		return 1
	}
	dir := discovery.PluginsDir(o)
	if dir == "" {
		fmt.Fprintln(e.stderr, "packer plugins install: no home directory (set HOME)")
		return 1
	}
	abs, err := filepath.Abs(*path)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins install: %v\n", err)
		return 1
	}
	probed, err := probeBinary(&discovery.Entry{Path: abs, Args: []string{abs}})
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins install: %s is not a working plugin: %v\n", *path, err)
		return 1
	}
	v := *version
	if v != "" {
		if err := discovery.ValidVersion(v); err != nil {
			fmt.Fprintf(e.stderr, "packer plugins install: --version: %v\n", err)
			return 1
		}
	} else {
		v = strings.TrimPrefix(probed.Version, "v")
		if err := discovery.ValidVersion(v); err != nil {
			fmt.Fprintf(e.stderr, "packer plugins install: the plugin reports version %q, which is not a semantic version such as 1.2.0: "+
				"set one when you build it (a plugin that calls pluginkit.Serve: "+
				"go build -ldflags \"-X github.com/packer-stdio/packer/pluginkit.Version=1.2.0\") or pass --version 1.2.0\n", probed.Version)
			return 1
		}
	}
	dst, sum, err := discovery.Install(dir, name, v, abs)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins install: %v\n", err)
		return 1
	}
	// Record the components now, so that no later command starts it to ask.
	cache := discovery.OpenCache(discovery.CachePath(o))
	cache.Put(&discovery.Entry{Path: dst, SumFile: dst + discovery.SumSuffix}, probed)
	if err := cache.Save(); err != nil {
		fmt.Fprintf(e.stderr, "warning: saving the component cache: %v\n", err)
	}
	fmt.Fprintf(e.stdout, "Installed plugin %s %s to %s\nSHA-256: %s\nComponents:\n", name, v, dst, sum)
	for _, c := range probed.Components {
		fmt.Fprintf(e.stdout, "  %-15s %s\n", c.Type, templateName(name, c.Name))
	}
	return 0
}

// templateName is how templates address component comp of plugin name.
func templateName(name, comp string) string {
	if comp == discovery.DefaultComponent || comp == name {
		return name
	}
	return name + "-" + comp
}

const installedHelp = `Lists the plugins installed with "packer plugins install": every version,
the components each serves (from the component cache; a binary not in it is
started once to ask) and its path. The highest version of each is used.
Every binary's checksum is verified first, without running it: one that
changed since it was installed is listed as tampered, one without its
SHA256SUM file as unverified, and the command exits with status 1.`

func runPluginsInstalled(e *env, args []string) int {
	fs := newFlagSet(e, "plugins installed", "", installedHelp)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	o, err := discovery.DefaultOptions(e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins installed: %v\n", err)
		return 1
	}
	c, err := discovery.Discover(o)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins installed: %v\n", err)
		return 1
	}
	cache := discovery.OpenCache(discovery.CachePath(o))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tCOMPONENTS\tPATH")
	status := 0
	for _, en := range c.Installed() {
		comps := "?"
		x, err := discovery.Open(en)
		if err != nil {
			fmt.Fprintf(e.stderr, "packer plugins installed: %v\n", err)
			status = 1
			comps = "(unverified: not run)"
			if errors.Is(err, discovery.ErrChecksum) {
				comps = "(tampered: not run)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", en.Name, en.Version, comps, en.Path)
			continue
		}
		p, err := cache.Lookup(en, func(en *discovery.Entry) (discovery.Probed, error) { return probeOpened(en, x) })
		x.Close()
		if err != nil {
			fmt.Fprintf(e.stderr, "packer plugins installed: %s: %v\n", en.Path, err)
			status = 1
		} else {
			var names []string
			for _, pc := range p.Components {
				names = append(names, pc.Type+" "+templateName(en.Name, pc.Name))
			}
			comps = strings.Join(names, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", en.Name, en.Version, comps, en.Path)
	}
	tw.Flush()
	if err := cache.Save(); err != nil {
		fmt.Fprintf(e.stderr, "warning: saving the component cache: %v\n", err)
	}
	return status
}

func runPluginsRemove(e *env, args []string) int {
	fs := newFlagSet(e, "plugins remove", "NAME [VERSION]", "Removes an installed plugin: one version, or all of them.")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fs.fail("expected a plugin name and optionally a version, got %d arguments", fs.NArg())
	}
	o, err := discovery.DefaultOptions(e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins remove: %v\n", err)
		return 1
	}
	removed, err := discovery.Remove(discovery.PluginsDir(o), fs.Arg(0), fs.Arg(1))
	if err != nil {
		fmt.Fprintf(e.stderr, "packer plugins remove: %v\n", err)
		return 1
	}
	for _, v := range removed {
		fmt.Fprintf(e.stdout, "Removed plugin %s %s\n", fs.Arg(0), v)
	}
	return 0
}

// probeBinary verifies a plugin binary (discovery.Open), starts it, reads
// its handshake and stops it.
func probeBinary(en *discovery.Entry) (discovery.Probed, error) {
	x, err := discovery.Open(en)
	if err != nil {
		return discovery.Probed{}, err
	}
	defer x.Close()
	return probeOpened(en, x)
}

// probeOpened starts the opened binary x of en, reads its handshake and stops it.
func probeOpened(en *discovery.Entry, x *discovery.Executable) (discovery.Probed, error) {
	cmd := exec.Command(en.Args[0], en.Args[1:]...)
	cmd.Path = x.Path
	p, err := host.Start(context.Background(), cmd, host.Options{Name: filepath.Base(en.Path), Stderr: io.Discard, HostInfo: protocol.Peer{Name: "packer", Version: Version}})
	if err != nil {
		return discovery.Probed{}, err
	}
	info := p.Info()
	if err := p.Close(); err != nil {
		return discovery.Probed{}, err
	}
	out := discovery.Probed{Version: info.Plugin.Version}
	for _, c := range info.Components {
		out.Components = append(out.Components, discovery.ProbedComponent{Type: c.Type, Name: c.Name})
	}
	return out, nil
}

// checkRequired checks the template's required_plugins against what
// discovery found. A plugin without a versioned install is asked for its
// version (through the component cache).
func (c *catalog) checkRequired(t *template.Template) error {
	if len(t.RequiredPlugins) == 0 {
		return nil
	}
	cache := discovery.OpenCache(c.cachePath)
	defer cache.Save()
	var errs []error
	for _, rp := range t.RequiredPlugins {
		how := fmt.Sprintf("install a version that matches %q: build it, then run packer plugins install --path ./packer-plugin-%s", rp.Constraint, rp.Name)
		en := c.Plugin(rp.Name)
		if en == nil {
			errs = append(errs, fmt.Errorf("%s:%d: required_plugins: plugin %q is not installed; %s", t.Path, rp.Pos.Line, rp.Name, how))
			continue
		}
		v := en.Version
		if v == "" {
			p, err := cache.Lookup(en, probeBinary)
			if err != nil {
				errs = append(errs, fmt.Errorf("required_plugins: plugin %q (%s): %w", rp.Name, en.Path, err))
				continue
			}
			v = p.Version
		}
		ok, err := rp.Allows(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s:%d: required_plugins: plugin %q at %s reports version %q, not a version; %s", t.Path, rp.Pos.Line, rp.Name, en.Path, v, how))
		case !ok:
			errs = append(errs, fmt.Errorf("%s:%d: required_plugins: the template needs plugin %q %s but %s is version %s; %s", t.Path, rp.Pos.Line, rp.Name, rp.Constraint, en.Path, v, how))
		}
	}
	return errors.Join(errs...)
}

func isWindows() bool { return filepath.Separator == '\\' }
