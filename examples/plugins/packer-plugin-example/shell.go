package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// ShellConfig is the configuration of the example-shell provisioner.
type ShellConfig struct {
	Inline          []string `json:"inline" jsonschema:"required,minItems=1,description=Commands to run one after the other."`
	EnvironmentVars []string `json:"environment_vars,omitempty" jsonschema:"description=KEY=VALUE pairs exported to every command."`
}

// ShellProvisioner runs shell commands through the build's communicator.
type ShellProvisioner struct {
	config ShellConfig
}

// Config returns the struct the configuration is decoded into.
func (p *ShellProvisioner) Config() any { return &p.config }

// Prepare checks the environment variables.
func (p *ShellProvisioner) Prepare() ([]string, error) {
	var errs pluginkit.ConfigErrors
	for i, kv := range p.config.EnvironmentVars {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, pluginkit.ConfigError{
				Path:    fmt.Sprintf("/environment_vars/%d", i),
				Message: fmt.Sprintf("%q is not KEY=VALUE", kv),
			})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

// Provision runs each command and shows its output line by line. comm may
// be another process's communicator: pluginkit moves the bytes.
func (p *ShellProvisioner) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, data map[string]any) error {
	var prefix strings.Builder
	for _, kv := range p.config.EnvironmentVars {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&prefix, "export %s=%s; ", k, quote(v))
	}
	for _, command := range p.config.Inline {
		ui.Say(fmt.Sprintf("Running: %s", command))
		out := &lineWriter{emit: ui.Message}
		errOut := &lineWriter{emit: ui.Error}
		status, err := comm.Start(ctx, &pluginkit.RemoteCmd{Command: prefix.String() + command, Stdout: out, Stderr: errOut})
		out.flush()
		errOut.flush()
		if err != nil {
			return fmt.Errorf("running %q: %w", command, err)
		}
		if status != 0 {
			return fmt.Errorf("command %q exited with status %d", command, status)
		}
	}
	return nil
}

// quote quotes s for a POSIX shell.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lineWriter calls emit for every complete line written to it.
type lineWriter struct {
	emit func(string)
	buf  bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep for later
			return len(p), nil
		}
		w.emit(strings.TrimRight(line, "\r\n"))
	}
}

func (w *lineWriter) flush() {
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}
