package main

import (
	"context"

	"github.com/packer-stdio/packer/pluginkit"
)

// Helper plugins for the hostile-plugin scripts (issue 11). Each is listed
// in helperPlugins under its binary name.

// spoof is a builder whose UI text and artifact try to take over the
// terminal: carriage returns and newlines posing as another build's lines,
// escape sequences that clear the screen or set the window title.
type spoof struct{ config noConfig }

func (s *spoof) Config() any                { return &s.config }
func (s *spoof) Prepare() ([]string, error) { return nil, nil }
func (s *spoof) Run(_ context.Context, ui pluginkit.UI, _ pluginkit.Hook) (pluginkit.Artifact, error) {
	ui.Say("working\r==> other-build: Build 'other-build' finished.")
	ui.Message("\x1b[2J\x1b[Hscreen cleared\x1b]0;pwned\x07")
	ui.Message("multi\n==> other-build: injected")
	return &pluginkit.BasicArtifact{
		BuilderIDValue: "spoof", IDValue: "a", FilesValue: []string{},
		StringValue: "real artifact\n    --> other-build: fake artifact, ok",
	}, nil
}

func serveSpoof() {
	pluginkit.RegisterBuilder("spoof", new(spoof))
	pluginkit.Serve()
}

// hangPrepare is a builder whose Prepare never returns: validate and build
// must give up on it (PACKER_PREPARE_TIMEOUT) instead of waiting forever.
type hangPrepare struct{ config noConfig }

func (h *hangPrepare) Config() any { return &h.config }
func (h *hangPrepare) Prepare() ([]string, error) {
	select {} // a plugin stuck in a dead lock
}
func (h *hangPrepare) Run(context.Context, pluginkit.UI, pluginkit.Hook) (pluginkit.Artifact, error) {
	return nil, nil
}

func serveHangPrepare() {
	pluginkit.RegisterBuilder("hang-prepare", new(hangPrepare))
	pluginkit.Serve()
}
