package provisioners_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

// provision prepares the provisioner name with config (plus the packer_*
// keys of build "b" of type "null") and runs it with comm.
func provision(t *testing.T, ui *bttest.UI, name string, config map[string]any, comm host.Communicator) error {
	t.Helper()
	p := bttest.Start(t, register, host.Options{UI: ui})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, name, config, bttest.PackerKeys("b", "null"))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return inst.Provision(context.Background(), comm, map[string]any{})
}

func writeScript(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShellLocal(t *testing.T) {
	dir := t.TempDir()
	s1 := writeScript(t, dir, "one.sh", "#!/bin/sh\necho one $PACKER_BUILD_NAME\n")
	s2 := writeScript(t, dir, "two.sh", "#!/bin/sh\necho two >&2\n")
	tests := []struct {
		name   string
		config map[string]any
		want   []string // message and error lines
	}{
		{"command", map[string]any{"command": "echo hi"}, []string{"message: hi"}},
		{"inline", map[string]any{"inline": []string{"echo a", "echo b >&2", "printf 'no newline'"}},
			[]string{"message: a", "error: b", "message: no newline"}},
		{"packer variables", map[string]any{"inline": []string{"echo $PACKER_BUILD_NAME $PACKER_BUILDER_TYPE"}}, []string{"message: b null"}},
		{"environment_vars", map[string]any{"inline": []string{`echo "$A|$B"`}, "environment_vars": []string{"A=it's", "B=x y"}},
			[]string{"message: it's|x y"}},
		{"vars only in template", map[string]any{"inline": []string{`echo "$A"`}, "environment_vars": []string{"A=1"},
			"execute_command": []string{"/bin/sh", "-c", "env -i {{.Vars}} /bin/sh {{.Script}}"}}, []string{"message: 1"}},
		{"scripts in order", map[string]any{"scripts": []string{s1, s2}}, []string{"message: one b", "error: two"}},
		{"script", map[string]any{"script": s2}, []string{"error: two"}},
		{"valid exit codes", map[string]any{"inline": []string{"exit 3"}, "valid_exit_codes": []int{0, 3}}, nil},
		{"inline shebang", map[string]any{"inline": []string{"false", "echo survived"}, "inline_shebang": "/bin/sh"}, []string{"message: survived"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui := bttest.NewUI()
			if err := provision(t, ui, "shell-local", tt.config, nil); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, ui, tt.want)
		})
	}
}

func TestShellLocalExitCode(t *testing.T) {
	ui := bttest.NewUI()
	err := provision(t, ui, "shell-local", map[string]any{"inline": []string{"echo before", "exit 7"}}, nil)
	if !errors.Is(err, protocol.ErrComponentFailed) {
		t.Fatalf("Provision error = %v, want ErrComponentFailed", err)
	}
	if !strings.Contains(err.Error(), "exited with status 7") {
		t.Errorf("error %q does not name the status", err)
	}
	if diff := cmp.Diff([]string{"message: before"}, ui.Lines("message")); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestShellLocalConfigErrors(t *testing.T) {
	dir := t.TempDir()
	p := bttest.Start(t, register, host.Options{})
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"nothing to run", map[string]any{}, []string{"/command: one of command, inline, script or scripts is required", "/inline: one of command, inline, script or scripts is required", "/script: one of command, inline, script or scripts is required", "/scripts: one of command, inline, script or scripts is required"}},
		{"two sources", map[string]any{"command": "x", "inline": []string{"y"}, "scripts": []string{}},
			[]string{"/command: only one of command, inline, script and scripts may be set; command and inline are set", "/inline: only one of command, inline, script and scripts may be set; command and inline are set"}},
		{"missing script", map[string]any{"scripts": []string{filepath.Join(dir, "nope.sh")}},
			[]string{"/scripts/0: bad script: stat " + filepath.Join(dir, "nope.sh") + ": no such file or directory"}},
		{"bad env", map[string]any{"command": "x", "environment_vars": []string{"A=1", "B"}},
			[]string{`/environment_vars/1: environment variable not in format 'KEY=value': "B"`}},
		{"bad template", map[string]any{"command": "x", "execute_command": []string{"sh", "{{.Nope}}"}},
			[]string{`/execute_command/1: template: execute_command:1:2: executing "execute_command" at <.Nope>: can't evaluate field Nope in type shelllocal.executeData`}},
		{"bad format", map[string]any{"command": "x", "env_var_format": "%s"}, []string{"/env_var_format: must hold exactly two %s verbs (name and value)"}},
		{"wrong type", map[string]any{"command": "x", "valid_exit_codes": "0"}, []string{"/valid_exit_codes: got string, want array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "shell-local", tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShellLocalCancel cancels a long command: the provisioner answers
// cancelled, the command and its children are killed, and the temporary
// script is removed.
func TestShellLocalCancel(t *testing.T) {
	ui := bttest.NewUI()
	p := bttest.Start(t, register, host.Options{UI: ui})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "shell-local",
		map[string]any{"inline": []string{"sleep 1000 & echo $!", "echo script $0", "wait"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- inst.Provision(ctx, nil, nil) }()
	var pid int
	var script string
	err = ui.WaitMatch(context.Background(), func(lines []string) bool {
		for _, l := range lines {
			if n, err := strconv.Atoi(strings.TrimPrefix(l, "message: ")); err == nil {
				pid = n
			}
			if s, ok := strings.CutPrefix(l, "message: script "); ok {
				script = s
			}
		}
		return pid != 0 && script != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, protocol.ErrCancelled) {
		t.Errorf("Provision error = %v, want ErrCancelled", err)
	}
	bttest.WaitGone(t, pid)
	if _, err := os.Stat(script); !os.IsNotExist(err) {
		t.Errorf("inline script %s after cancel: %v, want it removed", script, err)
	}
}

// checkOutput compares the message lines and the error lines with those of
// want, each in order; stdout and stderr are separate pipes, so the order
// between the two is not defined.
func checkOutput(t *testing.T, ui *bttest.UI, want []string) {
	t.Helper()
	for _, kind := range []string{"message", "error"} {
		var w []string
		for _, l := range want {
			if strings.HasPrefix(l, kind+": ") {
				w = append(w, l)
			}
		}
		if diff := cmp.Diff(w, ui.Lines(kind)); diff != "" {
			t.Errorf("%s lines (-want +got):\n%s", kind, diff)
		}
	}
}
