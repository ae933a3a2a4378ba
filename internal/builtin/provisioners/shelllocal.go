package provisioners

import (
	"context"

	"github.com/packer-stdio/packer/internal/builtin/internal/shelllocal"
	"github.com/packer-stdio/packer/internal/builtin/internal/shellscript"
	"github.com/packer-stdio/packer/pluginkit"
)

// ShellLocalConfig is the configuration of [ShellLocal].
type ShellLocalConfig struct {
	pluginkit.PackerConfig
	shelllocal.Config
}

// ShellLocal is the shell-local provisioner: it runs command, inline,
// script or scripts on the machine packer runs on, not through the build's
// communicator. Each script runs through execute_command (default
// ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]) with PACKER_BUILD_NAME,
// PACKER_BUILDER_TYPE and environment_vars both in {{.Vars}} and in its
// environment. Its stdout is shown line by line as messages and its stderr
// as error lines. A status not in valid_exit_codes (default [0]) fails the
// provisioner; cancelling kills the script and everything it started.
type ShellLocal struct {
	config ShellLocalConfig
}

var _ pluginkit.Provisioner = (*ShellLocal)(nil)

// Config implements [pluginkit.Configurable].
func (p *ShellLocal) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *ShellLocal) Prepare() ([]string, error) {
	if errs := p.config.Config.Prepare(); len(errs) > 0 {
		return nil, pluginkit.ConfigErrors(errs)
	}
	return nil, nil
}

// Provision runs the scripts; comm is not used.
func (p *ShellLocal) Provision(ctx context.Context, ui pluginkit.UI, _ pluginkit.Communicator, _ map[string]any) error {
	env := shellscript.Env(p.config.PackerConfig, nil, p.config.EnvironmentVars)
	return shelllocal.Run(ctx, ui, &p.config.Config, env)
}
