// guide:start test

package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit/plugintest"
	"github.com/packer-stdio/packer/protocol"
)

// TestBuild runs the three components in this process, over the real
// protocol: RunBuild runs the builder, whose hook provisions with the
// writer; then the manifest post-processor reads the builder's artifact.
func TestBuild(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	ui := new(plugintest.UI)
	art, err := plugintest.RunBuild(t, newServer(), ui, "dir", map[string]any{"output": dir},
		plugintest.Provisioner{Name: "write", Config: map[string]any{"file": "hello.txt", "text": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	p := plugintest.New(t, newServer(), host.Options{UI: ui})
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	pp, _, err := p.Prepare(t.Context(), protocol.TypePostProcessor, "manifest", map[string]any{"output": manifest})
	if err != nil {
		t.Fatal(err)
	}
	if _, keep, _, err := pp.PostProcess(t.Context(), *art); err != nil || !keep {
		t.Fatalf("PostProcess: keep %v, err %v", keep, err)
	}

	wantLines := []plugintest.Line{
		{Kind: "say", Text: "Creating " + dir},
		{Kind: "say", Text: "Writing hello.txt on " + dir},
		{Kind: "message", Text: "The note says: hi"},
		{Kind: "say", Text: "Wrote " + manifest + " (1 files)"},
	}
	if diff := cmp.Diff(wantLines, ui.Lines()); diff != "" {
		t.Errorf("UI lines (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"artifact": dir, "sha256": map[string]any{
		// sha256 of "hi\n"
		"hello.txt": "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
}

// TestBadConfig checks that each mistake is reported at its key.
func TestBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   []protocol.ConfigError
	}{
		{"bad pause", map[string]any{"output": "x", "pause": "soon"},
			[]protocol.ConfigError{{Path: "/pause", Message: `not a duration: "soon"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plugintest.New(t, newServer(), host.Options{})
			_, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "dir", tt.config)
			if !errors.Is(err, protocol.ErrConfigInvalid) {
				t.Fatalf("Prepare: %v, want ErrConfigInvalid", err)
			}
			if diff := cmp.Diff(tt.want, host.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}

// guide:end
