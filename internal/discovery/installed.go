package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Installed plugins live in the plugins directory of the home source
// (~/.packer.d/plugins, %APPDATA%/packer.d/plugins on Windows) in a
// versioned layout, as written by "packer plugins install":
//
//	plugins/NAME/VERSION/packer-plugin-NAME
//	plugins/NAME/VERSION/packer-plugin-NAME_SHA256SUM
//
// (".exe" after packer-plugin-NAME on Windows). The SHA256SUM file holds
// the hex SHA-256 of the binary, two spaces and the binary's file name, as
// sha256sum prints it. Of the versions of NAME, the highest wins; it
// shadows a flat packer-plugin-NAME in the same directory. Lookup verifies
// the checksum of an installed binary before returning it.

// ErrChecksum is returned by Lookup when an installed binary does not
// match its SHA256SUM file.
var ErrChecksum = errors.New("plugin checksum mismatch")

// SumSuffix ends the name of the checksum file beside an installed binary.
const SumSuffix = "_SHA256SUM"

// PluginsDir returns the plugins directory of the home source for o, or ""
// when o has no home.
func PluginsDir(o Options) string {
	return pluginsDir(o, isWindows)
}

func pluginsDir(o Options, windows bool) string {
	switch {
	case windows && o.AppData != "":
		return filepath.Join(o.AppData, "packer.d", "plugins")
	case o.HomeDir != "":
		return filepath.Join(o.HomeDir, ".packer.d", "plugins")
	}
	return ""
}

// BinaryName is the file name of the packer-plugin-NAME binary on this OS.
func BinaryName(name string) string {
	if isWindows {
		return "packer-plugin-" + name + ".exe"
	}
	return "packer-plugin-" + name
}

// scanInstalled adds the versioned installs under dir (the home plugins
// directory). A NAME/VERSION directory without its binary is skipped with
// a warning; so is a VERSION that is not a version.
func (s *scanner) scanInstalled(dir string) {
	for _, de := range s.dirs[dir] {
		name := de.Name()
		if !de.IsDir() || strings.HasPrefix(name, "packer-") || strings.HasPrefix(name, ".") {
			continue
		}
		versions, err := os.ReadDir(filepath.Join(dir, name))
		if err != nil {
			s.c.Warnings = append(s.c.Warnings, fmt.Sprintf("cannot read %s: %v", filepath.Join(dir, name), err))
			continue
		}
		var found []*Entry
		for _, v := range versions {
			if !v.IsDir() {
				continue
			}
			if _, err := ParseVersion(v.Name()); err != nil {
				s.c.Warnings = append(s.c.Warnings, fmt.Sprintf("skipping %s: %q is not a version", filepath.Join(dir, name, v.Name()), v.Name()))
				continue
			}
			bin := "packer-plugin-" + name
			if s.windows {
				bin += ".exe"
			}
			path := filepath.Join(dir, name, v.Name(), bin)
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				s.c.Warnings = append(s.c.Warnings, fmt.Sprintf("skipping %s: no %s in it; reinstall with packer plugins install", filepath.Dir(path), bin))
				continue
			}
			found = append(found, &Entry{Type: TypePlugin, Name: name, Path: path, Args: []string{path},
				Source: SourceHome, Dir: dir, Version: v.Name(), SumFile: path + SumSuffix})
		}
		slices.SortFunc(found, func(a, b *Entry) int { return compareVersions(a.Version, b.Version) })
		if len(found) == 0 {
			continue
		}
		s.c.installed[name] = found
		add(s.c.plugins, name, found[len(found)-1].copy())
	}
}

// Plugin returns the winning packer-plugin-NAME binary for name, or nil.
func (c *Catalog) Plugin(name string) *Entry {
	if e, ok := c.plugins[name]; ok {
		return e.copy()
	}
	return nil
}

// Installed returns the versioned installs of the home plugins directory,
// by name then version, lowest first.
func (c *Catalog) Installed() []*Entry {
	var out []*Entry
	for _, name := range sortedKeys(c.installed) {
		for _, e := range c.installed[name] {
			out = append(out, e.copy())
		}
	}
	return out
}

// Verify checks an installed binary against its SHA256SUM file. It returns
// nil for an entry without one (a binary that was not installed by packer
// plugins install) and an error wrapping ErrChecksum that says what to do
// when the binary was changed.
func Verify(e *Entry) error {
	if e.SumFile == "" {
		return nil
	}
	want, err := ReadSum(e.SumFile)
	if err != nil {
		return fmt.Errorf("%w: %v; reinstall the plugin with packer plugins install --path BINARY", ErrChecksum, err)
	}
	got, err := FileSHA256(e.Path)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s has SHA-256 %s but %s says %s: the binary changed after it was installed; "+
			"reinstall it with packer plugins install --path BINARY, or remove it with packer plugins remove %s %s",
			ErrChecksum, e.Path, got, e.SumFile, want, filepath.Base(filepath.Dir(filepath.Dir(e.Path))), e.Version)
	}
	return nil
}

// ReadSum reads the hex SHA-256 from a SHA256SUM file.
func ReadSum(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("%s: not a SHA256SUM file", path)
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", fmt.Errorf("%s: not a SHA256SUM file", path)
	}
	return strings.ToLower(f[0]), nil
}

// FileSHA256 returns the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Install copies the binary src into pluginsDir as version of plugin name
// in the versioned layout, writes its SHA256SUM file, and returns the
// installed binary's path and checksum. It replaces an existing install of
// the same version. The copy is written to a temporary file and renamed,
// so a concurrent discovery never sees half a binary.
func Install(pluginsDir, name, version, src string) (path, sum string, err error) {
	if !namePattern(name) {
		return "", "", fmt.Errorf("plugin name %q: use lower-case letters, digits, '.', '_' and '-'", name)
	}
	if _, err := ParseVersion(version); err != nil {
		return "", "", err
	}
	dir := filepath.Join(pluginsDir, name, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, BinaryName(name))
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, ".install-*")
	if err != nil {
		return "", "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return "", "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", "", err
	}
	if err := tmp.Close(); err != nil {
		return "", "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if err := os.WriteFile(path+SumSuffix, []byte(sum+"  "+filepath.Base(path)+"\n"), 0o644); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", "", err
	}
	return path, sum, nil
}

// Remove deletes the installs of plugin name from pluginsDir: one version,
// or every version when version is empty. It returns the versions removed;
// none is an error wrapping fs.ErrNotExist.
func Remove(pluginsDir, name, version string) ([]string, error) {
	base := filepath.Join(pluginsDir, name)
	entries, err := os.ReadDir(base)
	if err != nil || name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("plugin %q is not installed in %s: %w", name, pluginsDir, fs.ErrNotExist)
	}
	var removed []string
	for _, de := range entries {
		if !de.IsDir() || (version != "" && de.Name() != version) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(base, de.Name())); err != nil {
			return removed, err
		}
		removed = append(removed, de.Name())
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("plugin %q has no version %q installed in %s: %w", name, version, pluginsDir, fs.ErrNotExist)
	}
	if rest, err := os.ReadDir(base); err == nil && len(rest) == 0 {
		os.Remove(base)
	}
	return removed, nil
}

func namePattern(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' || s[0] == '_' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// ParseVersion reads a dotted version of at most three numbers, with an
// optional leading "v"; a "-suffix" or "+suffix" is ignored.
func ParseVersion(s string) ([3]int, error) {
	var out [3]int
	v := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return out, fmt.Errorf("invalid version %q", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, fmt.Errorf("invalid version %q: want a version such as 1.2.0", s)
		}
		out[i] = n
	}
	return out, nil
}

// compareVersions orders versions; invalid ones sort first.
func compareVersions(a, b string) int {
	va, errA := ParseVersion(a)
	vb, errB := ParseVersion(b)
	switch {
	case errA != nil || errB != nil:
		return strings.Compare(a, b)
	}
	return slices.Compare(va[:], vb[:])
}
