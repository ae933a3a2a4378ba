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
	Disable *bool  `json:"disable,omitempty" jsonschema_description:"true: never pause. false: always pause. Unset: pause only when packer runs with -debug."`
}

// Breakpoint is the breakpoint provisioner: it pauses the build until the
// person running it presses Enter (ui/ask "Press enter to continue."). It
// pauses when disable is false, or when disable is unset and packer runs
// with -debug; otherwise it says it is skipped and returns at once. (Packer
// pauses whenever disable is not true; here, as the issue asks, an unset
// disable pauses only in debug mode.)
type Breakpoint struct {
	config BreakpointConfig
}

var _ pluginkit.Provisioner = (*Breakpoint)(nil)

// Config implements [pluginkit.Configurable].
func (p *Breakpoint) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable]. Every configuration is valid.
func (p *Breakpoint) Prepare() ([]string, error) { return nil, nil }

// Provision pauses or skips. Cancelling ctx ends the pause with an error.
func (p *Breakpoint) Provision(ctx context.Context, ui pluginkit.Ui, _ pluginkit.Communicator, _ map[string]any) error {
	note := ""
	if p.config.Note != "" {
		note = fmt.Sprintf(" with note %q", p.config.Note)
	}
	pause := p.config.Debug
	if p.config.Disable != nil {
		pause = !*p.config.Disable
	}
	if !pause {
		ui.Say(fmt.Sprintf("Breakpoint provisioner%s disabled; continuing...", note))
		return nil
	}
	ui.Say(fmt.Sprintf("Pausing at breakpoint provisioner%s.", note))
	if _, err := ui.Ask(ctx, "Press enter to continue."); err != nil {
		return fmt.Errorf("breakpoint: waiting for enter: %w", err)
	}
	return nil
}
