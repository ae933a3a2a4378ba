package postprocessors

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// ArtificeBuilderID is the builder id of artifice's artifacts.
const ArtificeBuilderID = "packer.post-processor.artifice"

// ArtificeConfig is the configuration of [Artifice].
type ArtificeConfig struct {
	pluginkit.PackerConfig
	Files []string `json:"files" jsonschema:"required,minItems=1" jsonschema_description:"Paths of the files that make up the new artifact; each must exist when the post-processor runs."`
}

// Artifice is the artifice post-processor: it replaces the artifact with
// one made of the listed files (builder id
// "packer.post-processor.artifice"), typically files a provisioner
// downloaded. Like Packer's it answers keep true, so the input is kept
// unless the template says keep_input_artifact: false. Destroying the new
// artifact removes its files.
type Artifice struct {
	config ArtificeConfig
}

var _ pluginkit.PostProcessor = (*Artifice)(nil)

// Config implements [pluginkit.Configurable].
func (p *Artifice) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *Artifice) Prepare() ([]string, error) {
	var errs pluginkit.ConfigErrors
	if len(p.config.Files) == 0 {
		errs = append(errs, pluginkit.ConfigError{Path: "/files", Message: "at least one file is required"})
	}
	for i, f := range p.config.Files {
		if f == "" {
			errs = append(errs, pluginkit.ConfigError{Path: fmt.Sprintf("/files/%d", i), Message: "must not be empty"})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

// PostProcess checks that the files exist and returns the new artifact.
func (p *Artifice) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	if files := in.Files(); len(files) > 0 {
		ui.Say(fmt.Sprintf("Discarding files from artifact: %s", strings.Join(files, ", ")))
	}
	for _, f := range p.config.Files {
		if _, err := os.Stat(f); err != nil {
			return nil, false, false, fmt.Errorf("artifice: %w", err)
		}
	}
	files := append([]string(nil), p.config.Files...)
	ui.Say(fmt.Sprintf("Using these artifact files: %s", strings.Join(files, ", ")))
	return &pluginkit.BasicArtifact{
		BuilderIDValue: ArtificeBuilderID,
		StringValue:    "Created artifact from files: " + strings.Join(files, ", "),
		FilesValue:     files,
		DestroyFunc:    func(context.Context) error { return removeFiles(files) },
	}, true, false, nil
}
