package provisioners

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"text/template"

	"github.com/packer-stdio/packer/internal/builtin/internal/shellscript"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// DefaultShellExecuteCommand is Packer's execute_command for the shell
// provisioner.
const DefaultShellExecuteCommand = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"

// CmdDisconnect is the exit status Packer's communicators report when the
// connection dropped while a command ran; a script that ends with it is
// treated as having disconnected.
const CmdDisconnect = 2300218

// ShellConfig is the configuration of [Shell].
type ShellConfig struct {
	pluginkit.PackerConfig
	Inline           []string              `json:"inline,omitempty" jsonschema_description:"Commands run in order by one script that starts with inline_shebang. Exactly one of inline, script and scripts is required."`
	Script           string                `json:"script,omitempty" jsonschema_description:"Path of a local script to upload and run."`
	Scripts          []string              `json:"scripts,omitempty" jsonschema_description:"Paths of local scripts to upload and run, in order."`
	EnvironmentVars  []string              `json:"environment_vars,omitempty" jsonschema_description:"KEY=value pairs given to every script through {{.Vars}}, after PACKER_BUILD_NAME and PACKER_BUILDER_TYPE."`
	EnvVarFormat     string                `json:"env_var_format,omitempty" jsonschema:"default=%s='%s' " jsonschema_description:"How one variable appears in {{.Vars}}: a format with two %s verbs (name and value)."`
	ExecuteCommand   string                `json:"execute_command,omitempty" jsonschema:"default=chmod +x {{.Path}}; {{.Vars}} {{.Path}}" jsonschema_description:"Command run through the communicator for each script; a Go template with {{.Vars}} (the environment variables) and {{.Path}} (the uploaded script)."`
	RemotePath       string                `json:"remote_path,omitempty" jsonschema_description:"Where each script is uploaded on the machine. Default ./script_NNNN.sh (NNNN random): relative to the communicator's working directory, which for the null builder's local communicator is its local_dir. (Packer's default is /tmp/script_NNNN.sh.)"`
	InlineShebang    string                `json:"inline_shebang,omitempty" jsonschema:"default=/bin/sh -e" jsonschema_description:"Interpreter line of the script made from inline."`
	ExpectDisconnect bool                  `json:"expect_disconnect,omitempty" jsonschema_description:"A script that loses the connection (for example because it reboots the machine) is not an error."`
	SkipClean        bool                  `json:"skip_clean,omitempty" jsonschema_description:"Leave the uploaded script on the machine instead of removing it after it ran."`
	ValidExitCodes   shellscript.ExitCodes `json:"valid_exit_codes,omitempty" jsonschema_description:"Exit statuses that count as success. Default [0]."`
}

// Shell is the shell provisioner: it uploads each script (inline commands
// become one script that starts with inline_shebang) through the build's
// communicator to remote_path, runs execute_command through it, and shows
// the script's stdout as messages and its stderr as error lines, line by
// line. A status not in valid_exit_codes fails the provisioner with an
// error naming the script and the status. A failure of the communicator
// while the script runs (or status 2300218) is a disconnect: an error
// unless expect_disconnect is set. After each script that did not
// disconnect, the uploaded file is removed (rm -f) unless skip_clean.
type Shell struct {
	config ShellConfig
}

var _ pluginkit.Provisioner = (*Shell)(nil)

// KeyRules implements [pluginkit.KeyRuler].
func (ShellConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.ExactlyOneOf("inline", "script", "scripts")}
}

// Config implements [pluginkit.Configurable].
func (p *Shell) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *Shell) Prepare() ([]string, error) {
	c := &p.config
	var errs pluginkit.ConfigErrors
	errs = append(errs, shellscript.CheckSources(
		shellscript.Source{Key: "inline", Set: len(c.Inline) > 0},
		shellscript.Source{Key: "script", Set: c.Script != ""},
		shellscript.Source{Key: "scripts", Set: len(c.Scripts) > 0},
	)...)
	errs = append(errs, shellscript.CheckScripts(c.Script, c.Scripts)...)
	errs = append(errs, shellscript.CheckEnv(c.EnvironmentVars, "/environment_vars")...)
	errs = append(errs, shellscript.CheckEnvVarFormat(&c.EnvVarFormat)...)
	if c.ExecuteCommand == "" {
		c.ExecuteCommand = DefaultShellExecuteCommand
	}
	if _, err := renderShell(c.ExecuteCommand, shellData{}); err != nil {
		errs = append(errs, pluginkit.ConfigError{Path: "/execute_command", Message: err.Error()})
	}
	if c.RemotePath == "" {
		c.RemotePath = fmt.Sprintf("./script_%d.sh", rand.IntN(10000))
	}
	if c.InlineShebang == "" {
		c.InlineShebang = shellscript.DefaultShebang
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

type shellData struct {
	Vars string
	Path string
}

func renderShell(text string, data shellData) (string, error) {
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

// shellScript is one script to upload: a name for messages and its bytes.
type shellScript struct {
	name string
	open func() (io.ReadCloser, int64, error)
}

// Provision uploads and runs each script in order.
func (p *Shell) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, _ map[string]any) error {
	c := &p.config
	var scripts []shellScript
	switch {
	case len(c.Inline) > 0:
		text := shellscript.InlineScript(c.InlineShebang, c.Inline)
		scripts = []shellScript{{name: "inline script", open: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(strings.NewReader(text)), int64(len(text)), nil
		}}}
	default:
		paths := c.Scripts
		if c.Script != "" {
			paths = []string{c.Script}
		}
		for _, path := range paths {
			scripts = append(scripts, shellScript{name: path, open: func() (io.ReadCloser, int64, error) {
				f, err := os.Open(path)
				if err != nil {
					return nil, 0, err
				}
				fi, err := f.Stat()
				if err != nil {
					f.Close()
					return nil, 0, err
				}
				return f, fi.Size(), nil
			}})
		}
	}
	env := shellscript.Env(c.PackerConfig, nil, c.EnvironmentVars)
	vars := shellscript.Flatten(env, c.EnvVarFormat)
	for _, s := range scripts {
		if err := p.runScript(ctx, ui, comm, s, vars); err != nil {
			return err
		}
	}
	return nil
}

// commandPath is how execute_command names the uploaded script: a bare
// file name would be looked up in PATH, so it gets "./".
func commandPath(remote string) string {
	if !strings.Contains(remote, "/") {
		return "./" + remote
	}
	return remote
}

func (p *Shell) runScript(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, s shellScript, vars string) error {
	c := &p.config
	ui.Say(fmt.Sprintf("Provisioning with shell script: %s", s.name))
	r, size, err := s.open()
	if err != nil {
		return fmt.Errorf("opening script %s: %w", s.name, err)
	}
	err = comm.Upload(ctx, c.RemotePath, r, 0o755, size)
	r.Close()
	if err != nil {
		return fmt.Errorf("uploading script %s to %s: %w", s.name, c.RemotePath, err)
	}
	path := commandPath(c.RemotePath)
	command, err := renderShell(c.ExecuteCommand, shellData{Vars: vars, Path: path})
	if err != nil {
		return fmt.Errorf("execute_command: %w", err)
	}
	stdout := shellscript.NewLineWriter(ui.Message)
	stderr := shellscript.NewLineWriter(ui.Error)
	status, err := comm.Start(ctx, &pluginkit.RemoteCmd{Command: command, Stdout: stdout, Stderr: stderr})
	stdout.Flush()
	stderr.Flush()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("script %s: %w", s.name, ctxErr)
	}
	if errors.Is(err, protocol.ErrUnsupported) {
		return fmt.Errorf("running script %s: %w", s.name, err)
	}
	if err != nil || status == CmdDisconnect {
		if !c.ExpectDisconnect {
			if err == nil {
				err = fmt.Errorf("exit status %d", status)
			}
			return fmt.Errorf("script %s disconnected unexpectedly (%w); if it is expected to disconnect, for example because it reboots the machine, set \"expect_disconnect\": true", s.name, err)
		}
		ui.Say(fmt.Sprintf("Script %s disconnected, as expected", s.name))
		return nil
	}
	if !c.ValidExitCodes.Valid(status) {
		return &shellscript.ExitError{Script: s.name, Status: status}
	}
	if c.SkipClean {
		return nil
	}
	status, err = comm.Start(ctx, &pluginkit.RemoteCmd{Command: "rm -f " + shellQuote(path)})
	if err == nil && status != 0 {
		err = fmt.Errorf("exit status %d", status)
	}
	if err != nil {
		return fmt.Errorf("removing script %s from the machine: %w", path, err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
