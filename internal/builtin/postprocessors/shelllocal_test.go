package postprocessors_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

func TestShellLocal(t *testing.T) {
	dir := t.TempDir()
	in := inputArtifact(t, dir, map[string]string{"a": "", "b": ""}, "a", "b")
	ui := bttest.NewUI()
	p := bttest.Start(t, register, host.Options{UI: ui})
	res, err := postProcess(t, p, "shell-local", map[string]any{
		"inline":           []string{`echo "$PACKER_ARTIFACT_FILES"`, `echo "$PACKER_ARTIFACT_ID $PACKER_BUILD_NAME $PACKER_BUILDER_TYPE $X"`},
		"environment_vars": []string{"X=y"},
	}, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(result{out: &in, keep: true, force: true}, res, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	want := []string{"message: " + strings.Join(in.Files, " "), "message: input web file y"}
	if diff := cmp.Diff(want, ui.Lines("message")); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestShellLocalFails(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	_, err := postProcess(t, p, "shell-local", map[string]any{"command": "exit 5"}, protocol.Artifact{})
	if !errors.Is(err, protocol.ErrComponentFailed) || !strings.Contains(err.Error(), "exited with status 5") {
		t.Errorf("PostProcess error = %v, want a failure naming status 5", err)
	}
}
