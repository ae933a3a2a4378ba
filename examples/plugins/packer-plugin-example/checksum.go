package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// ChecksumConfig is the configuration of the example-checksum
// post-processor.
type ChecksumConfig struct {
	Output string `json:"output,omitempty" jsonschema:"description=File to write the checksums to; default CHECKSUM next to the artifact's first file."`
}

// Checksum writes the SHA-256 of every file of an artifact, one
// "HEX  PATH" line each (the sha256sum format), and returns that file as a
// new artifact, keeping the input.
type Checksum struct {
	config ChecksumConfig
}

// Config returns the struct the configuration is decoded into.
func (c *Checksum) Config() any { return &c.config }

// Prepare has nothing to check beyond the schema.
func (c *Checksum) Prepare() ([]string, error) { return nil, nil }

// PostProcess checksums in's files.
func (c *Checksum) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	files := in.Files()
	if len(files) == 0 {
		return nil, true, false, fmt.Errorf("artifact %s has no files to checksum", in.ID())
	}
	out := c.config.Output
	if out == "" {
		out = filepath.Join(filepath.Dir(files[0]), "CHECKSUM")
	}
	var b strings.Builder
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, true, false, err
		}
		sum, err := sha256File(f)
		if err != nil {
			return nil, true, false, err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, f)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return nil, true, false, err
	}
	ui.Say(fmt.Sprintf("Wrote checksums of %d files to %s", len(files), out))
	return &pluginkit.BasicArtifact{
		BuilderIDValue: "example.checksum",
		IDValue:        out,
		StringValue:    "checksums in " + out,
		FilesValue:     []string{out},
		DestroyFunc:    func(context.Context) error { return os.Remove(out) },
	}, true, false, nil
}

func sha256File(name string) (string, error) {
	f, err := os.Open(name)
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
