package postprocessors

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/packer-stdio/packer/internal/builtin/internal/dockerapi"
	"github.com/packer-stdio/packer/pluginkit"
)

// DockerSaveConfig is the configuration of [DockerSave].
type DockerSaveConfig struct {
	pluginkit.PackerConfig
	Path       string `json:"path" jsonschema:"required" jsonschema_description:"The tar file to write (docker save format); its parent directories are created."`
	DockerPath string `json:"docker_path,omitempty" jsonschema_description:"Accepted for Packer templates and ignored: the Engine API is used, not the docker CLI."`
}

// DockerSave is the docker-save post-processor: it saves the image of a
// docker builder commit, docker-import or docker-tag (by the artifact's id:
// a tag keeps its name in the archive) to path in the docker save format,
// streamed from the engine through a temporary file renamed when complete.
// Unlike Packer's, which passes its input on, the new artifact is the file
// (builder id "packer.post-processor.docker-save"); destroying it removes
// the file. It asks to keep the input, as Packer's does.
type DockerSave struct {
	config DockerSaveConfig
}

var _ pluginkit.PostProcessor = (*DockerSave)(nil)

// Config implements [pluginkit.Configurable].
func (p *DockerSave) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *DockerSave) Prepare() ([]string, error) {
	c := &p.config
	var warnings []string
	if c.Path == "" {
		return nil, pluginkit.ConfigErrors{{Path: "/path", Message: "must not be empty"}}
	}
	abs, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, pluginkit.ConfigErrors{{Path: "/path", Message: err.Error()}}
	}
	c.Path = abs
	if c.DockerPath != "" {
		warnings = append(warnings, "docker_path is ignored: the Engine API is used, not the docker CLI")
	}
	return warnings, nil
}

// PostProcess saves the image.
func (p *DockerSave) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	path := p.config.Path
	switch in.BuilderID() {
	case dockerapi.BuilderIDImport, dockerapi.BuilderIDTag:
	default:
		return nil, false, false, fmt.Errorf("docker-save: unknown artifact type %q: it saves images of the docker builder (commit), docker-import and docker-tag", in.BuilderID())
	}
	cli, err := dockerapi.Dial(ctx)
	if err != nil {
		return nil, false, false, err
	}
	defer cli.Close()
	ui.Message("Saving image: " + in.ID())
	rc, err := cli.ImageSave(ctx, []string{in.ID()})
	if err != nil {
		return nil, false, false, fmt.Errorf("docker-save: saving %s: %w", in.ID(), err)
	}
	r := ui.TrackProgress(filepath.Base(path), 0, -1, rc)
	defer r.Close()
	err = atomicWrite(path, func(f *os.File) error {
		_, err := io.Copy(f, r)
		return err
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("docker-save: saving %s to %s: %w", in.ID(), path, err)
	}
	ui.Message("Saved to: " + path)
	state := map[string]any{"ImageID": in.ID()}
	if gd, ok := in.State()["generated_data"]; ok {
		state["generated_data"] = gd
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: dockerapi.BuilderIDSave,
		IDValue:        path,
		StringValue:    fmt.Sprintf("Saved Docker image %s to %s", in.ID(), path),
		FilesValue:     []string{path},
		StateValue:     state,
		DestroyFunc:    func(context.Context) error { return removeFiles([]string{path}) },
	}, true, false, nil
}
