package postprocessors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/packer-stdio/packer/internal/builtin/internal/dockerapi"
	"github.com/packer-stdio/packer/pluginkit"
)

// DockerImportConfig is the configuration of [DockerImport].
type DockerImportConfig struct {
	pluginkit.PackerConfig
	Repository string   `json:"repository" jsonschema:"required" jsonschema_description:"Repository of the imported image."`
	Tag        string   `json:"tag,omitempty" jsonschema_description:"Tag of the imported image; default latest."`
	Changes    []string `json:"changes,omitempty" jsonschema_description:"Dockerfile instructions applied on import: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR."`
	Platform   string   `json:"platform,omitempty" jsonschema_description:"Platform of the imported image, os[/arch[/variant]]."`
	DockerPath string   `json:"docker_path,omitempty" jsonschema_description:"Accepted for Packer templates and ignored: the Engine API is used, not the docker CLI."`
}

// DockerImport is the docker-import post-processor: it imports the tar file
// of a docker builder export (builder id "packer.docker") or of artifice as
// an image repository[:tag], applying changes, through the Engine API; the
// file is streamed to the engine as it is read. The new artifact (builder
// id "packer.post-processor.docker-import", as the docker builder's commit)
// has the reference as its id and the image id in its state under
// "ImageID"; destroying it removes the image. Like Packer's it does not ask
// to keep the input.
type DockerImport struct {
	config   DockerImportConfig
	platform *ocispec.Platform
}

var _ pluginkit.PostProcessor = (*DockerImport)(nil)

// Config implements [pluginkit.Configurable].
func (p *DockerImport) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *DockerImport) Prepare() ([]string, error) {
	c := &p.config
	var warnings []string
	var errs pluginkit.ConfigErrors
	if c.Repository == "" {
		errs = append(errs, pluginkit.ConfigError{Path: "/repository", Message: "must not be empty"})
	}
	if strings.ContainsAny(c.Tag, ":/@ ") {
		errs = append(errs, pluginkit.ConfigError{Path: "/tag", Message: fmt.Sprintf("%q is not a tag", c.Tag)})
	}
	errs = append(errs, dockerapi.CheckChanges("/changes", c.Changes)...)
	if c.Platform != "" {
		pl, err := dockerapi.ParsePlatform(c.Platform)
		if err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: "/platform", Message: err.Error()})
		}
		p.platform = &pl
	}
	if c.DockerPath != "" {
		warnings = append(warnings, "docker_path is ignored: the Engine API is used, not the docker CLI")
	}
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// PostProcess imports the tar file.
func (p *DockerImport) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	c := &p.config
	switch in.BuilderID() {
	case dockerapi.BuilderIDExport, dockerapi.BuilderIDArtifice:
	default:
		return nil, false, false, fmt.Errorf("docker-import: unknown artifact type %q: it imports the tar file of a docker builder export or of artifice", in.BuilderID())
	}
	files := in.Files()
	if len(files) != 1 {
		return nil, false, false, fmt.Errorf("docker-import: the artifact has %d files, want one tar file", len(files))
	}
	ref := c.Repository
	if c.Tag != "" {
		ref += ":" + c.Tag
	}
	f, err := os.Open(files[0])
	if err != nil {
		return nil, false, false, fmt.Errorf("docker-import: %w", err)
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	cli, err := dockerapi.Dial(ctx)
	if err != nil {
		return nil, false, false, err
	}
	defer cli.Close()
	ui.Message("Importing image: " + files[0])
	ui.Message("Repository: " + ref)
	opts := client.ImageImportOptions{Changes: c.Changes}
	if p.platform != nil {
		opts.Platform = *p.platform
	}
	r := ui.TrackProgress(files[0], 0, size, f)
	defer r.Close()
	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: r, SourceName: "-"}, ref, opts)
	if err != nil {
		return nil, false, false, fmt.Errorf("docker-import: importing %s: %w", files[0], err)
	}
	id, err := importedID(rc)
	rc.Close()
	if err != nil {
		return nil, false, false, fmt.Errorf("docker-import: importing %s: %w", files[0], err)
	}
	ui.Message("Imported ID: " + id)
	state := map[string]any{"ImageID": id}
	if gd, ok := in.State()["generated_data"]; ok {
		state["generated_data"] = gd
	}
	return dockerapi.ImageArtifact(dockerapi.BuilderIDImport, ref, "Imported Docker image: "+ref, state), false, false, nil
}

// importedID reads the engine's JSON message stream of an import: the
// image id is the status of the last message; an error message is an
// error.
func importedID(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	id := ""
	for {
		var m struct {
			Status      string `json:"status"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", err
		}
		if m.ErrorDetail != nil {
			return "", errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return "", errors.New(m.Error)
		}
		if strings.HasPrefix(m.Status, "sha256:") {
			id = m.Status
		}
	}
	if id == "" {
		return "", errors.New("the engine did not report an image id")
	}
	return id, nil
}
