package provisioners

import (
	"context"
	"fmt"
	"time"

	"github.com/packer-stdio/packer/pluginkit"
)

// SleepConfig is the configuration of [Sleep].
type SleepConfig struct {
	pluginkit.PackerConfig
	Duration string `json:"duration" jsonschema:"required" jsonschema_description:"How long to wait: a Go duration such as 30s or 1m30s."`

	duration time.Duration
}

// Sleep is Packer's sleep provisioner: it waits for duration, for example
// for a service on the machine to settle, and stops waiting when the build
// is cancelled.
type Sleep struct {
	config SleepConfig
}

var _ pluginkit.Provisioner = (*Sleep)(nil)

// Config implements [pluginkit.Configurable].
func (p *Sleep) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable]: duration must be a Go
// duration that is not negative.
func (p *Sleep) Prepare() ([]string, error) {
	d, err := time.ParseDuration(p.config.Duration)
	if err != nil || d < 0 {
		return nil, pluginkit.ConfigErrors{{Path: "/duration", Message: fmt.Sprintf("not a duration of zero or more, such as 30s: %q", p.config.Duration)}}
	}
	p.config.duration = d
	return nil, nil
}

// Provision waits; cancelling ctx ends the wait with ctx's error.
func (p *Sleep) Provision(ctx context.Context, ui pluginkit.UI, _ pluginkit.Communicator, _ map[string]any) error {
	ui.Say(fmt.Sprintf("Sleeping for %s", p.config.duration))
	t := time.NewTimer(p.config.duration)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleep: %w", ctx.Err())
	}
}
