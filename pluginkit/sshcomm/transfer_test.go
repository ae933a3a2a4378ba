package sshcomm_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

var methods = []sshcomm.TransferMethod{sshcomm.SCP, sshcomm.SFTP}

// bigSize is the size of the file TestUploadDownloadChecksum moves: 4 MiB,
// or 256 MiB with SSHCOMM_BIG=1.
func bigSize() int64 {
	if os.Getenv("SSHCOMM_BIG") != "" {
		return 256 << 20
	}
	return 4 << 20
}

// randomReader is n deterministic pseudo-random bytes.
func randomReader(n int64, seed uint64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n)
}

func sum(r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestUploadDownloadChecksum moves a file up and back down with each
// method, with the size known and unknown, and compares checksums. The
// server runs on this machine, so the uploaded file is checked on disk
// too.
func TestUploadDownloadChecksum(t *testing.T) {
	srv := sshdtest.Start(t)
	size := bigSize()
	want := sum(randomReader(size, 1))
	for _, m := range methods {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/size known %v", m, known), func(t *testing.T) {
				c := connect(t, config(srv, m))
				remote := filepath.Join(t.TempDir(), "big.bin")
				n := size
				if !known {
					n = -1
				}
				if err := c.Upload(context.Background(), remote, randomReader(size, 1), 0o640, n); err != nil {
					t.Fatalf("Upload: %v", err)
				}
				fi, err := os.Stat(remote)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != size || fi.Mode().Perm() != 0o640 {
					t.Errorf("remote file: size %d mode %v, want %d -rw-r-----", fi.Size(), fi.Mode(), size)
				}
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(c.Download(context.Background(), remote, pw)) }()
				if got := sum(pr); got != want {
					t.Errorf("downloaded checksum %s, want %s", got, want)
				}
			})
		}
	}
}

func TestDownloadMissingFileNamesIt(t *testing.T) {
	srv := sshdtest.Start(t)
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			c := connect(t, config(srv, m))
			missing := filepath.Join(t.TempDir(), "missing")
			err := c.Download(context.Background(), missing, io.Discard)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(missing)) {
				t.Errorf("Download of a missing file: error %v, want one naming %s", err, missing)
			}
		})
	}
}

// tree describes the entries under dir: "dir 0750", "file 0600 <content>",
// "link -> target".
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "link -> " + target
		case fi.IsDir():
			got[rel] = fmt.Sprintf("dir %04o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = fmt.Sprintf("file %04o %s", fi.Mode().Perm(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sampleDir makes a directory with modes, nesting, an empty directory and
// a symbolic link.
func sampleDir(t *testing.T) string {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub", "deep"), 0o755))
	must(os.Mkdir(filepath.Join(dir, "empty"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "sub", "deep", "data.txt"), []byte("data"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "skip.tmp"), []byte("excluded"), 0o644))
	must(os.Symlink("sub/deep/data.txt", filepath.Join(dir, "link")))
	must(os.Chmod(filepath.Join(dir, "sub"), 0o750))
	return dir
}

func TestDirectoriesKeepModesAndLinks(t *testing.T) {
	srv := sshdtest.Start(t)
	src := sampleDir(t)
	want := tree(t, src)
	delete(want, "skip.tmp")
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			c := connect(t, config(srv, m))
			remote := filepath.Join(t.TempDir(), "remote", "dir")
			arch := pluginkit.ArchiveDir(src, nil)
			defer arch.Close()
			if err := c.UploadDir(context.Background(), remote, arch, []string{"*.tmp"}); err != nil {
				t.Fatalf("UploadDir: %v", err)
			}
			if diff := cmp.Diff(want, tree(t, remote)); diff != "" {
				t.Errorf("uploaded tree (-want +got)\n%s", diff)
			}

			back := t.TempDir()
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(c.DownloadDir(context.Background(), remote, pw, []string{"secret"})) }()
			if err := pluginkit.ExtractArchive(pr, back); err != nil {
				t.Fatalf("DownloadDir then extract: %v", err)
			}
			wantBack := maps(want)
			delete(wantBack, "secret")
			if m == sshcomm.SCP {
				// reason: the scp protocol has no links; scp -r sends the
				// file a link points to.
				wantBack["link"] = "file 0644 data"
			}
			if diff := cmp.Diff(wantBack, tree(t, back)); diff != "" {
				t.Errorf("downloaded tree (-want +got)\n%s", diff)
			}
		})
	}
}

func maps(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// tarOf builds an archive of the given entries.
func tarOf(t *testing.T, entries ...*tar.Header) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, h.Name)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestUploadDirRefusesEntriesOutsideTheDestination(t *testing.T) {
	srv := sshdtest.Start(t)
	tests := []struct {
		name  string
		entry *tar.Header
	}{
		{"dot-dot", &tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"absolute", &tar.Header{Name: "/tmp/escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"link to an absolute path", &tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
		{"link leading outside", &tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}},
		{"hard link", &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"}},
	}
	for _, m := range methods {
		c := connect(t, config(srv, m))
		for _, tt := range tests {
			t.Run(string(m)+"/"+tt.name, func(t *testing.T) {
				base := t.TempDir()
				remote := filepath.Join(base, "dst")
				err := c.UploadDir(context.Background(), remote, tarOf(t, tt.entry), nil)
				if !errors.Is(err, sshcomm.ErrUnsafe) {
					t.Errorf("UploadDir: error %v, want ErrUnsafe", err)
				}
				if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
					t.Errorf("an entry was written outside the destination")
				}
			})
		}
	}
	t.Run("sftp/through an existing link", func(t *testing.T) {
		c := connect(t, config(srv, sshcomm.SFTP))
		base := t.TempDir()
		outside := t.TempDir()
		remote := filepath.Join(base, "dst")
		if err := os.MkdirAll(remote, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(remote, "out")); err != nil {
			t.Fatal(err)
		}
		err := c.UploadDir(context.Background(), remote, tarOf(t, &tar.Header{Name: "out/f", Typeflag: tar.TypeReg, Mode: 0o644}), nil)
		if !errors.Is(err, sshcomm.ErrUnsafe) {
			t.Errorf("UploadDir: error %v, want ErrUnsafe", err)
		}
		if _, err := os.Stat(filepath.Join(outside, "f")); err == nil {
			t.Errorf("a file was written through the link")
		}
	})
}

func TestUploadSpecialModes(t *testing.T) {
	srv := sshdtest.Start(t)
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			c := connect(t, config(srv, m))
			remote := filepath.Join(t.TempDir(), "tool")
			if err := c.Upload(context.Background(), remote, bytes.NewReader([]byte("x")), 0o755|fs.ModeSetgid, 1); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(remote)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strconv.FormatUint(uint64(fi.Mode()&(fs.ModePerm|fs.ModeSetgid)), 8), strconv.FormatUint(uint64(0o755|fs.ModeSetgid), 8); got != want {
				t.Errorf("mode %v, want -rwxr-sr-x", fi.Mode())
			}
		})
	}
}

// TestSCPRefusesLineBreaksInNames: the scp protocol's records are lines, so
// a name with a line break cannot travel (SFTP carries it).
func TestSCPRefusesLineBreaksInNames(t *testing.T) {
	srv := sshdtest.Start(t)
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			c := connect(t, config(srv, m))
			remote := filepath.Join(t.TempDir(), "dst")
			err := c.UploadDir(context.Background(), remote, tarOf(t, &tar.Header{Name: "a\nb", Typeflag: tar.TypeReg, Mode: 0o644}), nil)
			if m == sshcomm.SCP {
				if err == nil || !strings.Contains(err.Error(), "line break") {
					t.Errorf("UploadDir: error %v, want one about the line break", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("UploadDir: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(remote, "a\nb")); err != nil || string(b) != "a\nb" {
				t.Errorf("uploaded file: %q, %v", b, err)
			}
		})
	}
}
