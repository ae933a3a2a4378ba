// guide:start builder-config

package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
	"github.com/packer-stdio/packer/protocol"
)

// BuilderID identifies the artifacts of the notes-dir builder.
const BuilderID = "notes.dir"

// BuilderConfig is the configuration of the notes-dir builder. pluginkit
// reflects a JSON Schema from the json and jsonschema tags: packer rejects
// a template without "output", or with a key not listed here, before
// Prepare runs, and `packer describe builder notes-dir` prints it.
type BuilderConfig struct {
	// PackerConfig holds the packer_* keys packer sends to every component.
	pluginkit.PackerConfig

	Output string `json:"output" jsonschema:"required,description=Directory to create; the provisioners run in it."`
	Pause  string `json:"pause,omitempty" jsonschema:"description=How long to wait before provisioning (a Go duration such as 10s)."`

	pause time.Duration // Pause, parsed by Prepare
}

// guide:end

// guide:start builder
// Builder creates a directory and lets the provisioners run in it.
type Builder struct {
	config BuilderConfig
}

// Config returns the struct each configuration is decoded into.
func (b *Builder) Config() any { return &b.config }

// Prepare checks values the schema cannot. Errors carry the JSON Pointer of
// the key at fault, so packer can point at the template's line.
func (b *Builder) Prepare() ([]string, error) {
	if b.config.Pause != "" {
		d, err := time.ParseDuration(b.config.Pause)
		if err != nil || d < 0 {
			return nil, pluginkit.ConfigErrors{{Path: "/pause", Message: fmt.Sprintf("not a duration: %q", b.config.Pause)}}
		}
		b.config.pause = d
	}
	return nil, nil
}

// Run builds. ctx is cancelled when the user presses Ctrl-C: every step
// that can block watches it.
func (b *Builder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	dir := b.config.Output
	log.Printf("creating %s", dir) // stderr: shown with PACKER_LOG=1
	ui.Say("Creating " + dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	select {
	case <-time.After(b.config.pause):
	case <-ctx.Done():
		ui.Error("Cancelled")
		return nil, ctx.Err()
	}
	// The provisioners run now, each in its own process, on a communicator
	// that works in dir.
	comm := localcomm.New(dir)
	if err := hook.Run(ctx, protocol.HookProvision, comm, map[string]any{"ID": dir}); err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: BuilderID,
		IDValue:        dir,
		StringValue:    fmt.Sprintf("directory %s (%d files)", dir, len(files)),
		FilesValue:     files,
		DestroyFunc:    func(context.Context) error { return os.RemoveAll(dir) },
	}, nil
}

// guide:end
