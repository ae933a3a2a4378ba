package builders_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/builders"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

func registerDocker(s *pluginkit.Server) { s.RegisterBuilder("docker", new(builders.Docker)) }

// TestDockerBuilderConfig checks the docker builder's configuration, which
// needs no engine: Prepare does not contact it.
func TestDockerBuilderConfig(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.tar")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := bttest.Start(t, registerDocker, host.Options{})
	tests := []struct {
		name   string
		config map[string]any
		want   []string // config errors; nil: accepted
		warn   []string
	}{
		{name: "commit", config: map[string]any{"image": "busybox", "commit": true}},
		{name: "no image", config: map[string]any{"commit": true}, want: []string{"/image: missing required key"}},
		{name: "none of commit, export_path, discard", config: map[string]any{"image": "i"},
			want: []string{"/commit: one of commit, export_path or discard is required", "/discard: one of commit, export_path or discard is required", "/export_path: one of commit, export_path or discard is required"}},
		{name: "two of them", config: map[string]any{"image": "i", "commit": true, "export_path": filepath.Join(dir, "x.tar")},
			want: []string{"/commit: only one of commit, export_path and discard may be set; commit and export_path are set", "/export_path: only one of commit, export_path and discard may be set; commit and export_path are set"}},
		{name: "existing export_path", config: map[string]any{"image": "i", "export_path": existing},
			want: []string{"/export_path: " + existing + " already exists (packer build -force overwrites it)"}},
		{name: "existing export_path with -force", config: map[string]any{"image": "i", "export_path": existing, "packer_force": true}},
		{name: "changes", config: map[string]any{"image": "i", "commit": true, "changes": []string{"cmd [\"x\"]", "RUN x", "ENV"}},
			want: []string{
				`/changes/1: "RUN x": the instruction must be one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR`,
				`/changes/2: "ENV": ENV needs arguments`,
			}},
		{name: "changes without commit", config: map[string]any{"image": "i", "discard": true, "changes": []string{"CMD x"}, "message": "m"},
			warn: []string{"changes are applied only with commit: they are ignored", "message and author are used only with commit: they are ignored"}},
		{name: "run_command flag", config: map[string]any{"image": "i", "discard": true, "run_command": []string{"-d", "--rm", "{{.Image}}"}},
			want: []string{"/run_command: docker run flag --rm is not supported by the docker builder (supported: " +
				"--add-host --cap-add --cap-drop --detach --device --dns --entrypoint --env --hostname --init --interactive --label --memory --name --net --platform --privileged --read-only --runtime --security-opt --shm-size --tmpfs --tty --user --volume --workdir)"}},
		{name: "paths", config: map[string]any{"image": "i", "discard": true, "container_dir": "rel", "tmpfs": []string{"run"}, "device": []string{"/a:/b:q"}, "volumes": map[string]string{"/h": "c"}},
			want: []string{
				`/container_dir: "rel" must be an absolute path`,
				`/tmpfs/0: tmpfs "run": the path must be absolute`,
				`/device/0: device "/a:/b:q": permissions "q" must be made of r, w and m`,
				`/volumes: container path "c" must be absolute`,
			}},
		{name: "platform", config: map[string]any{"image": "i", "discard": true, "platform": "linux//arm"}, want: []string{`/platform: platform "linux//arm": want os[/arch[/variant]]`}},
		{name: "communicator", config: map[string]any{"image": "i", "discard": true, "communicator": "ssh"},
			want: []string{"/communicator: value must be one of 'docker', 'none'"}},
		{name: "Packer-only key", config: map[string]any{"image": "i", "discard": true, "login": true}, want: []string{"/login: unknown key"}},
		{name: "docker_path", config: map[string]any{"image": "i", "discard": true, "docker_path": "/usr/bin/docker"},
			warn: []string{"docker_path is ignored: the docker builder talks to the Engine API, not the docker CLI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warn, err := p.Prepare(context.Background(), protocol.TypeBuilder, "docker", tt.config)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				if diff := cmp.Diff(tt.warn, warn, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("warnings (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, protocol.ErrConfigInvalid) {
				t.Fatalf("Prepare error = %v, want ErrConfigInvalid", err)
			}
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}
