package postprocessors_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

// Digests of "hello world\n" and of the empty string, from md5sum and its
// kin.
var helloDigests = map[string]string{
	"md5":    "6f5902ac237024bdd0c176cb93063dc4",
	"sha1":   "22596363b3de40b06f981fb85d82312e8c0ed511",
	"sha224": "95041dd60ab08c0bf5636d50be85fe9790300f39eb84602858a9b430",
	"sha256": "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447",
	"sha384": "6b3b69ff0a404f28d75e98a066d3fc64fffd9940870cc68bece28545b9a75086b343d7a1366838083e4b8f3ca6fd3c80",
	"sha512": "db3974a97f2407b7cae1ae637c0030687a11913274d578492558e39c16c017de84eacdc8c62fe34ee4e12b4b1428817f09b6a2760c3f8a664ceae94d2434a593",
}

const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

func TestChecksum(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, dir, map[string]string{"in/hello.txt": "hello world\n", "in/empty": ""}, "in/hello.txt", "in/empty")
	p := bttest.Start(t, register, host.Options{})
	types := []string{"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}
	res, err := postProcess(t, p, "checksum", map[string]any{"checksum_types": types, "output": dir + "/sums/{{.BuildName}}-{{.BuilderType}}.{{.ChecksumType}}"}, in)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, typ := range types {
		path := filepath.Join(dir, "sums", "web-file."+typ)
		files = append(files, path)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := helloDigests[typ] + "\thello.txt\n"
		if typ == "md5" {
			want += emptyMD5 + "\tempty\n"
		}
		if typ == "md5" {
			if diff := cmp.Diff(want, string(got)); diff != "" {
				t.Errorf("%s file (-want +got):\n%s", typ, diff)
			}
		} else if diff := cmp.Diff(want, string(got)[:len(want)]); diff != "" {
			t.Errorf("%s file (-want +got):\n%s", typ, diff)
		}
	}
	want := &protocol.Artifact{Handle: res.out.Handle, BuilderID: "packer.post-processor.checksum", Files: files, String: res.out.String}
	if diff := cmp.Diff(want, res.out); diff != "" {
		t.Errorf("artifact (-want +got):\n%s", diff)
	}
	if !res.keep || res.force {
		t.Errorf("keep, force = %v, %v; want true, false", res.keep, res.force)
	}
	if err := p.DestroyArtifact(context.Background(), res.out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"sums/": ""}, filterTree(bttest.Tree(t, dir), "sums/")); diff != "" {
		t.Errorf("after destroy (-want +got):\n%s", diff)
	}
}

// TestChecksumDefaults checks the default type (md5) and Packer's default
// output name, in the working directory, and the -force rule: a second run
// for the same file fails without -force and replaces the line with it.
func TestChecksumDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	in := inputArtifact(t, dir, map[string]string{"hello.txt": "hello world\n"}, "hello.txt")
	p := bttest.Start(t, register, host.Options{})
	if _, err := postProcess(t, p, "checksum", map[string]any{}, in); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "packer_web_file_md5.checksum")
	line := helloDigests["md5"] + "\thello.txt\n"
	check := func(when, want string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("checksum file %s (-want +got):\n%s", when, diff)
		}
	}
	check("after the first run", line)
	_, err := postProcess(t, p, "checksum", map[string]any{}, in)
	if err == nil || !strings.Contains(err.Error(), "already has a checksum of hello.txt from an earlier run; run packer build with -force") {
		t.Errorf("second run without -force: %v, want a refusal", err)
	}
	check("after a refused run", line)
	// Another file of another build is appended; -force replaces only
	// the line of the same file.
	other := inputArtifact(t, dir, map[string]string{"empty": ""}, "empty")
	if _, err := postProcess(t, p, "checksum", map[string]any{}, other); err != nil {
		t.Fatal(err)
	}
	os.WriteFile("hello.txt", []byte("changed"), 0o644)
	if _, err := postProcess(t, p, "checksum", map[string]any{"packer_force": true}, in); err != nil {
		t.Fatal(err)
	}
	check("after -force", emptyMD5+"\tempty\n"+md5Hex("changed")+"\thello.txt\n")
}

func md5Hex(s string) string {
	return fmt.Sprintf("%x", md5.Sum([]byte(s)))
}

// TestChecksumRefusesNonRegular: a device or a link as the output is never
// written, with or without -force.
func TestChecksumRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, dir, map[string]string{"hello.txt": "hello world\n"}, "hello.txt")
	p := bttest.Start(t, register, host.Options{})
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link.sum")
	if err := os.Symlink(victim, link); err != nil {
		t.Skip(err)
	}
	for _, force := range []bool{false, true} {
		_, err := postProcess(t, p, "checksum", map[string]any{"output": link, "packer_force": force}, in)
		if err == nil || !strings.Contains(err.Error(), "is a symbolic link; refusing to replace it") {
			t.Errorf("force=%t: %v, want a refusal", force, err)
		}
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Errorf("the link's target was written: %q", got)
	}
}

func TestChecksumConfigErrors(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"unknown type", map[string]any{"checksum_types": []string{"md5", "crc32"}},
			[]string{"/checksum_types/1: value must be one of 'md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'"}},
		{"bad template", map[string]any{"output": "{{.Nope}}"},
			[]string{`/output: template: output:1:2: executing "output" at <.Nope>: can't evaluate field Nope in type postprocessors.ChecksumData`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypePostProcessor, "checksum", tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}

func filterTree(tree map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range tree {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out[k] = v
		}
	}
	return out
}
