package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
	"github.com/packer-stdio/packer/protocol"
)

// BuilderID identifies artifacts made by the example builder.
const BuilderID = "example.builder"

// BuilderConfig is the configuration of the example builder. pluginkit
// reflects its JSON Schema from the json and jsonschema tags: the host
// rejects a missing output or an unknown key before Prepare runs.
type BuilderConfig struct {
	// Embedding PackerConfig gives access to the packer_* keys the host
	// sends (build name, force, debug, ...).
	pluginkit.PackerConfig

	Output  string `json:"output" jsonschema:"required,description=Directory the artifact is written to; created if missing."`
	Content string `json:"content,omitempty" jsonschema:"description=Text written to artifact.txt."`
	Wait    string `json:"wait,omitempty" jsonschema:"description=How long to wait during the build (a Go duration such as 30s); cancellable."`

	wait time.Duration // Wait, parsed by Prepare
}

// Builder writes a text file into a directory, lets the provisioners run in
// that directory, and returns the directory's files as its artifact.
type Builder struct {
	config BuilderConfig
}

// Config returns the struct the configuration is decoded into.
func (b *Builder) Config() any { return &b.config }

// Prepare checks what the schema cannot: values, not shapes. Each error
// carries the JSON Pointer of the key at fault.
func (b *Builder) Prepare() ([]string, error) {
	var errs pluginkit.ConfigErrors
	if b.config.Output == "" {
		errs = append(errs, pluginkit.ConfigError{Path: "/output", Message: "must not be empty"})
	}
	if b.config.Wait != "" {
		d, err := time.ParseDuration(b.config.Wait)
		if err != nil || d < 0 {
			errs = append(errs, pluginkit.ConfigError{Path: "/wait", Message: fmt.Sprintf("not a duration: %q", b.config.Wait)})
		}
		b.config.wait = d
	}
	var warnings []string
	if b.config.Content == "" {
		warnings = append(warnings, "content is empty: artifact.txt will be empty")
	}
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// Run builds. ctx is cancelled when the user interrupts the build: every
// blocking step selects on it and returns its error.
func (b *Builder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	out := b.config.Output
	ui.Say(fmt.Sprintf("Writing artifact.txt into %s", out))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(out, "artifact.txt")
	if err := os.WriteFile(file, []byte(b.config.Content), 0o644); err != nil {
		return nil, err
	}

	if b.config.wait > 0 {
		ui.Say(fmt.Sprintf("Waiting %v (cancel to stop early)", b.config.wait))
		select {
		case <-time.After(b.config.wait):
		case <-ctx.Done():
			ui.Error("Cancelled while waiting")
			return nil, ctx.Err()
		}
	}

	// The provisioners run now, through the host, on a communicator that
	// works in the output directory. The data is what templates can read
	// with the build function.
	ui.Say("Running the provisioners")
	comm := localcomm.New(out)
	if err := hook.Run(ctx, protocol.HookProvision, comm, map[string]any{"ID": out}); err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}

	files, err := listFiles(out)
	if err != nil {
		return nil, err
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: BuilderID,
		IDValue:        out,
		StringValue:    fmt.Sprintf("directory %s with %d files", out, len(files)),
		FilesValue:     files,
		StateValue:     map[string]any{"build_name": b.config.BuildName},
		DestroyFunc: func(context.Context) error {
			for _, f := range files {
				if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
			return nil
		},
	}, nil
}

// listFiles returns the regular files under dir.
func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	return files, err
}
