package postprocessors_test

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

// readArchive opens the archive at path as format and returns its members
// as name → contents (directories as "name/" → "").
func readArchive(t *testing.T, path, format string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	var r io.Reader = f
	switch format {
	case "zip":
		fi, _ := f.Stat()
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, zf := range zr.File {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[zf.Name] = string(b)
		}
		return out
	case "gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		out[zr.Name] = string(b)
		return out
	case "tar.gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(b)
	}
}

func TestCompressRoundTrip(t *testing.T) {
	big := strings.Repeat("compressible ", 10000)
	files := map[string]string{"a.txt": "A", "big.txt": big, "d/1.txt": "1", "d/sub/2.txt": "2"}
	all := map[string]string{"a.txt": "A", "big.txt": big, "d/": "", "d/1.txt": "1", "d/sub/": "", "d/sub/2.txt": "2"}
	tests := []struct {
		name   string
		output string
		config map[string]any
		format string
		names  []string
		want   map[string]string
	}{
		{"tar.gz", "out.tar.gz", nil, "tar.gz", []string{"a.txt", "big.txt", "d"}, all},
		{"tgz level 9", "out.tgz", map[string]any{"compression_level": 9}, "tar.gz", []string{"a.txt", "big.txt", "d"}, all},
		{"tar", "out.tar", nil, "tar", []string{"a.txt", "big.txt", "d"}, all},
		{"zip", "out.zip", nil, "zip", []string{"a.txt", "big.txt", "d"}, all},
		{"zip stored", "out.zip", map[string]any{"compression_level": 0}, "zip", []string{"a.txt", "big.txt"}, map[string]string{"a.txt": "A", "big.txt": big}},
		{"gz", "big.txt.gz", nil, "gz", []string{"big.txt"}, map[string]string{"big.txt": big}},
		{"format overrides extension", "out.bin", map[string]any{"format": "zip"}, "zip", []string{"a.txt"}, map[string]string{"a.txt": "A"}},
		{"unknown extension is tar.gz", "out.bin", nil, "tar.gz", []string{"a.txt"}, map[string]string{"a.txt": "A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := inputArtifact(t, filepath.Join(dir, "in"), files, tt.names...)
			cfg := map[string]any{"output": dir + "/out/" + tt.output}
			for k, v := range tt.config {
				cfg[k] = v
			}
			p := bttest.Start(t, register, host.Options{})
			res, err := postProcess(t, p, "compress", cfg, in)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out", tt.output)
			want := &protocol.Artifact{Handle: res.out.Handle, BuilderID: "packer.post-processor.compress", ID: out, Files: []string{out}, String: "compressed artifacts in: " + out}
			if diff := cmp.Diff(want, res.out); diff != "" {
				t.Errorf("artifact (-want +got):\n%s", diff)
			}
			if res.keep || res.force {
				t.Errorf("keep, force = %v, %v; want false, false", res.keep, res.force)
			}
			if diff := cmp.Diff(tt.want, readArchive(t, out, tt.format)); diff != "" {
				t.Errorf("archive members (-want +got):\n%s", diff)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) != 1 {
				t.Errorf("output directory holds %d entries, want only the archive", len(entries))
			}
		})
	}
}

// TestCompressLevel checks that the level matters: 0 stores, 9 shrinks.
func TestCompressLevel(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, dir, map[string]string{"big.txt": strings.Repeat("x", 100000)}, "big.txt")
	p := bttest.Start(t, register, host.Options{})
	size := map[int]int64{}
	for _, level := range []int{0, 9} {
		out := filepath.Join(dir, "l"+string(rune('0'+level))+".gz")
		if _, err := postProcess(t, p, "compress", map[string]any{"output": out, "compression_level": level}, in); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		size[level] = fi.Size()
	}
	if size[0] <= 100000 || size[9] >= 1000 {
		t.Errorf("sizes at level 0 and 9 = %d, %d; want > 100000 and < 1000", size[0], size[9])
	}
}

// TestCompressFailureLeavesNothing checks that a failed run leaves no
// archive and no temporary file.
func TestCompressFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name   string
		output string
		files  []string
		want   string
	}{
		{"gz with two files", "x.gz", []string{"a", "b"}, "holds exactly one file"},
		{"missing file", "x.tar.gz", []string{"a", "missing"}, "no such file"},
		{"same base name", "x.zip", []string{"a", "d/a"}, "would both be stored as a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := inputArtifact(t, filepath.Join(dir, "in"), map[string]string{"a": "A", "b": "B", "d/a": "A2"}, tt.files...)
			p := bttest.Start(t, register, host.Options{})
			_, err := postProcess(t, p, "compress", map[string]any{"output": dir + "/out/" + tt.output}, in)
			if !errors.Is(err, protocol.ErrComponentFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PostProcess error = %v, want a failure with %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) != 0 {
				t.Errorf("output directory holds %d entries, want none", len(entries))
			}
		})
	}
}

func TestCompressConfig(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	tests := []struct {
		name         string
		config       map[string]any
		wantErrs     []string
		wantWarnings int
	}{
		{"level too high", map[string]any{"compression_level": 10}, []string{"/compression_level: maximum: got 10, want 9"}, 0},
		{"bad template", map[string]any{"output": "{{.ChecksumType}}.zip"},
			[]string{`/output: template: output:1:2: executing "output" at <.ChecksumType>: can't evaluate field ChecksumType in type postprocessors.CompressData`}, 0},
		{"unknown extension warns", map[string]any{"output": "x.rar"}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := p.Prepare(context.Background(), protocol.TypePostProcessor, "compress", tt.config)
			if diff := cmp.Diff(tt.wantErrs, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
			if len(warnings) != tt.wantWarnings {
				t.Errorf("warnings = %q, want %d", warnings, tt.wantWarnings)
			}
		})
	}
}

// TestCompressForce: an existing archive is an error without -force and
// replaced with it; a link at the output is refused either way.
func TestCompressForce(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, filepath.Join(dir, "in"), map[string]string{"a": "A"}, "a")
	p := bttest.Start(t, register, host.Options{})
	out := filepath.Join(dir, "x.tar")
	os.WriteFile(out, []byte("old"), 0o644)
	_, err := postProcess(t, p, "compress", map[string]any{"output": out}, in)
	if err == nil || !strings.Contains(err.Error(), "output already exists: "+out+"; run packer build with -force") {
		t.Errorf("without -force: %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(out); string(got) != "old" {
		t.Errorf("archive replaced without -force")
	}
	if _, err := postProcess(t, p, "compress", map[string]any{"output": out, "packer_force": true}, in); err != nil {
		t.Fatalf("with -force: %v", err)
	}
	if got, _ := os.ReadFile(out); string(got) == "old" {
		t.Errorf("archive not replaced with -force")
	}
	link := filepath.Join(dir, "link.tar")
	if err := os.Symlink(out, link); err != nil {
		t.Skip(err)
	}
	_, err = postProcess(t, p, "compress", map[string]any{"output": link, "packer_force": true}, in)
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link; refusing to replace it") {
		t.Errorf("link output: %v, want a refusal", err)
	}
}
