package pluginkit_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
)

// tree lists dir as "name mode [-> link | content]" lines.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		line := filepath.ToSlash(rel) + " " + info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestArchiveRoundTrip(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "sub", "deep", "b.txt"), []byte("b"), 0o600))
	must(t, os.WriteFile(filepath.Join(src, "skip.log"), []byte("x"), 0o644))
	must(t, os.MkdirAll(filepath.Join(src, "cache"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "cache", "c"), []byte("c"), 0o644))
	must(t, os.Symlink("sub/deep/b.txt", filepath.Join(src, "link")))

	r := pluginkit.ArchiveDir(src, []string{"*.log", "cache"})
	dst := filepath.Join(t.TempDir(), "new")
	if err := pluginkit.ExtractArchive(r, dst); err != nil {
		t.Fatal(err)
	}
	r.Close()
	want := []string{
		"a.txt -rw-r--r-- a", "link Lrwxrwxrwx -> sub/deep/b.txt", "run.sh -rwxr-xr-x #!/bin/sh",
		"sub drwxr-xr-x", "sub/deep drwxr-xr-x", "sub/deep/b.txt -rw------- b",
	}
	if diff := cmp.Diff(want, tree(t, dst)); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}
}

func TestArchiveDirMissing(t *testing.T) {
	r := pluginkit.ArchiveDir(filepath.Join(t.TempDir(), "nope"), nil)
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want fs.ErrNotExist", err)
	}
}

type entry struct {
	name, link string
	typ        byte
}

func tarOf(t *testing.T, entries ...entry) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644}
		if e.typ == tar.TypeReg {
			hdr.Size = 1
		}
		must(t, tw.WriteHeader(hdr))
		if e.typ == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	must(t, tw.Close())
	return &buf
}

func TestExtractRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		reason  string
	}{
		{name: "dot-dot", entries: []entry{{name: "../evil", typ: tar.TypeReg}}},
		{name: "nested dot-dot", entries: []entry{{name: "a/../../evil", typ: tar.TypeReg}}},
		{name: "absolute", entries: []entry{{name: "/tmp/evil", typ: tar.TypeReg}}},
		{name: "symlink to absolute", entries: []entry{{name: "l", link: "/etc", typ: tar.TypeSymlink}}},
		{name: "symlink upwards", entries: []entry{{name: "d/l", link: "../../x", typ: tar.TypeSymlink}}},
		{name: "write through an escaping link", reason: "the link is made by hand, not by the archive",
			entries: []entry{{name: "out/evil", typ: tar.TypeReg}}},
		{name: "hard link", entries: []entry{{name: "h", link: "/etc/passwd", typ: tar.TypeLink}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "dst")
			outside := filepath.Join(base, "outside")
			must(t, os.MkdirAll(dst, 0o755))
			must(t, os.MkdirAll(outside, 0o755))
			must(t, os.Symlink(outside, filepath.Join(dst, "out")))
			err := pluginkit.ExtractArchive(tarOf(t, tc.entries...), dst)
			if err == nil {
				t.Errorf("no error; reason: %s", tc.reason)
			}
			if got := tree(t, outside); len(got) > 0 {
				t.Errorf("wrote outside: %v", got)
			}
			if _, err := os.Lstat(filepath.Join(base, "evil")); err == nil {
				t.Error("wrote next to the destination")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
