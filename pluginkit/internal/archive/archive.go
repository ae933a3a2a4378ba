// Package archive writes and extracts the tar streams that directory
// transfers use. Entry names are relative, slash-separated, with no leading
// "./"; directories end in "/".
package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Excluded reports whether the entry name (slash-separated, relative, no
// trailing "/") matches one of the glob patterns (path.Match), or lies
// under a directory that does.
func Excluded(name string, exclude []string) bool {
	for _, pat := range exclude {
		pat = strings.TrimSuffix(pat, "/")
		for p := name; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			if ok, _ := path.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

// Write writes a tar stream of the contents of dir to w: directories,
// regular files and symbolic links (stored as links, not followed), skipping
// excluded entries. It does not close w.
func Write(w io.Writer, dir string, exclude []string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		if Excluded(name, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, devices, pipes: not transferred
		}
		hdr, err := tar.FileInfoHeader(info, filepath.ToSlash(link))
		if err != nil {
			return err
		}
		hdr.Name = name
		hdr.Uname, hdr.Gname = "", ""
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// ErrUnsafe is returned for an entry that would be written outside the
// destination directory.
var ErrUnsafe = errors.New("archive entry escapes the destination")

// Extract reads a tar stream from r and creates its entries under dir,
// which it creates if needed, skipping excluded entries. It refuses entries
// whose names are absolute or contain "..", symbolic links whose targets
// are absolute or lead outside dir, hard links and special files, and never
// writes through a symbolic link that leads outside dir (all writes go
// through an os.Root).
func Extract(r io.Reader, dir string, exclude []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "" || name == "." {
			continue
		}
		local := filepath.FromSlash(name)
		if strings.Contains(hdr.Name, "\\") || !filepath.IsLocal(local) || path.IsAbs(hdr.Name) {
			return fmt.Errorf("%w: %q", ErrUnsafe, hdr.Name)
		}
		if Excluded(path.Clean(name), exclude) {
			continue
		}
		if err := extractOne(root, tr, hdr, local); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
	}
}

func extractOne(root *os.Root, tr *tar.Reader, hdr *tar.Header, local string) error {
	mode := fs.FileMode(hdr.Mode).Perm()
	if parent := filepath.Dir(local); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(local, 0o755); err != nil {
			return err
		}
		return root.Chmod(local, mode|0o700)
	case tar.TypeReg:
		if fi, err := root.Lstat(local); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if err := root.Remove(local); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return root.Chmod(local, mode)
	case tar.TypeSymlink:
		target := filepath.FromSlash(hdr.Linkname)
		if filepath.IsAbs(target) || path.IsAbs(hdr.Linkname) ||
			!filepath.IsLocal(filepath.Join(filepath.Dir(local), target)) {
			return fmt.Errorf("%w: link to %q", ErrUnsafe, hdr.Linkname)
		}
		if _, err := root.Lstat(local); err == nil {
			if err := root.Remove(local); err != nil {
				return err
			}
		}
		return root.Symlink(target, local)
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
}
