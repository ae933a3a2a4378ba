// guide:start provisioner

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// WriterConfig is the configuration of the notes-write provisioner.
type WriterConfig struct {
	File string `json:"file" jsonschema:"required,description=File to write, relative to the machine's working directory."`
	Text string `json:"text" jsonschema:"required,description=What to write."`
}

// Writer writes a note on the machine through the build's communicator,
// then shows it with a command run there.
type Writer struct {
	config WriterConfig
}

// Config returns the struct each configuration is decoded into.
func (w *Writer) Config() any { return &w.config }

// Prepare has nothing to check beyond the schema.
func (w *Writer) Prepare() ([]string, error) { return nil, nil }

// Provision uploads the note and runs "cat" on it. comm belongs to the
// builder's process: pluginkit and packer move the bytes in between.
func (w *Writer) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, data map[string]any) error {
	ui.Say(fmt.Sprintf("Writing %s on %v", w.config.File, data["ID"]))
	text := w.config.Text + "\n"
	if err := comm.Upload(ctx, w.config.File, strings.NewReader(text), 0o644, int64(len(text))); err != nil {
		return fmt.Errorf("uploading %s: %w", w.config.File, err)
	}
	var out strings.Builder
	status, err := comm.Start(ctx, &pluginkit.RemoteCmd{Command: "cat " + w.config.File, Stdout: &out})
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("cat %s exited with status %d", w.config.File, status)
	}
	ui.Message("The note says: " + strings.TrimSpace(out.String()))
	return nil
}

// guide:end
