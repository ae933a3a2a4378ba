package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/plugintest"
	"github.com/packer-stdio/packer/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// greeter is a small builder: it greets, asks a question and reports the answer.
type greeter struct {
	config struct {
		Name string `json:"name" jsonschema:"required"`
	}
}

func (g *greeter) Config() any { return &g.config }

func (g *greeter) Prepare() ([]string, error) {
	if g.config.Name == "nobody" {
		return nil, pluginkit.ConfigErrors{{Path: "/name", Message: "must be somebody"}}
	}
	return nil, nil
}

func (g *greeter) Run(ctx context.Context, ui pluginkit.UI, _ pluginkit.Hook) (pluginkit.Artifact, error) {
	ui.Say("hello " + g.config.Name)
	colour, err := ui.Ask(ctx, "favourite colour?")
	if err != nil {
		ui.Error("no answer")
		return nil, fmt.Errorf("asking: %w", err)
	}
	ui.Message("colour: " + colour)
	ui.Machine("greeted", g.config.Name)
	return &pluginkit.BasicArtifact{BuilderIDValue: "test.greeter", IDValue: g.config.Name, StringValue: colour}, nil
}

func newServer() *pluginkit.Server {
	srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-greeter", Version: "test"})
	srv.RegisterBuilder("greeter", new(greeter))
	return srv
}

func TestHarness(t *testing.T) {
	tests := []struct {
		name      string
		config    map[string]any
		answers   []string
		wantLines []plugintest.Line
		wantID    string
		wantErr   error
		reason    string
	}{
		{
			name: "answered", config: map[string]any{"name": "ada"}, answers: []string{"green"},
			wantLines: []plugintest.Line{{Kind: "say", Text: "hello ada"}, {Kind: "message", Text: "colour: green"}},
			wantID:    "ada",
		},
		{
			name: "no answer queued", config: map[string]any{"name": "bob"},
			wantLines: []plugintest.Line{{Kind: "say", Text: "hello bob"}, {Kind: "error", Text: "no answer"}},
			wantErr:   protocol.ErrComponentFailed,
			reason:    "Ask fails with an empty queue, and the component's error comes back as a failure",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui := &plugintest.UI{}
			ui.Answer(tt.answers...)
			p := plugintest.New(t, newServer(), host.Options{UI: ui})
			b, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "greeter", tt.config)
			if err != nil {
				t.Fatal(err)
			}
			art, err := b.Run(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: got %v, want %v (%s)", err, tt.wantErr, tt.reason)
			}
			if tt.wantErr == nil && art.ID != tt.wantID {
				t.Errorf("artifact id %q, want %q", art.ID, tt.wantID)
			}
			if diff := cmp.Diff(tt.wantLines, ui.Lines()); diff != "" {
				t.Errorf("UI lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"favourite colour?"}, ui.Asked()); diff != "" {
				t.Errorf("asked (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHarnessConfigErrors(t *testing.T) {
	p := plugintest.New(t, newServer(), host.Options{})
	_, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "greeter", map[string]any{"name": "nobody"})
	if diff := cmp.Diff([]protocol.ConfigError{{Path: "/name", Message: "must be somebody"}}, host.ConfigErrors(err)); diff != "" {
		t.Errorf("config errors (-want +got):\n%s", diff)
	}
	_, _, err = p.Prepare(t.Context(), protocol.TypeBuilder, "greeter", map[string]any{})
	if errs := host.ConfigErrors(err); len(errs) == 0 {
		t.Errorf("missing required name: got %v, want config errors", err)
	}
}

// A builder and its provisioners tested in a few lines, as packer runs
// them: RunBuild serves the plugin in process, runs the builder and, when
// it provisions, each provisioner on its communicator. (This example is
// compiled, not run: it needs the test's *testing.T.)
func ExampleRunBuild() {
	var t *testing.T // the test's
	ui := new(plugintest.UI)
	art, err := plugintest.RunBuild(t, newServer(), ui, "greeter", map[string]any{"name": "world"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"hello world"}, ui.Says()); diff != "" {
		t.Errorf("says (-want +got):\n%s", diff)
	}
	_ = art
}
