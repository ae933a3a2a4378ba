package postprocessors_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

func TestArtifice(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, dir, map[string]string{"in.img": "x", "new/a": "A", "new/b": "B"}, "in.img")
	a, b := filepath.Join(dir, "new/a"), filepath.Join(dir, "new/b")
	ui := bttest.NewUI()
	p := bttest.Start(t, register, host.Options{UI: ui})
	res, err := postProcess(t, p, "artifice", map[string]any{"files": []string{a, b}}, in)
	if err != nil {
		t.Fatal(err)
	}
	want := result{out: &protocol.Artifact{Handle: res.out.Handle, BuilderID: "packer.post-processor.artifice", Files: []string{a, b},
		String: "Created artifact from files: " + a + ", " + b}, keep: true}
	if diff := cmp.Diff(want, res, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	wantUI := []string{"say: Discarding files from artifact: " + in.Files[0], "say: Using these artifact files: " + a + ", " + b}
	if diff := cmp.Diff(wantUI, ui.Lines()); diff != "" {
		t.Errorf("ui (-want +got):\n%s", diff)
	}
	if err := p.DestroyArtifact(context.Background(), res.out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"in.img": "x", "new/": ""}, bttest.Tree(t, dir)); diff != "" {
		t.Errorf("after destroy (-want +got):\n%s", diff)
	}
}

func TestArtificeErrors(t *testing.T) {
	dir := t.TempDir()
	p := bttest.Start(t, register, host.Options{})
	_, _, err := p.Prepare(context.Background(), protocol.TypePostProcessor, "artifice", map[string]any{"files": []string{}})
	if diff := cmp.Diff([]string{"/files: minItems: got 0, want 1"}, bttest.ConfigErrors(err)); diff != "" {
		t.Errorf("config errors (-want +got):\n%s", diff)
	}
	_, err = postProcess(t, p, "artifice", map[string]any{"files": []string{filepath.Join(dir, "missing")}}, protocol.Artifact{})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("PostProcess error = %v, want one about the missing file", err)
	}
}
