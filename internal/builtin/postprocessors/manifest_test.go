package postprocessors_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/internal/builtin/postprocessors"
	"github.com/packer-stdio/packer/protocol"
)

func readManifest(t *testing.T, path string) postprocessors.ManifestFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m postprocessors.ManifestFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(postprocessors.EnvRunUUID, "run-1")
	in := inputArtifact(t, dir, map[string]string{"a.img": "12345", "b.img": ""}, "a.img", "b.img")
	p := bttest.Start(t, register, host.Options{})
	out := filepath.Join(dir, "sub", "manifest.json")

	res, err := postProcess(t, p, "manifest", map[string]any{"output": out, "strip_time": true, "custom_data": map[string]string{"k": "v"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(result{out: &in, keep: true}, res, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	t.Setenv(postprocessors.EnvRunUUID, "run-2")
	if _, err := postProcess(t, p, "manifest", map[string]any{"output": out, "strip_path": true}, in); err != nil {
		t.Fatal(err)
	}
	got := readManifest(t, out)
	if got.Builds[1].BuildTime == 0 {
		t.Errorf("second build has no build_time")
	}
	got.Builds[1].BuildTime = 0
	want := postprocessors.ManifestFile{
		Builds: []postprocessors.ManifestBuild{
			{Name: "web", BuilderType: "file", ArtifactID: "input", PackerRunUUID: "run-1", CustomData: map[string]string{"k": "v"},
				Files: []postprocessors.ManifestEntry{{Name: in.Files[0], Size: 5}, {Name: in.Files[1], Size: 0}}},
			{Name: "web", BuilderType: "file", ArtifactID: "input", PackerRunUUID: "run-2",
				Files: []postprocessors.ManifestEntry{{Name: "a.img", Size: 5}, {Name: "b.img", Size: 0}}},
		},
		LastRunUUID: "run-2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(out + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock file left behind: %v", err)
	}
}

// TestManifestJSON checks the exact keys Packer writes.
func TestManifestJSON(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(postprocessors.EnvRunUUID, "u")
	in := inputArtifact(t, dir, map[string]string{"a": "x"}, "a")
	p := bttest.Start(t, register, host.Options{})
	out := filepath.Join(dir, "m.json")
	if _, err := postProcess(t, p, "manifest", map[string]any{"output": out, "strip_time": true, "strip_path": true}, in); err != nil {
		t.Fatal(err)
	}
	var got any
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var want any
	json.Unmarshal([]byte(`{"builds":[{"name":"web","builder_type":"file","files":[{"name":"a","size":1}],
		"artifact_id":"input","packer_run_uuid":"u","custom_data":null}],"last_run_uuid":"u"}`), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest JSON (-want +got):\n%s", diff)
	}
}

func TestManifestDefaultOutput(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	in := inputArtifact(t, dir, map[string]string{"a": "x"}, "a")
	p := bttest.Start(t, register, host.Options{})
	if _, err := postProcess(t, p, "manifest", map[string]any{}, in); err != nil {
		t.Fatal(err)
	}
	if m := readManifest(t, filepath.Join(dir, "packer-manifest.json")); len(m.Builds) != 1 {
		t.Errorf("builds = %d, want 1", len(m.Builds))
	}
}

func TestManifestNotAManifest(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.json")
	os.WriteFile(out, []byte("not json"), 0o644)
	p := bttest.Start(t, register, host.Options{})
	if _, err := postProcess(t, p, "manifest", map[string]any{"output": out}, protocol.Artifact{ID: "x"}); err == nil {
		t.Error("PostProcess succeeded on a corrupt manifest")
	}
	if b, _ := os.ReadFile(out); string(b) != "not json" {
		t.Errorf("corrupt manifest was replaced: %q", b)
	}
}

// TestManifestForce: with -force the manifest holds this run's builds only,
// however many of them there are.
func TestManifestForce(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, dir, map[string]string{"a.img": "1"}, "a.img")
	p := bttest.Start(t, register, host.Options{})
	out := filepath.Join(dir, "manifest.json")
	runs := []struct {
		uuid  string
		force bool
		want  []string // run ids of the records afterwards
	}{
		{"run-1", false, []string{"run-1"}},
		{"run-2", false, []string{"run-1", "run-2"}},
		{"run-3", true, []string{"run-3"}},
		{"run-3", true, []string{"run-3", "run-3"}}, // a second build of the same run stays
	}
	for _, r := range runs {
		t.Setenv(postprocessors.EnvRunUUID, r.uuid)
		if _, err := postProcess(t, p, "manifest", map[string]any{"output": out, "strip_time": true, "packer_force": r.force}, in); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range readManifest(t, out).Builds {
			got = append(got, b.PackerRunUUID)
		}
		if diff := cmp.Diff(r.want, got); diff != "" {
			t.Errorf("after %s (force %v): records (-want +got):\n%s", r.uuid, r.force, diff)
		}
	}
}
