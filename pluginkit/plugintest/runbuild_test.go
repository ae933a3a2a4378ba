package plugintest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
	"github.com/packer-stdio/packer/pluginkit/plugintest"
	"github.com/packer-stdio/packer/protocol"
)

// dirBuilder provisions a directory through localcomm.
type dirBuilder struct {
	config struct {
		Dir string `json:"dir" jsonschema:"required"`
	}
}

func (b *dirBuilder) Config() any                { return &b.config }
func (b *dirBuilder) Prepare() ([]string, error) { return nil, nil }
func (b *dirBuilder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	if err := hook.Run(ctx, protocol.HookProvision, localcomm.New(b.config.Dir), map[string]any{"ID": "machine-1"}); err != nil {
		return nil, err
	}
	return &pluginkit.BasicArtifact{BuilderIDValue: "test.dir", IDValue: b.config.Dir}, nil
}

// writer uploads a file named after the build's data.
type writer struct {
	config struct {
		Text string `json:"text" jsonschema:"required"`
	}
}

func (w *writer) Config() any { return &w.config }
func (w *writer) Prepare() ([]string, error) {
	if w.config.Text == "" {
		return nil, pluginkit.ConfigErrors{{Path: "/text", Message: "must not be empty"}}
	}
	return nil, nil
}
func (w *writer) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, data map[string]any) error {
	name := data["ID"].(string) + ".txt"
	ui.Say("writing " + name)
	if w.config.Text == "fail" {
		return errors.New("asked to fail")
	}
	return comm.Upload(ctx, name, strings.NewReader(w.config.Text), 0o644, int64(len(w.config.Text)))
}

func dirServer() *pluginkit.Server {
	srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-dir", Version: "test"})
	srv.RegisterBuilder("dir", new(dirBuilder))
	srv.RegisterProvisioner("write", new(writer))
	return srv
}

func TestRunBuild(t *testing.T) {
	dir := t.TempDir()
	ui := new(plugintest.UI)
	art, err := plugintest.RunBuild(t, dirServer(), ui, "dir", map[string]any{"dir": dir},
		plugintest.Provisioner{Name: "write", Config: map[string]any{"text": "one"}},
		plugintest.Provisioner{Name: "write", Config: map[string]any{"text": "two"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if art.ID != dir || art.BuilderID != "test.dir" {
		t.Errorf("artifact %+v", art)
	}
	got, err := os.ReadFile(filepath.Join(dir, "machine-1.txt"))
	if err != nil || string(got) != "two" {
		t.Errorf("machine-1.txt: %q, %v; want the second provisioner's text", got, err)
	}
	if diff := cmp.Diff([]string{"writing machine-1.txt", "writing machine-1.txt"}, ui.Says()); diff != "" {
		t.Errorf("says (-want +got):\n%s", diff)
	}
}

func TestRunBuildFailures(t *testing.T) {
	tests := []struct {
		name    string
		builder map[string]any
		provs   []plugintest.Provisioner
		want    error
		wantMsg string
	}{
		{"builder config", map[string]any{}, nil, protocol.ErrConfigInvalid, "dir"},
		{"provisioner config", nil, []plugintest.Provisioner{{Name: "write", Config: map[string]any{"text": ""}}}, nil, "/text: must not be empty"},
		{"provisioner fails", nil, []plugintest.Provisioner{{Name: "write", Config: map[string]any{"text": "fail"}}}, nil, "asked to fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.builder
			if cfg == nil {
				cfg = map[string]any{"dir": t.TempDir()}
			}
			art, err := plugintest.RunBuild(t, dirServer(), nil, "dir", cfg, tt.provs...)
			if err == nil {
				t.Fatalf("RunBuild succeeded with %+v", art)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}
