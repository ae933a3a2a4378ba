package discovery_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/discovery"
)

// tree is a set of directories under one temporary root.
type tree struct {
	t    testing.TB
	root string
}

func newTree(t testing.TB) *tree { return &tree{t: t, root: t.TempDir()} }

func (tr *tree) dir(name string) string {
	p := filepath.Join(tr.root, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

// file creates dir/name with the given mode and returns its path.
func (tr *tree) file(dir, name string, mode os.FileMode) string {
	p := filepath.Join(tr.dir(dir), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask-proof
		tr.t.Fatal(err)
	}
	return p
}

func (tr *tree) rel(p string) string {
	if r, err := filepath.Rel(tr.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return p
}

// view is the comparable part of an Entry, with paths relative to the
// tree and shadowed entries as "source: path".
type view struct {
	Type, Name, Component, Source, Path string
	Shadowed                            []string
}

func (tr *tree) view(e *discovery.Entry) view {
	v := view{Type: e.Type, Name: e.Name, Component: e.Component, Source: e.Source, Path: tr.rel(e.Path)}
	for _, s := range e.Shadowed {
		v.Shadowed = append(v.Shadowed, s.Source+": "+tr.rel(s.Path))
	}
	return v
}

func skipOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses Unix mode bits and names without .exe")
	}
}

var builtinFile = discovery.Builtin{Type: "builder", Name: "file", Args: []string{"/bin/packer", "plugin", "packer-builder-file"}}

func TestLookup(t *testing.T) {
	skipOnWindows(t)
	tests := []struct {
		name   string
		setup  func(tr *tree) discovery.Options
		typ    string
		lookup string
		want   view
		reason string
	}{
		{
			name: "later legacy directory wins",
			setup: func(tr *tree) discovery.Options {
				tr.file("exe", "packer-builder-foo", 0o755)
				tr.file("home/.packer.d/plugins", "packer-builder-foo", 0o755)
				tr.file("work", "packer-builder-foo", 0o700)
				return discovery.Options{ExeDir: tr.dir("exe"), HomeDir: tr.dir("home"), WorkDir: tr.dir("work")}
			},
			typ: "builder", lookup: "foo",
			want: view{Type: "builder", Name: "foo", Component: "foo", Source: "working directory", Path: "work/packer-builder-foo",
				Shadowed: []string{"~/.packer.d/plugins: home/.packer.d/plugins/packer-builder-foo", "executable directory: exe/packer-builder-foo"}},
			reason: "executable directory < ~/.packer.d/plugins < working directory",
		},
		{
			name: "discovered binary overrides builtin",
			setup: func(tr *tree) discovery.Options {
				tr.file("exe", "packer-builder-file", 0o755)
				return discovery.Options{ExeDir: tr.dir("exe"), Builtins: []discovery.Builtin{builtinFile}}
			},
			typ: "builder", lookup: "file",
			want: view{Type: "builder", Name: "file", Component: "file", Source: "executable directory", Path: "exe/packer-builder-file",
				Shadowed: []string{"builtin: /bin/packer"}},
		},
		{
			name: "builtin when nothing else",
			setup: func(tr *tree) discovery.Options {
				tr.file("exe", "packer-provisioner-file", 0o755)
				return discovery.Options{ExeDir: tr.dir("exe"), Builtins: []discovery.Builtin{builtinFile}}
			},
			typ: "builder", lookup: "file",
			want:   view{Type: "builder", Name: "file", Component: "file", Source: "builtin", Path: "/bin/packer"},
			reason: "a provisioner of the same name is another component",
		},
		{
			name: "PACKER_PLUGIN_PATH: earlier wins, and over legacy dirs",
			setup: func(tr *tree) discovery.Options {
				tr.file("work", "packer-builder-foo", 0o755)
				tr.file("p1", "packer-builder-foo", 0o755)
				tr.file("p2", "packer-builder-foo", 0o755)
				return discovery.Options{WorkDir: tr.dir("work"), PluginPath: []string{tr.dir("p1"), "", tr.dir("p2")}}
			},
			typ: "builder", lookup: "foo",
			want: view{Type: "builder", Name: "foo", Component: "foo", Source: "PACKER_PLUGIN_PATH", Path: "p1/packer-builder-foo",
				Shadowed: []string{"PACKER_PLUGIN_PATH: p2/packer-builder-foo", "working directory: work/packer-builder-foo"}},
			reason: "within the list an earlier directory wins, like PATH; an empty element is skipped",
		},
		{
			name: "config file wins over everything",
			setup: func(tr *tree) discovery.Options {
				tr.file("p1", "packer-post-processor-zip", 0o755)
				cfg := filepath.Join(tr.dir("home"), ".packerconfig")
				os.WriteFile(cfg, []byte(`{"post-processors": {"zip": "/dev/null/packer-post-processor-zip"}, "plugin_min_port": 10000}`), 0o644)
				return discovery.Options{PluginPath: []string{tr.dir("p1")}, ConfigFile: cfg}
			},
			typ: "post-processor", lookup: "zip",
			want: view{Type: "post-processor", Name: "zip", Component: "zip", Source: "config file", Path: "/dev/null/packer-post-processor-zip",
				Shadowed: []string{"PACKER_PLUGIN_PATH: p1/packer-post-processor-zip"}},
			reason: "other config keys are ignored; the path is not stat'ed",
		},
		{
			name: "multi-component: NAME-COMPONENT",
			setup: func(tr *tree) discovery.Options {
				tr.file("work", "packer-plugin-amazon", 0o755)
				return discovery.Options{WorkDir: tr.dir("work")}
			},
			typ: "builder", lookup: "amazon-ebs",
			want: view{Type: "builder", Name: "amazon-ebs", Component: "ebs", Source: "working directory", Path: "work/packer-plugin-amazon"},
		},
		{
			name: "multi-component: NAME is the default component",
			setup: func(tr *tree) discovery.Options {
				tr.file("work", "packer-plugin-amazon", 0o755)
				return discovery.Options{WorkDir: tr.dir("work")}
			},
			typ: "post-processor", lookup: "amazon",
			want: view{Type: "post-processor", Name: "amazon", Component: "default", Source: "working directory", Path: "work/packer-plugin-amazon"},
		},
		{
			name: "multi-component: longest prefix first",
			setup: func(tr *tree) discovery.Options {
				tr.file("work", "packer-plugin-amazon", 0o755)
				tr.file("work", "packer-plugin-amazon-ebs", 0o755)
				return discovery.Options{WorkDir: tr.dir("work")}
			},
			typ: "builder", lookup: "amazon-ebs-volume",
			want: view{Type: "builder", Name: "amazon-ebs-volume", Component: "volume", Source: "working directory", Path: "work/packer-plugin-amazon-ebs"},
		},
		{
			name: "single-component binary before multi-component",
			setup: func(tr *tree) discovery.Options {
				tr.file("work", "packer-plugin-amazon", 0o755)
				tr.file("exe", "packer-builder-amazon-ebs", 0o755)
				return discovery.Options{ExeDir: tr.dir("exe"), WorkDir: tr.dir("work")}
			},
			typ: "builder", lookup: "amazon-ebs",
			want:   view{Type: "builder", Name: "amazon-ebs", Component: "amazon-ebs", Source: "executable directory", Path: "exe/packer-builder-amazon-ebs"},
			reason: "single-component entries are checked first, whatever their directory",
		},
		{
			name: "multi-component overrides builtin",
			setup: func(tr *tree) discovery.Options {
				tr.file("work", "packer-plugin-file", 0o755)
				return discovery.Options{WorkDir: tr.dir("work"), Builtins: []discovery.Builtin{builtinFile}}
			},
			typ: "builder", lookup: "file",
			want: view{Type: "builder", Name: "file", Component: "default", Source: "working directory", Path: "work/packer-plugin-file",
				Shadowed: []string{"builtin: /bin/packer"}},
		},
		{
			name: "same directory twice does not shadow itself",
			setup: func(tr *tree) discovery.Options {
				tr.file("d", "packer-builder-foo", 0o755)
				tr.file("home/.packer.d/plugins", "packer-builder-foo", 0o755)
				return discovery.Options{ExeDir: tr.dir("d"), HomeDir: tr.dir("home"), WorkDir: tr.dir("d")}
			},
			typ: "builder", lookup: "foo",
			want: view{Type: "builder", Name: "foo", Component: "foo", Source: "working directory", Path: "d/packer-builder-foo",
				Shadowed: []string{"~/.packer.d/plugins: home/.packer.d/plugins/packer-builder-foo"}},
			reason: "the working directory is also the executable directory: its binary wins over home's and is listed once",
		},
		{
			name: "symlink to an executable",
			setup: func(tr *tree) discovery.Options {
				target := tr.file("bin", "real-binary", 0o755)
				os.Symlink(target, filepath.Join(tr.dir("work"), "packer-provisioner-link"))
				return discovery.Options{WorkDir: tr.dir("work")}
			},
			typ: "provisioner", lookup: "link",
			want: view{Type: "provisioner", Name: "link", Component: "link", Source: "working directory", Path: "work/packer-provisioner-link"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			cat, err := discovery.Discover(tt.setup(tr))
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			e, err := cat.Lookup(tt.typ, tt.lookup)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if diff := cmp.Diff(tt.want, tr.view(e)); diff != "" {
				t.Errorf("Lookup(%q, %q) (-want +got):\n%s\nreason: %s", tt.typ, tt.lookup, diff, tt.reason)
			}
			if e.Source != discovery.SourceBuiltin && (len(e.Args) != 1 || e.Args[0] != e.Path) {
				t.Errorf("Args = %q, want [Path]", e.Args)
			}
			if len(cat.Warnings) > 0 {
				t.Errorf("unexpected warnings: %q", cat.Warnings)
			}
		})
	}
}

func TestSkippedFiles(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	tr.file("work", "packer-builder-noexec", 0o644)
	tr.file("work", "packer-builder-ok", 0o750)
	tr.file("work", "packer-builder-", 0o755)    // no name: not a plugin
	tr.file("work", "packer-frobnicator", 0o755) // unknown kind: not a plugin
	tr.file("work", "README.md", 0o644)
	tr.dir("work/packer-provisioner-adir")
	os.Symlink(filepath.Join(tr.root, "missing"), filepath.Join(tr.dir("work"), "packer-builder-dangling"))
	cat, err := discovery.Discover(discovery.Options{WorkDir: tr.dir("work")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range cat.All() {
		names = append(names, e.Type+"/"+e.Name)
	}
	if diff := cmp.Diff([]string{"builder/ok"}, names); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
	var got []string
	for _, w := range cat.Warnings {
		got = append(got, strings.ReplaceAll(w, tr.root+string(filepath.Separator), ""))
	}
	want := []string{
		"skipping work/packer-builder-dangling: stat",
		"skipping work/packer-builder-noexec: not executable (mode -rw-r--r--); chmod +x it to use it",
		"skipping work/packer-provisioner-adir: it is a directory",
	}
	for i := range got {
		if i < len(want) && strings.HasPrefix(got[i], want[i]) {
			got[i] = want[i]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
}

func TestUnreadableDirectory(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	tr.file("locked", "packer-builder-hidden", 0o755)
	tr.file("work", "packer-builder-seen", 0o755)
	locked := tr.dir("locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	if _, err := os.ReadDir(locked); err == nil {
		t.Skip("running as a user who can read a mode 000 directory (root)")
	}
	cat, err := discovery.Discover(discovery.Options{ExeDir: locked, WorkDir: tr.dir("work")})
	if err != nil {
		t.Fatalf("an unreadable directory must not fail discovery: %v", err)
	}
	if len(cat.Warnings) != 1 || !strings.HasPrefix(cat.Warnings[0], "cannot read "+locked+" (executable directory): ") {
		t.Errorf("Warnings = %q, want one about %s", cat.Warnings, locked)
	}
	if _, err := cat.Lookup("builder", "seen"); err != nil {
		t.Errorf("other directories must still be read: %v", err)
	}
}

func TestMissingDirectoriesAreFine(t *testing.T) {
	tr := newTree(t)
	missing := filepath.Join(tr.root, "nope")
	cat, err := discovery.Discover(discovery.Options{ExeDir: missing, HomeDir: missing, WorkDir: missing,
		PluginPath: []string{missing}, ConfigFile: filepath.Join(missing, ".packerconfig")})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Warnings) != 0 || len(cat.All()) != 0 {
		t.Errorf("got warnings %q and entries %v, want none", cat.Warnings, cat.All())
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"relative path", `{"builders": {"dev": "bin/packer-builder-dev"}, "provisioners": {"p": "./p"}}`,
			`builders.dev: path "bin/packer-builder-dev" is not absolute; provisioners.p: path "./p" is not absolute`},
		{"malformed", `{"builders": `, "unexpected end of JSON input"},
		{"wrong shape", `{"builders": ["x"]}`, "cannot unmarshal array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "packerconfig")
			if err := os.WriteFile(cfg, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := discovery.Discover(discovery.Options{ConfigFile: cfg})
			if !errors.Is(err, discovery.ErrConfig) {
				t.Fatalf("Discover error = %v, want one wrapping ErrConfig", err)
			}
			if !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and contain %q", err, cfg, tt.want)
			}
		})
	}
}

func TestLookupNotFound(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	tr.file("work", "packer-builder-alpha", 0o755)
	tr.file("work", "packer-provisioner-beta", 0o755)
	tr.file("work", "packer-plugin-multi", 0o755)
	cat, err := discovery.Discover(discovery.Options{WorkDir: tr.dir("work"), Builtins: []discovery.Builtin{builtinFile}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cat.Lookup("builder", "gamma")
	if !errors.Is(err, discovery.ErrNotFound) {
		t.Fatalf("Lookup error = %v, want ErrNotFound", err)
	}
	want := fmt.Sprintf(`plugin not found: no builder named "gamma"; available: alpha (working directory), file (builtin), multi-* (packer-plugin-multi, working directory); looked in: %s (working directory)`, tr.dir("work"))
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestAll(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	tr.file("exe", "packer-builder-file", 0o755)
	tr.file("work", "packer-provisioner-shell", 0o755)
	tr.file("work", "packer-plugin-amazon", 0o755)
	tr.file("exe", "packer-plugin-amazon", 0o755)
	cat, err := discovery.Discover(discovery.Options{ExeDir: tr.dir("exe"), WorkDir: tr.dir("work"), Builtins: []discovery.Builtin{
		builtinFile, {Type: "post-processor", Name: "manifest", Args: []string{"/bin/packer", "plugin", "packer-post-processor-manifest"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []view
	for _, e := range cat.All() {
		got = append(got, tr.view(e))
	}
	want := []view{
		{Type: "builder", Name: "file", Component: "file", Source: "executable directory", Path: "exe/packer-builder-file", Shadowed: []string{"builtin: /bin/packer"}},
		{Type: "plugin", Name: "amazon", Source: "working directory", Path: "work/packer-plugin-amazon", Shadowed: []string{"executable directory: exe/packer-plugin-amazon"}},
		{Type: "post-processor", Name: "manifest", Component: "manifest", Source: "builtin", Path: "/bin/packer"},
		{Type: "provisioner", Name: "shell", Component: "shell", Source: "working directory", Path: "work/packer-provisioner-shell"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
}

func TestParseName(t *testing.T) {
	type result struct {
		Typ, Name string
		OK        bool
	}
	tests := []struct {
		file    string
		windows bool
		want    result
	}{
		{"packer-builder-amazon-ebs", false, result{"builder", "amazon-ebs", true}},
		{"packer-provisioner-shell", false, result{"provisioner", "shell", true}},
		{"packer-post-processor-compress", false, result{"post-processor", "compress", true}},
		{"packer-plugin-amazon", false, result{"plugin", "amazon", true}},
		{"packer-builder-foo.exe", false, result{"builder", "foo.exe", true}},
		{"packer-builder-foo.exe", true, result{"builder", "foo", true}},
		{"packer-plugin-bar.EXE", true, result{"plugin", "bar", true}},
		{"packer-builder-foo", true, result{}},
		{"packer-builder-.exe", true, result{}},
		{"packer-builder-", false, result{}},
		{"packer-post-processor", false, result{}},
		{"packer", false, result{}},
		{"packer.exe", true, result{}},
		{"packer-thing-x", false, result{}},
		{"xpacker-builder-x", false, result{}},
	}
	for _, tt := range tests {
		typ, name, ok := discovery.ParseName(tt.file, tt.windows)
		if diff := cmp.Diff(tt.want, result{typ, name, ok}); diff != "" {
			t.Errorf("ParseName(%q, windows=%v) (-want +got):\n%s", tt.file, tt.windows, diff)
		}
	}
}

func TestDefaultOptions(t *testing.T) {
	env := map[string]string{
		"HOME":               "/home/u",
		"PACKER_PLUGIN_PATH": strings.Join([]string{"/a", "/b"}, string(os.PathListSeparator)),
		"PACKER_CONFIG":      "/etc/packer.json",
	}
	o, err := discovery.DefaultOptions(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	want := discovery.Options{ExeDir: filepath.Dir(exe), HomeDir: "/home/u", WorkDir: wd, PluginPath: []string{"/a", "/b"}, ConfigFile: "/etc/packer.json"}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("DefaultOptions (-want +got):\n%s", diff)
	}
	delete(env, "PACKER_CONFIG")
	if o, _ = discovery.DefaultOptions(func(k string) string { return env[k] }); runtime.GOOS != "windows" && o.ConfigFile != filepath.Join("/home/u", ".packerconfig") {
		t.Errorf("ConfigFile = %q, want ~/.packerconfig", o.ConfigFile)
	}
}

// BenchmarkDiscoverLargeDir measures discovery with 10,000 unrelated files
// in the working directory and 200 plugins in a PACKER_PLUGIN_PATH
// directory.
func BenchmarkDiscoverLargeDir(b *testing.B) {
	tr := newTree(b)
	work := tr.dir("work")
	for i := range 10000 {
		if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("file-%05d.txt", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	suffix := ""
	if runtime.GOOS == "windows" {
		suffix = ".exe"
	}
	kinds := []string{"builder", "provisioner", "post-processor", "plugin"}
	for i := range 200 {
		tr.file("plugins", fmt.Sprintf("packer-%s-p%03d%s", kinds[i%4], i, suffix), 0o755)
	}
	o := discovery.Options{WorkDir: work, PluginPath: []string{tr.dir("plugins")}}
	b.ResetTimer()
	for b.Loop() {
		cat, err := discovery.Discover(o)
		if err != nil || len(cat.All()) != 200 {
			b.Fatalf("Discover: %v, %d entries", err, len(cat.All()))
		}
	}
}
