package discovery

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
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
			if err := ValidVersion(v.Name()); err != nil {
				s.c.Warnings = append(s.c.Warnings, fmt.Sprintf("skipping %s: %v", filepath.Join(dir, name, v.Name()), err))
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

// ErrUnverified is returned for an installed binary whose SHA256SUM file
// is missing or unreadable: packer cannot tell whether it is the binary
// that was installed, so it does not run it.
var ErrUnverified = errors.New("plugin not verified")

// ErrVersion is a plugin version that is not a strict semantic version.
var ErrVersion = errors.New("invalid plugin version")

// Verify checks an installed binary against its SHA256SUM file, without
// running it. It returns nil for an entry without one (a binary that was
// not installed by packer plugins install), an error wrapping
// [ErrUnverified] when the SHA256SUM file is missing or malformed, and one
// wrapping [ErrChecksum] that says what to do when the binary changed.
// To run the binary, use [Open], which verifies the very file it executes.
func Verify(e *Entry) error {
	x, err := Open(e)
	if err != nil {
		return err
	}
	return x.Close()
}

// verifyFile hashes the open binary f and compares it with e's SHA256SUM
// file, which is read through root when root is not nil.
func verifyFile(e *Entry, f *os.File, root *os.Root, sumName string) error {
	var want string
	var err error
	if root != nil {
		want, err = readSum(root.ReadFile(sumName))
	} else {
		want, err = ReadSum(e.SumFile)
	}
	if err != nil {
		why := fmt.Sprintf("its checksum file %s: %v", e.SumFile, err)
		if errors.Is(err, fs.ErrNotExist) {
			why = fmt.Sprintf("its checksum file %s is missing", e.SumFile)
		}
		return fmt.Errorf("%w: %s: %s; reinstall it with packer plugins install --path BINARY, or remove it with packer plugins remove %s %s",
			ErrUnverified, e.Path, why, e.pluginName(), e.Version)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("reading %s: %w", e.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s has SHA-256 %s but %s says %s: the binary changed after it was installed; "+
			"reinstall it with packer plugins install --path BINARY, or remove it with packer plugins remove %s %s",
			ErrChecksum, e.Path, got, e.SumFile, want, e.pluginName(), e.Version)
	}
	return nil
}

// pluginName is NAME of a versioned install's NAME/VERSION/binary path.
func (e *Entry) pluginName() string { return filepath.Base(filepath.Dir(filepath.Dir(e.Path))) }

// ReadSum reads the hex SHA-256 from a SHA256SUM file.
func ReadSum(path string) (string, error) {
	sum, err := readSum(os.ReadFile(path))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return sum, err
}

func readSum(data []byte, err error) (string, error) {
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", errors.New("not a SHA256SUM file")
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", errors.New("not a SHA256SUM file")
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
// the same version. name and version are checked first ([ValidVersion]),
// and every file is created through an [os.Root] of pluginsDir, so that
// nothing is written outside it, even through a symbolic link. The copy
// is written to a temporary file and renamed, so a concurrent discovery
// never sees half a binary.
func Install(pluginsDir, name, version, src string) (path, sum string, err error) {
	if !namePattern(name) {
		return "", "", fmt.Errorf("plugin name %q: use lower-case letters, digits, '.', '_' and '-'", name)
	}
	if err := ValidVersion(version); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(pluginsDir, 0o755); err != nil {
		return "", "", err
	}
	root, err := os.OpenRoot(pluginsDir)
	if err != nil {
		return "", "", err
	}
	defer root.Close()
	dir := filepath.Join(name, version)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("creating %s in %s: %w", dir, pluginsDir, err)
	}
	rel := filepath.Join(dir, BinaryName(name))
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	var rnd [8]byte
	rand.Read(rnd[:]) //nolint:errcheck // crypto/rand.Read never fails
	tmpName := filepath.Join(dir, ".install-"+hex.EncodeToString(rnd[:]))
	tmp, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return "", "", err
	}
	defer root.Remove(tmpName) //nolint:errcheck // gone after the rename
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
	if err := root.WriteFile(rel+SumSuffix, []byte(sum+"  "+BinaryName(name)+"\n"), 0o644); err != nil {
		return "", "", err
	}
	if err := root.Rename(tmpName, rel); err != nil {
		return "", "", err
	}
	return filepath.Join(pluginsDir, rel), sum, nil
}

// Remove deletes the installs of plugin name from pluginsDir: one version,
// or every version when version is empty. It returns the versions removed;
// none is an error wrapping fs.ErrNotExist. It works through an [os.Root]
// of pluginsDir and never follows a symbolic link: a NAME or VERSION that
// is a link is refused, and links inside a version directory are removed,
// not followed.
func Remove(pluginsDir, name, version string) ([]string, error) {
	notInstalled := fmt.Errorf("plugin %q is not installed in %s: %w", name, pluginsDir, fs.ErrNotExist)
	if !namePattern(name) {
		return nil, notInstalled
	}
	root, err := os.OpenRoot(pluginsDir)
	if err != nil {
		return nil, notInstalled
	}
	defer root.Close()
	fi, err := root.Lstat(name)
	switch {
	case err != nil:
		return nil, notInstalled
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link, not an install of packer plugins install: remove it by hand", filepath.Join(pluginsDir, name))
	case !fi.IsDir():
		return nil, notInstalled
	}
	d, err := root.Open(name)
	if err != nil {
		return nil, notInstalled
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(pluginsDir, name), err)
	}
	var removed []string
	for _, de := range entries {
		if version != "" && de.Name() != version {
			continue
		}
		if de.Type()&fs.ModeSymlink != 0 {
			if version != "" {
				return nil, fmt.Errorf("%s is a symbolic link, not an install of packer plugins install: remove it by hand", filepath.Join(pluginsDir, name, de.Name()))
			}
			continue
		}
		if !de.IsDir() {
			continue
		}
		if err := root.RemoveAll(filepath.Join(name, de.Name())); err != nil {
			return removed, err
		}
		removed = append(removed, de.Name())
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("plugin %q has no version %q installed in %s: %w", name, version, pluginsDir, fs.ErrNotExist)
	}
	root.Remove(name) //nolint:errcheck // only succeeds when it is empty
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

// ValidVersion checks that s is a strict semantic version that is safe as
// a directory name: MAJOR.MINOR.PATCH (numbers without leading zeros, an
// optional leading "v"), optionally followed by "-PRERELEASE" and
// "+BUILD" made of letters, digits, '.' and '-', at most 64 characters in
// all. The error wraps [ErrVersion].
func ValidVersion(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s; want a semantic version such as 1.2.0 or 1.2.0-rc.1", ErrVersion, s, why)
	}
	if s == "" || len(s) > 64 {
		return bad("empty or longer than 64 characters")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+') {
			return bad(fmt.Sprintf("%q is not allowed", r))
		}
	}
	if !semverCore.MatchString(s) {
		return bad("it does not start with MAJOR.MINOR.PATCH")
	}
	if _, err := version.NewSemver(s); err != nil {
		return bad(err.Error())
	}
	return nil
}

// semverCore is the MAJOR.MINOR.PATCH start of a version, and what may
// follow it.
var semverCore = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([-+]|$)`)

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

// compareVersions orders versions by semantic-version precedence
// (1.10.0 after 1.9.3, 1.0.0-rc.1 before 1.0.0); invalid ones sort first.
func compareVersions(a, b string) int {
	va, errA := version.NewSemver(a)
	vb, errB := version.NewSemver(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}
