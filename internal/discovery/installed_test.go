package discovery_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/discovery"
)

// installFake installs a fake binary with the given content as
// name/version in the home plugins directory of o.
func installFake(t *testing.T, o discovery.Options, name, version, content string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	path, _, err := discovery.Install(discovery.PluginsDir(o), name, version, src)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInstalledVersions(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	o := discovery.Options{HomeDir: tr.dir("home")}
	installFake(t, o, "notes", "1.2.0", "a")
	installFake(t, o, "notes", "1.10.0", "b")
	installFake(t, o, "notes", "v1.9.3", "c")
	installFake(t, o, "other", "0.1.0", "d")
	// A flat binary in the same directory loses to the versioned install.
	tr.file("home/.packer.d/plugins", "packer-plugin-notes", 0o755)
	// A version directory without its binary is skipped with a warning.
	tr.dir("home/.packer.d/plugins/notes/2.0.0")

	c, err := discovery.Discover(o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range c.Installed() {
		got = append(got, e.Name+" "+e.Version+" "+tr.rel(e.Path))
	}
	want := []string{
		"notes 1.2.0 home/.packer.d/plugins/notes/1.2.0/packer-plugin-notes",
		"notes v1.9.3 home/.packer.d/plugins/notes/v1.9.3/packer-plugin-notes",
		"notes 1.10.0 home/.packer.d/plugins/notes/1.10.0/packer-plugin-notes",
		"other 0.1.0 home/.packer.d/plugins/other/0.1.0/packer-plugin-other",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Installed (-want +got):\n%s", diff)
	}
	e, err := c.Lookup("builder", "notes-dir")
	if err != nil {
		t.Fatal(err)
	}
	gotView := tr.view(e)
	wantView := view{Type: "builder", Name: "notes-dir", Component: "dir", Source: discovery.SourceHome,
		Path:     "home/.packer.d/plugins/notes/1.10.0/packer-plugin-notes",
		Shadowed: []string{discovery.SourceHome + ": home/.packer.d/plugins/packer-plugin-notes"}}
	if diff := cmp.Diff(wantView, gotView); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}
	if e.Version != "1.10.0" {
		t.Errorf("Version = %q, want 1.10.0", e.Version)
	}
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "notes/2.0.0: no packer-plugin-notes in it") {
		t.Errorf("no warning about the empty version directory: %q", c.Warnings)
	}
}

func TestTamperedBinaryIsRefused(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	o := discovery.Options{HomeDir: tr.dir("home")}
	path := installFake(t, o, "notes", "1.0.0", "original")
	c, err := discovery.Discover(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup("builder", "notes-dir"); err != nil {
		t.Fatalf("untouched binary refused: %v", err)
	}
	if err := os.WriteFile(path, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup("builder", "notes-dir")
	if !errors.Is(err, discovery.ErrChecksum) {
		t.Fatalf("Lookup of a tampered binary: %v, want ErrChecksum", err)
	}
	for _, s := range []string{path, "packer plugins install --path", "packer plugins remove notes 1.0.0"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestRemove(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	o := discovery.Options{HomeDir: tr.dir("home")}
	installFake(t, o, "notes", "1.0.0", "a")
	installFake(t, o, "notes", "2.0.0", "b")
	dir := discovery.PluginsDir(o)
	got, err := discovery.Remove(dir, "notes", "1.0.0")
	if err != nil || !cmp.Equal(got, []string{"1.0.0"}) {
		t.Fatalf("Remove one version: %v, %v", got, err)
	}
	if _, err := discovery.Remove(dir, "notes", "1.0.0"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removing it again: %v, want ErrNotExist", err)
	}
	if got, err := discovery.Remove(dir, "notes", ""); err != nil || !cmp.Equal(got, []string{"2.0.0"}) {
		t.Fatalf("Remove all: %v, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty plugin directory left behind: %v", err)
	}
	if _, err := discovery.Remove(dir, "../x", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(../x): %v", err)
	}
}

func TestCache(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	o := discovery.Options{HomeDir: tr.dir("home")}
	path := installFake(t, o, "notes", "1.0.0", "a")
	c, err := discovery.Discover(o)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Installed()[0]
	probes := 0
	probe := func(*discovery.Entry) (discovery.Probed, error) {
		probes++
		return discovery.Probed{Version: "1.0.0", Components: []discovery.ProbedComponent{{Type: "builder", Name: "dir"}}}, nil
	}
	cachePath := discovery.CachePath(o)
	cache := discovery.OpenCache(cachePath)
	if _, err := cache.Lookup(e, probe); err != nil {
		t.Fatal(err)
	}
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}
	// A fresh process reads the file: no probe.
	cache = discovery.OpenCache(cachePath)
	got, err := cache.Lookup(e, probe)
	if err != nil {
		t.Fatal(err)
	}
	if probes != 1 || got.Components[0].Name != "dir" {
		t.Fatalf("after reopening: %d probes, %+v", probes, got)
	}
	// Each part of the key invalidates the entry.
	steps := []struct {
		name   string
		change func()
	}{
		{"size", func() { os.WriteFile(path, []byte("bb"), 0o755) }},
		{"mtime", func() { os.Chtimes(path, time.Time{}, time.Now().Add(time.Hour)) }},
		{"checksum file", func() {
			os.WriteFile(path+discovery.SumSuffix, []byte(strings.Repeat("0", 64)+"  x\n"), 0o644)
		}},
	}
	for _, s := range steps {
		before := probes
		s.change()
		if _, err := cache.Lookup(e, probe); err != nil {
			t.Fatal(err)
		}
		if probes != before+1 {
			t.Errorf("after changing the %s the cache still answered", s.name)
		}
	}
}

func TestValidVersion(t *testing.T) {
	tests := []struct {
		v      string
		ok     bool
		reason string
	}{
		{"1.2.0", true, ""},
		{"v1.2.0", true, "a leading v is accepted, as plugins report it"},
		{"1.0.0-rc.1", true, ""},
		{"1.0.0+build.7", true, ""},
		{"1.2", false, "MAJOR.MINOR.PATCH are all required"},
		{"01.2.3", false, "no leading zeros"},
		{"1.2.3.4", false, ""},
		{"1.0.0-/../../escaped", false, "path separators"},
		{"1.0.0-..", false, ""},
		{"..", false, ""},
		{"1.0.0-rc~1", false, "go-version accepts ~, the safe-character rule does not"},
		{"1.0.0\\..\\x", false, "Windows separators"},
		{"1.0.0 ", false, ""},
		{"", false, ""},
		{"1.0.0-" + strings.Repeat("a", 64), false, "longer than 64"},
	}
	for _, tt := range tests {
		err := discovery.ValidVersion(tt.v)
		if (err == nil) != tt.ok {
			t.Errorf("ValidVersion(%q) = %v, want ok=%t (%s)", tt.v, err, tt.ok, tt.reason)
		}
		if err != nil && !errors.Is(err, discovery.ErrVersion) {
			t.Errorf("ValidVersion(%q) = %v, not ErrVersion", tt.v, err)
		}
	}
}

// TestInstallStaysInside: a NAME directory that is a link out of the
// plugins directory is not written through.
func TestInstallStaysInside(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	outside := tr.dir("outside")
	dir := tr.dir("home/.packer.d/plugins")
	if err := os.Symlink(outside, filepath.Join(dir, "notes")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "bin")
	os.WriteFile(src, []byte("x"), 0o755)
	if _, _, err := discovery.Install(dir, "notes", "1.0.0", src); err == nil {
		t.Fatal("Install through a link out of the plugins directory succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("Install wrote %d entries outside the plugins directory", len(ents))
	}
	if _, _, err := discovery.Install(dir, "other", "1.0.0-/../../../escaped", src); !errors.Is(err, discovery.ErrVersion) {
		t.Errorf("Install with an escaping version: %v, want ErrVersion", err)
	}
}

// TestRemoveDoesNotFollowLinks: remove never deletes through a link.
func TestRemoveDoesNotFollowLinks(t *testing.T) {
	skipOnWindows(t)
	tr := newTree(t)
	o := discovery.Options{HomeDir: tr.dir("home")}
	dir := discovery.PluginsDir(o)
	victim := tr.dir("victim/1.0.0")
	keep := tr.file("victim/1.0.0", "keep", 0o644)
	installFake(t, o, "notes", "1.0.0", "a")
	// NAME is a link; a VERSION is a link; a link inside a version.
	os.Symlink(filepath.Dir(victim), filepath.Join(dir, "linked"))
	os.Symlink(victim, filepath.Join(dir, "notes", "2.0.0"))
	os.Symlink(filepath.Dir(victim), filepath.Join(dir, "notes", "1.0.0", "data"))

	if _, err := discovery.Remove(dir, "linked", ""); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Remove(linked): %v, want a refusal naming the link", err)
	}
	if _, err := discovery.Remove(dir, "notes", "2.0.0"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Remove(notes 2.0.0): %v, want a refusal naming the link", err)
	}
	got, err := discovery.Remove(dir, "notes", "")
	if err != nil || !cmp.Equal(got, []string{"1.0.0"}) {
		t.Errorf("Remove(notes) = %v, %v; want [1.0.0]", got, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file outside the plugins directory was removed: %v", err)
	}
}
