package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/packer-stdio/packer/internal/discovery"
	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
)

const initHelp = `Checks the plugins a template requires (packer.required_plugins in HCL2,
required_plugins in JSON) against the installed ones and says, for each,
whether it is there in a version the template accepts.

This packer downloads nothing. With -from, a missing or too old plugin is
installed from a local binary, as packer plugins install --path does
(versioned layout, SHA-256 file): -from names a plugin binary, or a
directory holding packer-plugin-NAME binaries. When a NAME_SHA256SUM file
sits next to a binary, the binary must match it. Exit status 0 when every
required plugin is then installed, 1 otherwise.`

func runInit(e *env, args []string) int {
	fs := newFlagSet(e, "init", "TEMPLATE", initHelp)
	from := fs.String("from", "", "a plugin binary, or a directory of them, to install missing plugins from")
	upgrade := fs.Bool("upgrade", false, "install from -from even when an accepted version is installed")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.fail("expected one template path, got %d arguments", fs.NArg())
	}
	path := fs.Arg(0)
	var required []hcl2.RequiredPlugin
	if hcl2.IsHCL2(path) {
		var err error
		if required, err = hcl2.ReadRequiredPlugins(path); err != nil {
			fmt.Fprintf(e.stderr, "packer init: %v\n", err)
			return 1
		}
	} else {
		t, err := template.ParseFile(path)
		if err != nil {
			fmt.Fprintf(e.stderr, "packer init: %v\n", err)
			return 1
		}
		for _, rp := range t.RequiredPlugins {
			required = append(required, hcl2.RequiredPlugin{Name: rp.Name, Version: rp.Constraint, Required: rp})
		}
	}
	if len(required) == 0 {
		fmt.Fprintf(e.stdout, "%s requires no plugins.\n", path)
		return 0
	}
	missing := 0
	for _, rp := range required {
		have, err := installedVersion(e, rp.Name)
		if err == nil && !*upgrade {
			if ok, cerr := rp.Required.Allows(have); cerr == nil && ok {
				fmt.Fprintf(e.stdout, "Plugin %s %s is installed (the template accepts %s).\n", rp.Name, have, rp.Version)
				continue
			}
		}
		if *from == "" {
			missing++
			what := "is not installed"
			if err == nil {
				what = fmt.Sprintf("is installed in version %s only", have)
			}
			src := ""
			if rp.Source != "" {
				src = " (source " + rp.Source + ")"
			}
			fmt.Fprintf(e.stderr, "Plugin %s%s %s; the template needs %s. This packer downloads nothing: build or fetch packer-plugin-%s, then run packer init -from BINARY_OR_DIR %s, or packer plugins install --path BINARY %s.\n",
				rp.Name, src, what, rp.Version, rp.Name, path, rp.Name)
			continue
		}
		bin, err := findPluginBinary(*from, rp.Name)
		if err == nil {
			err = verifySumFile(bin)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "packer init: plugin %s: %v\n", rp.Name, err)
			missing++
			continue
		}
		if code := runPluginsInstall(e, []string{"--path", bin, rp.Name}); code != 0 {
			missing++
			continue
		}
		have, err = installedVersion(e, rp.Name)
		if err != nil {
			fmt.Fprintf(e.stderr, "packer init: plugin %s: %v\n", rp.Name, err)
			missing++
			continue
		}
		if ok, cerr := rp.Required.Allows(have); cerr != nil || !ok {
			fmt.Fprintf(e.stderr, "packer init: plugin %s: %s is version %s, but the template needs %s\n", rp.Name, bin, have, rp.Version)
			missing++
		}
	}
	if missing > 0 {
		return 1
	}
	return 0
}

// installedVersion returns the version of the plugin NAME discovery
// finds; the binary is asked when its layout does not say.
func installedVersion(e *env, name string) (string, error) {
	c, err := discover(e)
	if err != nil {
		return "", err
	}
	en := c.Plugin(name)
	if en == nil {
		return "", fmt.Errorf("plugin %q is not installed", name)
	}
	if en.Version != "" {
		return en.Version, nil
	}
	cache := discovery.OpenCache(c.cachePath)
	defer cache.Save()
	p, err := cache.Lookup(en, probeBinary)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(p.Version, "v"), nil
}

// findPluginBinary returns from itself when it is a file, else the
// packer-plugin-NAME binary in the directory from.
func findPluginBinary(from, name string) (string, error) {
	fi, err := os.Stat(from)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return from, nil
	}
	bin := filepath.Join(from, "packer-plugin-"+name)
	if isWindows() {
		bin += ".exe"
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s has no %s", from, filepath.Base(bin))
	}
	return bin, nil
}

// verifySumFile checks bin against BIN_SHA256SUM when that file exists.
func verifySumFile(bin string) error {
	want, err := os.ReadFile(bin + discovery.SumSuffix)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	got := hex.EncodeToString(h.Sum(nil))
	fields := strings.Fields(string(want))
	if len(fields) == 0 || !strings.EqualFold(fields[0], got) {
		return fmt.Errorf("%s has SHA-256 %s but %s says %q: refusing to install it", bin, got, filepath.Base(bin)+discovery.SumSuffix, strings.TrimSpace(string(want)))
	}
	return nil
}
