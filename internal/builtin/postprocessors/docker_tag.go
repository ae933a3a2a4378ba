package postprocessors

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/internal/builtin/internal/dockerapi"
	"github.com/packer-stdio/packer/pluginkit"
)

// DockerTagConfig is the configuration of [DockerTag].
type DockerTagConfig struct {
	pluginkit.PackerConfig
	Repository string   `json:"repository" jsonschema:"required" jsonschema_description:"Repository of the tags, e.g. example/app or registry.example:5000/app."`
	Tags       []string `json:"tags,omitempty" jsonschema_description:"Tags to give the image in repository; none tags repository itself (latest)."`
	Tag        []string `json:"tag,omitempty" jsonschema_description:"Deprecated spelling of tags, as in Packer."`
	Force      bool     `json:"force,omitempty" jsonschema_description:"Accepted for Packer templates: the engine always moves an existing tag."`
	DockerPath string   `json:"docker_path,omitempty" jsonschema_description:"Accepted for Packer templates and ignored: the Engine API is used, not the docker CLI."`
}

// DockerTag is the docker-tag post-processor: it tags the image of a docker
// builder commit or a docker-import (builder ids
// "packer.post-processor.docker-import" and "packer.post-processor.docker-tag")
// as repository:tag for each of tags, through the Engine API. The new
// artifact (builder id "packer.post-processor.docker-tag") has the last tag
// as its id and the tags in its state under "docker_tags"; destroying it
// removes those tags (Packer's removes the last one). Like Packer's it forces keeping the input: a tag of a
// removed image would be pointless.
type DockerTag struct {
	config DockerTagConfig
}

var _ pluginkit.PostProcessor = (*DockerTag)(nil)

// Config implements [pluginkit.Configurable].
func (p *DockerTag) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *DockerTag) Prepare() ([]string, error) {
	c := &p.config
	var warnings []string
	if len(c.Tag) > 0 {
		warnings = append(warnings, `"tag" is deprecated: use "tags"`)
		c.Tags = append(c.Tags, c.Tag...)
	}
	var errs pluginkit.ConfigErrors
	if c.Repository == "" {
		errs = append(errs, pluginkit.ConfigError{Path: "/repository", Message: "must not be empty"})
	}
	for i, t := range c.Tags {
		if t == "" || strings.ContainsAny(t, ":/@ ") {
			errs = append(errs, pluginkit.ConfigError{Path: fmt.Sprintf("/tags/%d", i), Message: fmt.Sprintf("%q is not a tag", t)})
		}
	}
	if c.DockerPath != "" {
		warnings = append(warnings, "docker_path is ignored: the Engine API is used, not the docker CLI")
	}
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// PostProcess tags the image.
func (p *DockerTag) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	c := &p.config
	switch in.BuilderID() {
	case dockerapi.BuilderIDImport, dockerapi.BuilderIDTag:
	default:
		return nil, false, true, fmt.Errorf("docker-tag: unknown artifact type %q: it tags images of the docker builder (commit), docker-import and docker-tag", in.BuilderID())
	}
	cli, err := dockerapi.Dial(ctx)
	if err != nil {
		return nil, false, true, err
	}
	defer cli.Close()
	refs := []string{c.Repository}
	if len(c.Tags) > 0 {
		refs = refs[:0]
		for _, t := range c.Tags {
			refs = append(refs, c.Repository+":"+t)
		}
	}
	for _, ref := range refs {
		ui.Message(fmt.Sprintf("Tagging image %s as %s", in.ID(), ref))
		if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: in.ID(), Target: ref}); err != nil {
			return nil, false, true, fmt.Errorf("docker-tag: tagging %s as %s: %w", in.ID(), ref, err)
		}
	}
	last := refs[len(refs)-1]
	state := map[string]any{"docker_tags": refs}
	if gd, ok := in.State()["generated_data"]; ok {
		state["generated_data"] = gd
	}
	art := dockerapi.ImageArtifact(dockerapi.BuilderIDTag, last,
		fmt.Sprintf("Imported Docker image: %s with tags %s", last, strings.Join(refs, " ")), state)
	art.DestroyFunc = func(ctx context.Context) error {
		var errs []error
		for _, ref := range refs {
			errs = append(errs, dockerapi.RemoveImage(ctx, ref))
		}
		return errors.Join(errs...)
	}
	return art, true, true, nil
}
