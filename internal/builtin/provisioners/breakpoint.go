package provisioners

import (
	"context"
	"fmt"

	"github.com/packer-stdio/packer/pluginkit"
)

// BreakpointConfig is the configuration of [Breakpoint].
type BreakpointConfig struct {
	pluginkit.PackerConfig
	Note    string `json:"note,omitempty" jsonschema_description:"Shown when the build pauses, to say which breakpoint this is."`
	Disable bool   `json:"disable,omitempty" jsonschema_description:"Skip this breakpoint: the build goes on without pausing."`
}

// Breakpoint is Packer's breakpoint provisioner: it pauses the build until
// the person running it presses Enter (ui/ask "Press enter to continue."),
// unless disable is true, in which case it says so and returns at once.
type Breakpoint struct {
	config BreakpointConfig
}

var _ pluginkit.Provisioner = (*Breakpoint)(nil)

// Config implements [pluginkit.Configurable].
func (p *Breakpoint) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable]. Every configuration is valid.
func (p *Breakpoint) Prepare() ([]string, error) { return nil, nil }

// Provision pauses or skips. Cancelling ctx ends the pause with an error.
func (p *Breakpoint) Provision(ctx context.Context, ui pluginkit.UI, _ pluginkit.Communicator, _ map[string]any) error {
	note := ""
	if p.config.Note != "" {
		note = fmt.Sprintf(" with note %q", p.config.Note)
	}
	if p.config.Disable {
		ui.Say(fmt.Sprintf("Breakpoint provisioner%s disabled; continuing...", note))
		return nil
	}
	ui.Say(fmt.Sprintf("Pausing at breakpoint provisioner%s.", note))
	if _, err := ui.Ask(ctx, "Press enter to continue."); err != nil {
		return fmt.Errorf("breakpoint: waiting for enter: %w", err)
	}
	return nil
}
