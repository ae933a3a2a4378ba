package provisioners_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

func TestSleep(t *testing.T) {
	ui := bttest.NewUI()
	if err := provision(t, ui, "sleep", map[string]any{"duration": "20ms"}, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"say: Sleeping for 20ms"}, ui.Lines()); diff != "" {
		t.Errorf("ui (-want +got):\n%s", diff)
	}
}

// TestSleepCancel cancels an hour's sleep: the provisioner must return at
// once with the cancellation.
func TestSleepCancel(t *testing.T) {
	ui := bttest.NewUI()
	p := bttest.Start(t, register, host.Options{UI: ui})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "sleep", map[string]any{"duration": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- inst.Provision(ctx, nil, nil) }()
	if err := ui.WaitFor(ctx, "say: Sleeping for 1h0m0s"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) && !errors.Is(err, protocol.ErrCancelled) {
		t.Fatalf("Provision: %v, want a cancelled error", err)
	}
}

func TestSleepConfigErrors(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	for _, tt := range []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"missing", map[string]any{}, []string{"/duration: missing required key"}},
		{"not a duration", map[string]any{"duration": "soon"}, []string{`/duration: not a duration of zero or more, such as 30s: "soon"`}},
		{"negative", map[string]any{"duration": "-5s"}, []string{`/duration: not a duration of zero or more, such as 30s: "-5s"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "sleep", tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}
