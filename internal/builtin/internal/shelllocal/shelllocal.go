// Package shelllocal runs shell scripts on the machine packer runs on: the
// configuration and behaviour the shell-local provisioner and the
// shell-local post-processor share.
package shelllocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/template"

	"github.com/packer-stdio/packer/internal/builtin/internal/shellscript"
	"github.com/packer-stdio/packer/pluginkit"
)

// DefaultExecuteCommand is Packer's execute_command for shell-local on Unix.
var DefaultExecuteCommand = []string{"/bin/sh", "-c", "{{.Vars}} {{.Script}}"}

// Config is the configuration both shell-local components accept. Embed it
// (with [pluginkit.PackerConfig]) in a component's configuration struct.
type Config struct {
	Command         string                `json:"command,omitempty" jsonschema_description:"One command to run; Packer writes it to a temporary script. Exactly one of command, inline, script and scripts is required."`
	Inline          []string              `json:"inline,omitempty" jsonschema_description:"Commands run in order by one temporary script that starts with inline_shebang."`
	Script          string                `json:"script,omitempty" jsonschema_description:"Path of a local script to run."`
	Scripts         []string              `json:"scripts,omitempty" jsonschema_description:"Paths of local scripts to run, in order."`
	EnvironmentVars []string              `json:"environment_vars,omitempty" jsonschema_description:"KEY=value pairs given to every script, after PACKER_BUILD_NAME and PACKER_BUILDER_TYPE."`
	EnvVarFormat    string                `json:"env_var_format,omitempty" jsonschema:"default=%s='%s' " jsonschema_description:"How one variable appears in {{.Vars}}: a format with two %s verbs (name and value)."`
	ExecuteCommand  []string              `json:"execute_command,omitempty" jsonschema:"default=/bin/sh,default=-c,default={{.Vars}} {{.Script}}" jsonschema_description:"The command line that runs each script, one argument per element; Go templates with {{.Vars}} (the environment variables as KEY='value' pairs) and {{.Script}} (the script's path)."`
	InlineShebang   string                `json:"inline_shebang,omitempty" jsonschema:"default=/bin/sh -e" jsonschema_description:"Interpreter line of the script made from command or inline."`
	ValidExitCodes  shellscript.ExitCodes `json:"valid_exit_codes,omitempty" jsonschema_description:"Exit statuses that count as success. Default [0]."`
}

// KeyRules implements [pluginkit.KeyRuler] for the configurations that
// embed Config.
func (Config) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.ExactlyOneOf("command", "inline", "script", "scripts")}
}

// executeData is what execute_command's templates see.
type executeData struct {
	Vars   string
	Script string
}

// Prepare fills in defaults and checks c; each error has the JSON pointer of
// the offending key.
func (c *Config) Prepare() []pluginkit.ConfigError {
	errs := shellscript.CheckSources(
		shellscript.Source{Key: "command", Set: c.Command != ""},
		shellscript.Source{Key: "inline", Set: len(c.Inline) > 0},
		shellscript.Source{Key: "script", Set: c.Script != ""},
		shellscript.Source{Key: "scripts", Set: len(c.Scripts) > 0},
	)
	errs = append(errs, shellscript.CheckScripts(c.Script, c.Scripts)...)
	errs = append(errs, shellscript.CheckEnv(c.EnvironmentVars, "/environment_vars")...)
	errs = append(errs, shellscript.CheckEnvVarFormat(&c.EnvVarFormat)...)
	if len(c.ExecuteCommand) == 0 {
		c.ExecuteCommand = DefaultExecuteCommand
	}
	for i, s := range c.ExecuteCommand {
		if _, err := render(s, executeData{}); err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: fmt.Sprintf("/execute_command/%d", i), Message: err.Error()})
		}
	}
	if c.InlineShebang == "" {
		c.InlineShebang = shellscript.DefaultShebang
	}
	return errs
}

// render executes one execute_command template.
func render(text string, data executeData) (string, error) {
	t, err := template.New("execute_command").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Run runs the scripts c names, in order, on this machine. Each script's
// stdout goes to ui.Message and its stderr to ui.Error, line by line. The
// scripts see the environment of this process plus env (which
// [shellscript.Env] builds), and {{.Vars}} expands to env too. Run stops at
// the first script that cannot run or ends with a status not in
// valid_exit_codes (an error wrapping *shellscript.ExitError). When ctx is
// done the running script and everything it started are killed and Run
// returns an error wrapping ctx.Err(). Temporary scripts are removed.
func Run(ctx context.Context, ui pluginkit.UI, c *Config, env []string) error {
	scripts := c.Scripts
	if c.Script != "" {
		scripts = []string{c.Script}
	}
	inline := c.Inline
	if c.Command != "" {
		inline = []string{c.Command}
	}
	if len(inline) > 0 {
		path, err := shellscript.WriteTemp("packer-shell-*.sh", shellscript.InlineScript(c.InlineShebang, inline))
		if err != nil {
			return err
		}
		defer shellscript.RemoveTemp(path)
		scripts = []string{path}
	}
	vars := shellscript.Flatten(env, c.EnvVarFormat)
	for _, script := range scripts {
		ui.Say(fmt.Sprintf("Running local shell script: %s", script))
		if err := runOne(ctx, ui, c, script, vars, env); err != nil {
			return err
		}
	}
	return nil
}

func runOne(ctx context.Context, ui pluginkit.UI, c *Config, script, vars string, env []string) error {
	argv := make([]string, len(c.ExecuteCommand))
	for i, s := range c.ExecuteCommand {
		a, err := render(s, executeData{Vars: vars, Script: script})
		if err != nil {
			return fmt.Errorf("execute_command: %w", err)
		}
		argv[i] = a
	}
	stdout := shellscript.NewLineWriter(ui.Message)
	stderr := shellscript.NewLineWriter(ui.Error)
	cmd := shellscript.Command(ctx, argv)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	err := shellscript.Run(cmd)
	stdout.Flush()
	stderr.Flush()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("script %s: %w", script, ctxErr)
	}
	status := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		return fmt.Errorf("running script %s: %w", script, err)
	}
	if !c.ValidExitCodes.Valid(status) {
		return &shellscript.ExitError{Script: script, Status: status}
	}
	return nil
}
