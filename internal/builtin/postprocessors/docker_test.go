package postprocessors_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/internal/builtin/postprocessors"
	"github.com/packer-stdio/packer/internal/dockertest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

func registerDocker(s *pluginkit.Server) {
	s.RegisterPostProcessor("docker-tag", new(postprocessors.DockerTag))
	s.RegisterPostProcessor("docker-import", new(postprocessors.DockerImport))
	s.RegisterPostProcessor("docker-save", new(postprocessors.DockerSave))
}

// TestDockerConfig checks the docker post-processors' configurations; no
// engine is needed (their runs are in cmd/packer's docker scripts and the
// conformance test).
func TestDockerConfig(t *testing.T) {
	p := bttest.Start(t, registerDocker, host.Options{})
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"docker-tag", map[string]any{}, []string{"/repository: missing required key"}},
		{"docker-tag", map[string]any{"repository": "r", "tags": []string{"ok", "a:b", ""}}, []string{`/tags/1: "a:b" is not a tag`, `/tags/2: "" is not a tag`}},
		{"docker-import", map[string]any{"repository": "r", "tag": "x/y", "changes": []string{"FROM scratch"}, "platform": "/"},
			[]string{`/tag: "x/y" is not a tag`, `/changes/0: "FROM scratch": the instruction must be one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR`, `/platform: platform "/": want os[/arch[/variant]]`}},
		{"docker-save", map[string]any{"path": ""}, []string{"/path: must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypePostProcessor, tt.name, tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDockerArtifactTypes checks that each docker post-processor refuses
// artifacts it cannot use, as Packer's do, before contacting the engine.
func TestDockerArtifactTypes(t *testing.T) {
	p := bttest.Start(t, registerDocker, host.Options{})
	in := protocol.Artifact{BuilderID: "packer.file", ID: "input", Files: []string{"/nonexistent"}}
	tests := []struct {
		name   string
		config map[string]any
		want   string
	}{
		{"docker-tag", map[string]any{"repository": "r"}, `docker-tag: unknown artifact type "packer.file"`},
		{"docker-import", map[string]any{"repository": "r"}, `docker-import: unknown artifact type "packer.file"`},
		{"docker-save", map[string]any{"path": "out.tar"}, `docker-save: unknown artifact type "packer.file"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := postProcess(t, p, tt.name, tt.config, in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PostProcess error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestDockerTagDestroy tags an image twice; destroying the artifact
// removes both tags and leaves the image.
func TestDockerTagDestroy(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	repo := "packer-test-out-" + dockertest.ID()
	t.Cleanup(func() {
		dockertest.RemoveImage(t, cli, repo+":a")
		dockertest.RemoveImage(t, cli, repo+":b")
	})
	p := bttest.Start(t, registerDocker, host.Options{})
	in := protocol.Artifact{BuilderID: "packer.post-processor.docker-import", ID: image}
	res, err := postProcess(t, p, "docker-tag", map[string]any{"repository": repo, "tags": []string{"a", "b"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.out.ID != repo+":b" || !res.keep || !res.force {
		t.Errorf("answer: id %q keep %v force %v, want %s:b, keep forced", res.out.ID, res.keep, res.force, repo)
	}
	for _, ref := range []string{repo + ":a", repo + ":b"} {
		if _, err := cli.ImageInspect(context.Background(), ref); err != nil {
			t.Errorf("after tagging: %v", err)
		}
	}
	if err := p.DestroyArtifact(context.Background(), res.out); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{repo + ":a", repo + ":b"} {
		if _, err := cli.ImageInspect(context.Background(), ref); err == nil {
			t.Errorf("after destroy: %s still exists", ref)
		}
	}
	if _, err := cli.ImageInspect(context.Background(), image); err != nil {
		t.Errorf("after destroy, the tagged image is gone: %v", err)
	}
}
