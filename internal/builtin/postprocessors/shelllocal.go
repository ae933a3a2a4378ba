package postprocessors

import (
	"context"
	"strings"

	"github.com/packer-stdio/packer/internal/builtin/internal/shelllocal"
	"github.com/packer-stdio/packer/internal/builtin/internal/shellscript"
	"github.com/packer-stdio/packer/pluginkit"
)

// ShellLocalConfig is the configuration of [ShellLocal].
type ShellLocalConfig struct {
	pluginkit.PackerConfig
	shelllocal.Config
}

// ShellLocal is the shell-local post-processor: it runs command, inline,
// script or scripts on this machine exactly as the shell-local provisioner
// does, with two more variables: PACKER_ARTIFACT_FILES (the input
// artifact's files, separated by spaces) and PACKER_ARTIFACT_ID. It
// returns the input artifact with keep and force_override true, as Packer
// does, so the input is passed on rather than destroyed.
type ShellLocal struct {
	config ShellLocalConfig
}

var _ pluginkit.PostProcessor = (*ShellLocal)(nil)

// Config implements [pluginkit.Configurable].
func (p *ShellLocal) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *ShellLocal) Prepare() ([]string, error) {
	if errs := p.config.Config.Prepare(); len(errs) > 0 {
		return nil, pluginkit.ConfigErrors(errs)
	}
	return nil, nil
}

// PostProcess runs the scripts.
func (p *ShellLocal) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	extra := []string{
		"PACKER_ARTIFACT_FILES=" + strings.Join(in.Files(), " "),
		"PACKER_ARTIFACT_ID=" + in.ID(),
	}
	env := shellscript.Env(p.config.PackerConfig, extra, p.config.EnvironmentVars)
	if err := shelllocal.Run(ctx, ui, &p.config.Config, env); err != nil {
		return nil, false, false, err
	}
	return in, true, true, nil
}
