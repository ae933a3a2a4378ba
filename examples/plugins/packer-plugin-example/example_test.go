//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// recUi records what components show.
type recUi struct {
	mu    sync.Mutex
	lines []string
}

func (u *recUi) add(s string)              { u.mu.Lock(); u.lines = append(u.lines, s); u.mu.Unlock() }
func (u *recUi) Say(m string)              { u.add("say: " + m) }
func (u *recUi) Message(m string)          { u.add("message: " + m) }
func (u *recUi) Error(m string)            { u.add("error: " + m) }
func (u *recUi) Machine(string, ...string) {}
func (u *recUi) Ask(context.Context, string) (string, error) {
	return "", protocol.ErrUnsupported
}
func (u *recUi) TrackProgress(_ string, _, _ int64, r io.ReadCloser) io.ReadCloser { return r }

// provisionHook runs a provisioner in-process, as the host would through
// the relay.
type provisionHook struct {
	ui *recUi
	p  *ShellProvisioner
}

func (h provisionHook) Run(ctx context.Context, name string, comm pluginkit.Communicator, data map[string]any) error {
	if name != protocol.HookProvision {
		return fmt.Errorf("hook %q", name)
	}
	return h.p.Provision(ctx, h.ui, comm, data)
}

func TestBuildProvisionChecksum(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	b := &Builder{config: BuilderConfig{Output: out, Content: "hello"}}
	if w, err := b.Prepare(); err != nil || len(w) != 0 {
		t.Fatalf("prepare: %v, %v", w, err)
	}
	p := &ShellProvisioner{config: ShellConfig{Inline: []string{"echo $GREETING > greeting.txt", "cat artifact.txt; echo"}, EnvironmentVars: []string{"GREETING=it's me"}}}
	if _, err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	ui := &recUi{}
	a, err := b.Run(context.Background(), ui, provisionHook{ui, p})
	if err != nil {
		t.Fatalf("run: %v\n%v", err, ui.lines)
	}
	if diff := cmp.Diff([]string{filepath.Join(out, "artifact.txt"), filepath.Join(out, "greeting.txt")}, a.Files()); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "greeting.txt")); string(got) != "it's me\n" {
		t.Errorf("greeting.txt: %q", got)
	}
	if !strings.Contains(strings.Join(ui.lines, "\n"), "message: hello") {
		t.Errorf("command output not shown: %v", ui.lines)
	}

	c := &Checksum{}
	ca, keep, _, err := c.PostProcess(context.Background(), ui, a)
	if err != nil || !keep {
		t.Fatalf("checksum: %v keep=%v", err, keep)
	}
	sums, _ := os.ReadFile(ca.Files()[0])
	want := "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  " + filepath.Join(out, "artifact.txt")
	if !strings.HasPrefix(string(sums), want) {
		t.Errorf("CHECKSUM:\n%s\nwant first line %s", sums, want)
	}
	if err := a.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "artifact.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("artifact.txt after Destroy: %v", err)
	}
}

func TestProvisionerFailsOnExitStatus(t *testing.T) {
	p := &ShellProvisioner{config: ShellConfig{Inline: []string{"exit 7"}}}
	b := &Builder{config: BuilderConfig{Output: t.TempDir()}}
	b.Prepare()
	_, err := b.Run(context.Background(), &recUi{}, provisionHook{&recUi{}, p})
	if err == nil || !strings.Contains(err.Error(), "status 7") {
		t.Errorf("got %v, want an error with the status", err)
	}
}

func TestBuilderCancelWhileWaiting(t *testing.T) {
	b := &Builder{config: BuilderConfig{Output: t.TempDir(), Wait: "1h"}}
	if _, err := b.Prepare(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Run(ctx, &recUi{}, provisionHook{}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestPrepareErrors(t *testing.T) {
	tests := []struct {
		name string
		c    pluginkit.Configurable
		want []string
	}{
		{"builder", &Builder{config: BuilderConfig{Wait: "soon"}}, []string{"/output", "/wait"}},
		{"shell", &ShellProvisioner{config: ShellConfig{Inline: []string{"x"}, EnvironmentVars: []string{"OK=1", "bad"}}}, []string{"/environment_vars/1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Prepare()
			var ces pluginkit.ConfigErrors
			if !errors.As(err, &ces) {
				t.Fatalf("got %v, want ConfigErrors", err)
			}
			var paths []string
			for _, ce := range ces {
				paths = append(paths, ce.Path)
			}
			if diff := cmp.Diff(tc.want, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}
