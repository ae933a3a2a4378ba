package provisioners_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

func TestShell(t *testing.T) {
	local := t.TempDir()
	s1 := writeScript(t, local, "one.sh", "#!/bin/sh\necho one \"$0\" $A\n")
	s2 := writeScript(t, local, "two.sh", "#!/bin/sh\necho two >&2; exit 2\n")
	tests := []struct {
		name      string
		config    map[string]any
		want      []string // message and error lines
		wantFiles map[string]string
	}{
		{"inline", map[string]any{"inline": []string{"echo a", "echo b >&2", "pwd > pwd.txt"}, "remote_path": "s.sh"},
			[]string{"message: a", "error: b"}, map[string]string{"pwd.txt": "WORK\n"}},
		{"packer variables", map[string]any{"inline": []string{"echo $PACKER_BUILD_NAME $PACKER_BUILDER_TYPE"}}, []string{"message: b null"}, map[string]string{}},
		{"environment_vars", map[string]any{"inline": []string{`echo "$A|$B"`}, "environment_vars": []string{"A=it's", "B=x y"}},
			[]string{"message: it's|x y"}, map[string]string{}},
		{"scripts", map[string]any{"scripts": []string{s1, s2}, "environment_vars": []string{"A=1"}, "remote_path": "sub/run.sh", "valid_exit_codes": []int{0, 2}},
			[]string{"message: one sub/run.sh 1", "error: two"}, map[string]string{"sub/": ""}},
		{"skip_clean", map[string]any{"script": s1, "remote_path": "kept.sh", "skip_clean": true},
			[]string{"message: one ./kept.sh"}, map[string]string{"kept.sh": "#!/bin/sh\necho one \"$0\" $A\n"}},
		{"execute_command", map[string]any{"inline": []string{"echo x"}, "execute_command": "{{.Vars}} sh {{.Path}} && echo via template"},
			[]string{"message: x", "message: via template"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := t.TempDir()
			ui := bttest.NewUI()
			if err := provision(t, ui, "shell", tt.config, bttest.LocalComm(work)); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, ui, tt.want)
			got := bttest.Tree(t, work)
			if v, ok := got["pwd.txt"]; ok {
				got["pwd.txt"] = strings.ReplaceAll(v, work, "WORK")
			}
			if diff := cmp.Diff(tt.wantFiles, got); diff != "" {
				t.Errorf("files left on the machine (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShellExitCode(t *testing.T) {
	local := t.TempDir()
	s := writeScript(t, local, "fail.sh", "#!/bin/sh\nexit 4\n")
	ui := bttest.NewUI()
	err := provision(t, ui, "shell", map[string]any{"script": s}, bttest.LocalComm(t.TempDir()))
	if !errors.Is(err, protocol.ErrComponentFailed) {
		t.Fatalf("Provision error = %v, want ErrComponentFailed", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "script "+s+" exited with status 4") {
		t.Errorf("error %q does not name the script and the status", msg)
	}
}

func TestShellNoCommunicator(t *testing.T) {
	err := provision(t, bttest.NewUI(), "shell", map[string]any{"inline": []string{"true"}}, nil)
	// The host's -32011 is kept through the provisioner's error: a
	// protocol error keeps its code (SPEC §4.2).
	if !errors.Is(err, protocol.ErrUnsupported) || !strings.Contains(err.Error(), "unsupported: the build has no communicator") {
		t.Errorf("Provision error = %v, want -32011 saying the build has no communicator", err)
	}
}

// dropComm is a communicator whose Start fails as a dropped connection.
type dropComm struct{ host.Communicator }

func (dropComm) Start(context.Context, *host.RemoteCmd) (int, error) {
	return -1, errors.New("connection reset")
}

func TestShellDisconnect(t *testing.T) {
	for _, expect := range []bool{false, true} {
		t.Run(map[bool]string{false: "unexpected", true: "expected"}[expect], func(t *testing.T) {
			comm := dropComm{bttest.LocalComm(t.TempDir())}
			err := provision(t, bttest.NewUI(), "shell", map[string]any{"inline": []string{"reboot"}, "expect_disconnect": expect}, comm)
			if (err == nil) != expect {
				t.Errorf("Provision error = %v, want error %v", err, !expect)
			}
			if err != nil && !strings.Contains(err.Error(), "expect_disconnect") {
				t.Errorf("error %q does not mention expect_disconnect", err)
			}
		})
	}
}

func TestShellConfigErrors(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	missing := filepath.Join(t.TempDir(), "nope.sh")
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"nothing", map[string]any{}, []string{"/inline: one of inline, script or scripts is required", "/script: one of inline, script or scripts is required", "/scripts: one of inline, script or scripts is required"}},
		{"inline and script", map[string]any{"inline": []string{"x"}, "script": missing},
			[]string{"/inline: only one of inline, script and scripts may be set; inline and script are set", "/script: only one of inline, script and scripts may be set; inline and script are set"}},
		{"command is not a shell key", map[string]any{"command": "x"}, []string{"/command: unknown key",
			"/inline: one of inline, script or scripts is required", "/script: one of inline, script or scripts is required", "/scripts: one of inline, script or scripts is required"}},
		{"bad template", map[string]any{"inline": []string{"x"}, "execute_command": "{{.Script}}"},
			[]string{`/execute_command: template: execute_command:1:2: executing "execute_command" at <.Script>: can't evaluate field Script in type provisioners.shellData`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "shell", tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}

// blockingComm runs nothing: Start waits for ctx, as a long command would.
type blockingComm struct {
	host.Communicator
	started chan struct{}
}

func (c blockingComm) Start(ctx context.Context, cmd *host.RemoteCmd) (int, error) {
	close(c.started)
	<-ctx.Done()
	return -1, ctx.Err()
}

func TestShellCancel(t *testing.T) {
	comm := blockingComm{bttest.LocalComm(t.TempDir()), make(chan struct{})}
	p := bttest.Start(t, register, host.Options{})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "shell", map[string]any{"inline": []string{"sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- inst.Provision(ctx, comm, nil) }()
	<-comm.started
	cancel()
	if err := <-errc; !errors.Is(err, protocol.ErrCancelled) {
		t.Errorf("Provision error = %v, want ErrCancelled", err)
	}
}
