// Package discovery finds plugin binaries by name, without running them.
//
// A plugin binary is named packer-builder-NAME, packer-provisioner-NAME or
// packer-post-processor-NAME (one component of that type), or
// packer-plugin-NAME (several components, addressed in templates as
// NAME-COMPONENT, or NAME for the one registered as [DefaultComponent]).
// On Windows the names end in ".exe", which is stripped.
//
// Sources, from lowest to highest precedence (a later one wins):
//
//  1. builtins, compiled into packer and passed in by the caller;
//  2. the directory of the packer executable;
//  3. ~/.packer.d/plugins (%APPDATA%/packer.d/plugins on Windows);
//  4. the current working directory;
//  5. PACKER_PLUGIN_PATH, a list of directories: it wins over the three
//     directories above, and within it an EARLIER directory wins, as in PATH;
//  6. the config file (PACKER_CONFIG, or ~/.packerconfig), which maps a
//     component name to an absolute binary path and wins over everything.
//
// Discovery reads each directory once (os.ReadDir) and looks further only at
// names starting with "packer-": a regular file needs no extra system call
// on Unix to be recognised, its mode bits cost one lstat, and only symbolic
// links are followed with a stat. It never executes anything, so it cannot
// know which components a packer-plugin-NAME binary serves; [Catalog.Lookup]
// resolves names by the rules documented there and the host asks the binary.
package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Component types, as in protocol and templates; TypePlugin marks a
// packer-plugin-NAME binary, whose component types are unknown until it runs.
const (
	TypeBuilder       = "builder"
	TypeProvisioner   = "provisioner"
	TypePostProcessor = "post-processor"
	TypePlugin        = "plugin"
)

// DefaultComponent is the reserved component name a packer-plugin-NAME
// binary registers for the component that templates address as plain NAME.
const DefaultComponent = "default"

// Source names, in increasing precedence; they appear in Entry.Source.
const (
	SourceBuiltin    = "builtin"
	SourceExeDir     = "executable directory"
	SourceHome       = "~/.packer.d/plugins"
	SourceWorkDir    = "working directory"
	SourcePluginPath = "PACKER_PLUGIN_PATH"
	SourceConfig     = "config file"
)

// ErrNotFound is returned by Lookup when no source provides the component.
var ErrNotFound = errors.New("plugin not found")

// ErrConfig is a config file that cannot be used.
var ErrConfig = errors.New("invalid plugin config file")

// Builtin is a component compiled into packer.
type Builtin struct {
	Type, Name string
	// Args is the command that runs it, e.g.
	// ["/usr/bin/packer", "plugin", "packer-builder-file"].
	Args []string
}

// Options says where to look. Empty fields are skipped. [DefaultOptions]
// fills them from the environment.
type Options struct {
	ExeDir  string
	HomeDir string
	// AppData replaces HomeDir for the plugins directory on Windows.
	AppData string
	WorkDir string
	// PluginPath is PACKER_PLUGIN_PATH split; earlier entries win.
	PluginPath []string
	// ConfigFile is the path of the config file; a missing file is fine.
	ConfigFile string
	Builtins   []Builtin
}

// Entry is one component, or for TypePlugin one multi-component binary.
type Entry struct {
	Type string
	// Name is the name templates use.
	Name string
	// Component is the name to ask the binary for in component/prepare:
	// NAME for packer-TYPE-NAME binaries, builtins and config entries; the
	// part after the prefix, or DefaultComponent, for packer-plugin
	// binaries; empty for a TypePlugin entry.
	Component string
	// Path is the binary; for a builtin, Args[0].
	Path string
	// Args is the command line that starts the plugin: [Path] for a binary,
	// the builtin's Args for a builtin.
	Args []string
	// Source is one of the Source constants; Dir is the directory searched
	// (empty for builtins and the config file).
	Source string
	Dir    string
	// Shadowed lists the entries this one overrides, highest precedence
	// first. Entries in Shadowed have no Shadowed of their own.
	Shadowed []*Entry
	// Version is the version of a versioned install (see Installed), or
	// empty when the layout does not say.
	Version string
	// SumFile is the SHA256SUM file of a versioned install, which Lookup
	// verifies; empty otherwise.
	SumFile string
}

// Location is a place discovery looked in.
type Location struct {
	Source, Dir string
}

// Catalog is the result of Discover. It is read-only and safe for
// concurrent use.
type Catalog struct {
	// Warnings are problems that did not stop discovery: unreadable
	// directories, files that are not executable, directories named like
	// plugins.
	Warnings []string
	// Searched lists the directories and files looked in, lowest
	// precedence first.
	Searched []Location

	singles   map[key]*Entry // builtins excluded
	builtins  map[key]*Entry
	plugins   map[string]*Entry   // by prefix
	installed map[string][]*Entry // versioned installs by name, lowest version first
}

type key struct{ typ, name string }

// ParseName recognises a plugin file name. It returns the type (one of
// the Type constants, TypePlugin for packer-plugin-NAME) and NAME. On
// Windows (windows true) only names ending in ".exe" (any case) are
// plugins and the suffix is not part of NAME.
func ParseName(file string, windows bool) (typ, name string, ok bool) {
	if windows {
		if len(file) < 4 || !strings.EqualFold(file[len(file)-4:], ".exe") {
			return "", "", false
		}
		file = file[:len(file)-4]
	}
	rest, ok := strings.CutPrefix(file, "packer-")
	if !ok {
		return "", "", false
	}
	for _, t := range []string{TypeBuilder, TypeProvisioner, TypePostProcessor, TypePlugin} {
		if n, ok := strings.CutPrefix(rest, t+"-"); ok && n != "" {
			return t, n, true
		}
	}
	return "", "", false
}

// DefaultOptions returns the Options packer uses, from getenv (os.Getenv
// when nil), the executable's location, the home directory and the
// working directory.
func DefaultOptions(getenv func(string) string) (Options, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var o Options
	exe, err := os.Executable()
	if err != nil {
		return o, fmt.Errorf("locating the packer executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	o.ExeDir = filepath.Dir(exe)
	o.HomeDir = getenv("HOME")
	if o.HomeDir == "" {
		o.HomeDir, _ = os.UserHomeDir()
	}
	o.AppData = getenv("APPDATA")
	if o.WorkDir, err = os.Getwd(); err != nil {
		return o, fmt.Errorf("working directory: %w", err)
	}
	if p := getenv("PACKER_PLUGIN_PATH"); p != "" {
		o.PluginPath = filepath.SplitList(p)
	}
	o.ConfigFile = getenv("PACKER_CONFIG")
	if o.ConfigFile == "" {
		switch {
		case runtime.GOOS == "windows" && o.AppData != "":
			o.ConfigFile = filepath.Join(o.AppData, "packer.config")
		case o.HomeDir != "":
			o.ConfigFile = filepath.Join(o.HomeDir, ".packerconfig")
		}
	}
	return o, nil
}

// Discover finds every plugin the options point at. A missing directory or
// config file is skipped silently; an unreadable directory, a file that is
// not executable or a directory named like a plugin gives a warning. Only a
// config file that exists but is malformed, or maps a name to a relative
// path, is an error (wrapping ErrConfig).
func Discover(o Options) (*Catalog, error) {
	return discover(o, runtime.GOOS == "windows")
}

var isWindows = runtime.GOOS == "windows"

func discover(o Options, windows bool) (*Catalog, error) {
	c := &Catalog{singles: map[key]*Entry{}, builtins: map[key]*Entry{}, plugins: map[string]*Entry{}, installed: map[string][]*Entry{}}
	for _, b := range o.Builtins {
		e := &Entry{Type: b.Type, Name: b.Name, Component: b.Name, Args: slices.Clone(b.Args), Source: SourceBuiltin}
		if len(b.Args) > 0 {
			e.Path = b.Args[0]
		}
		add(c.builtins, key{b.Type, b.Name}, e)
	}
	s := &scanner{c: c, windows: windows, dirs: map[string][]fs.DirEntry{}, infos: map[string]fileInfo{}}
	s.scan(SourceExeDir, o.ExeDir)
	home := pluginsDir(o, windows)
	s.scan(SourceHome, home)
	if home != "" {
		s.scanInstalled(filepath.Clean(home))
	}
	s.scan(SourceWorkDir, o.WorkDir)
	// Within PACKER_PLUGIN_PATH an earlier directory wins: scan it last.
	for i := len(o.PluginPath) - 1; i >= 0; i-- {
		s.scan(SourcePluginPath, o.PluginPath[i])
	}
	if o.ConfigFile != "" {
		if err := c.readConfig(o.ConfigFile); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// add makes e the winner for k, keeping the previous winner and what it
// shadowed as e's Shadowed. The same binary found again (one directory
// listed twice) replaces its earlier entry instead of shadowing it.
func add[K comparable](m map[K]*Entry, k K, e *Entry) {
	prev := m[k]
	if prev != nil {
		chain := append([]*Entry{prev}, prev.Shadowed...)
		prev.Shadowed = nil
		for _, old := range chain {
			if old.Path != e.Path || old.Source == SourceBuiltin {
				e.Shadowed = append(e.Shadowed, old)
			}
		}
	}
	m[k] = e
}

type fileInfo struct {
	ok   bool
	warn string
}

type scanner struct {
	c       *Catalog
	windows bool
	// dirs and infos cache directory listings and file checks, so that a
	// directory listed by two sources is read once.
	dirs  map[string][]fs.DirEntry
	infos map[string]fileInfo
}

func (s *scanner) scan(source, dir string) {
	if dir == "" {
		return
	}
	dir = filepath.Clean(dir)
	s.c.Searched = append(s.c.Searched, Location{Source: source, Dir: dir})
	entries, seen := s.dirs[dir]
	if !seen {
		var err error
		entries, err = os.ReadDir(dir)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
		default:
			// ReadDir returns what it read before the error; use it.
			s.c.Warnings = append(s.c.Warnings, fmt.Sprintf("cannot read %s (%s): %v", dir, source, err))
		}
		s.dirs[dir] = entries
	}
	for _, de := range entries {
		typ, name, ok := ParseName(de.Name(), s.windows)
		if !ok {
			continue
		}
		path := filepath.Join(dir, de.Name())
		info, checked := s.infos[path]
		if !checked {
			info = s.check(path, de)
			s.infos[path] = info
			if info.warn != "" {
				s.c.Warnings = append(s.c.Warnings, info.warn)
			}
		}
		if !info.ok {
			continue
		}
		e := &Entry{Type: typ, Name: name, Component: name, Path: path, Args: []string{path}, Source: source, Dir: dir}
		if typ == TypePlugin {
			e.Component = ""
			add(s.c.plugins, name, e)
		} else {
			add(s.c.singles, key{typ, name}, e)
		}
	}
}

// check decides whether a packer-* directory entry is a usable binary. It
// costs no system call for a regular file on Windows, one lstat for a
// regular file elsewhere (the mode bits are not in the listing) and one
// stat for a symbolic link.
func (s *scanner) check(path string, de fs.DirEntry) fileInfo {
	var fi fs.FileInfo
	var err error
	switch {
	case de.Type()&fs.ModeSymlink != 0:
		fi, err = os.Stat(path)
	case de.IsDir():
		return fileInfo{warn: fmt.Sprintf("skipping %s: it is a directory", path)}
	case s.windows && de.Type().IsRegular():
		return fileInfo{ok: true}
	default:
		fi, err = de.Info()
	}
	if err != nil {
		return fileInfo{warn: fmt.Sprintf("skipping %s: %v", path, err)}
	}
	switch mode := fi.Mode(); {
	case mode.IsDir():
		return fileInfo{warn: fmt.Sprintf("skipping %s: it is a directory", path)}
	case !mode.IsRegular():
		return fileInfo{warn: fmt.Sprintf("skipping %s: not a regular file", path)}
	case !s.windows && mode&0o111 == 0:
		return fileInfo{warn: fmt.Sprintf("skipping %s: not executable (mode %v); chmod +x it to use it", path, mode.Perm())}
	}
	return fileInfo{ok: true}
}

// configFile is the part of the config file discovery reads; other keys
// are ignored, as Packer does.
type configFile struct {
	Builders       map[string]string `json:"builders"`
	Provisioners   map[string]string `json:"provisioners"`
	PostProcessors map[string]string `json:"post-processors"`
}

func (c *Catalog) readConfig(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c.Searched = append(c.Searched, Location{Source: SourceConfig, Dir: path})
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrConfig, path, err)
	}
	var cf configFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return fmt.Errorf("%w %s: %w", ErrConfig, path, err)
	}
	var bad []string
	for _, sec := range []struct {
		typ, key string
		m        map[string]string
	}{
		{TypeBuilder, "builders", cf.Builders},
		{TypeProvisioner, "provisioners", cf.Provisioners},
		{TypePostProcessor, "post-processors", cf.PostProcessors},
	} {
		for _, name := range sortedKeys(sec.m) {
			p := sec.m[name]
			if !filepath.IsAbs(p) {
				bad = append(bad, fmt.Sprintf("%s.%s: path %q is not absolute", sec.key, name, p))
				continue
			}
			add(c.singles, key{sec.typ, name}, &Entry{Type: sec.typ, Name: name, Component: name,
				Path: p, Args: []string{p}, Source: SourceConfig})
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w %s: %s", ErrConfig, path, strings.Join(bad, "; "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Lookup finds the component of type typ that templates call name. It
// tries, in order, and returns the first match:
//
//  1. a discovered packer-TYPE-NAME binary or config file entry;
//  2. a packer-plugin-PREFIX binary, for each split of name into
//     PREFIX-COMPONENT at a '-', longest PREFIX first, and then a binary
//     whose PREFIX is the whole name, with component DefaultComponent;
//  3. a builtin.
//
// A discovered plugin therefore overrides a builtin of the same name. Step
// 2 cannot check that the binary serves that component; the host learns it
// from the binary's initialize result. A versioned install (see
// [Catalog.Installed]) is checked against its SHA256SUM file first: a
// binary changed since it was installed gives an error wrapping
// [ErrChecksum] that names the file. The returned Entry is a copy the
// caller may keep. The error wraps ErrNotFound and lists what there is of
// that type and where discovery looked.
func (c *Catalog) Lookup(typ, name string) (*Entry, error) {
	if e, ok := c.singles[key{typ, name}]; ok {
		return c.withBuiltin(key{typ, name}, e), nil
	}
	if e, ok := c.plugins[name]; ok {
		return c.verified(c.fromPlugin(e, typ, name, DefaultComponent))
	}
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '-' || i == len(name)-1 {
			continue
		}
		if e, ok := c.plugins[name[:i]]; ok {
			return c.verified(c.fromPlugin(e, typ, name, name[i+1:]))
		}
	}
	if e, ok := c.builtins[key{typ, name}]; ok {
		return e.copy(), nil
	}
	var avail []string
	for _, e := range c.All() {
		switch {
		case e.Type == typ:
			avail = append(avail, fmt.Sprintf("%s (%s)", e.Name, e.Source))
		case e.Type == TypePlugin:
			avail = append(avail, fmt.Sprintf("%s-* (%s, %s)", e.Name, filepath.Base(e.Path), e.Source))
		}
	}
	if len(avail) == 0 {
		avail = []string{"none"}
	}
	var looked []string
	for _, l := range c.Searched {
		looked = append(looked, fmt.Sprintf("%s (%s)", l.Dir, l.Source))
	}
	if len(looked) == 0 {
		looked = []string{"nowhere"}
	}
	return nil, fmt.Errorf("%w: no %s named %q; available: %s; looked in: %s",
		ErrNotFound, typ, name, strings.Join(avail, ", "), strings.Join(looked, ", "))
}

// verified returns e when its checksum (if it has one) matches.
func (c *Catalog) verified(e *Entry) (*Entry, error) {
	if err := Verify(e); err != nil {
		return nil, err
	}
	return e, nil
}

// fromPlugin returns the entry for component typ/name served by the
// packer-plugin binary p, with the builtin it overrides, if any, at the
// end of Shadowed.
func (c *Catalog) fromPlugin(p *Entry, typ, name, component string) *Entry {
	e := p.copy()
	e.Type, e.Name, e.Component = typ, name, component
	if b, ok := c.builtins[key{typ, name}]; ok {
		e.Shadowed = append(e.Shadowed, b.copy())
	}
	return e
}

// withBuiltin returns a copy of e with the builtin it overrides, if any,
// at the end of Shadowed.
func (c *Catalog) withBuiltin(k key, e *Entry) *Entry {
	e = e.copy()
	if b, ok := c.builtins[k]; ok {
		e.Shadowed = append(e.Shadowed, b.copy())
	}
	return e
}

func (e *Entry) copy() *Entry {
	c := *e
	c.Args = slices.Clone(e.Args)
	c.Shadowed = slices.Clone(e.Shadowed)
	return &c
}

// All returns every winning entry, builtins and packer-plugin binaries
// (Type TypePlugin) included, sorted by type then name. A builtin that a
// discovered packer-TYPE-NAME binary overrides appears in that entry's
// Shadowed, not on its own.
func (c *Catalog) All() []*Entry {
	var out []*Entry
	for k, e := range c.singles {
		out = append(out, c.withBuiltin(k, e))
	}
	for k, b := range c.builtins {
		if _, ok := c.singles[k]; !ok {
			out = append(out, b.copy())
		}
	}
	for _, e := range c.plugins {
		out = append(out, e.copy())
	}
	slices.SortFunc(out, func(a, b *Entry) int {
		if a.Type != b.Type {
			return strings.Compare(a.Type, b.Type)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
