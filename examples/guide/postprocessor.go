// guide:start postprocessor

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/packer-stdio/packer/pluginkit"
)

// ManifestConfig is the configuration of the notes-manifest post-processor.
type ManifestConfig struct {
	Output string `json:"output" jsonschema:"required,description=Path of the JSON manifest to write."`
}

// Manifest writes the SHA-256 of every file of the artifact it gets.
type Manifest struct {
	config ManifestConfig
}

// Config returns the struct each configuration is decoded into.
func (m *Manifest) Config() any { return &m.config }

// Prepare has nothing to check beyond the schema.
func (m *Manifest) Prepare() ([]string, error) { return nil, nil }

// PostProcess reads the input artifact's files and returns a new artifact:
// the manifest. Returning keep=true asks packer to keep the input artifact.
func (m *Manifest) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	sums := map[string]string{}
	for _, f := range in.Files() {
		if err := ctx.Err(); err != nil {
			return nil, false, false, err
		}
		sum, err := fileSHA256(f)
		if err != nil {
			return nil, false, false, err
		}
		sums[filepath.Base(f)] = sum
	}
	data, err := json.MarshalIndent(map[string]any{"artifact": in.ID(), "sha256": sums}, "", "  ")
	if err != nil {
		return nil, false, false, err
	}
	if err := os.WriteFile(m.config.Output, append(data, '\n'), 0o644); err != nil {
		return nil, false, false, err
	}
	ui.Say(fmt.Sprintf("Wrote %s (%d files)", m.config.Output, len(sums)))
	out := &pluginkit.BasicArtifact{
		BuilderIDValue: "notes.manifest",
		IDValue:        m.config.Output,
		StringValue:    "manifest " + m.config.Output,
		FilesValue:     []string{m.config.Output},
	}
	return out, true, false, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// guide:end
