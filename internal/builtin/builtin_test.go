package builtin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

// envServe makes the test binary serve the named builtin, as
// "packer plugin NAME" does (the helper-process pattern).
const envServe = "BUILTIN_TEST_SERVE"

func TestMain(m *testing.M) {
	if name := os.Getenv(envServe); name != "" {
		err := builtin.Serve(name, "test")
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(m)
}

// start runs the builtin binary as a real plugin process.
func start(t *testing.T, binary string, opts host.Options) *host.Plugin {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envServe+"="+binary)
	opts.Name = binary
	if opts.UI != nil {
		opts.Capabilities = protocol.HostCapabilities{Ask: true, Progress: true}
	}
	p, err := host.Start(context.Background(), cmd, opts)
	if err != nil {
		t.Fatalf("starting %s: %v", binary, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing %s: %v", binary, err)
		}
	})
	return p
}

func TestComponents(t *testing.T) {
	var got []string
	for _, c := range builtin.Components() {
		got = append(got, c.Type+" "+c.Name+" "+c.Binary)
	}
	want := []string{
		"builder file packer-builder-file",
		"builder null packer-builder-null",
		"builder docker packer-builder-docker",
		"provisioner shell-local packer-provisioner-shell-local",
		"provisioner shell packer-provisioner-shell",
		"provisioner file packer-provisioner-file",
		"provisioner breakpoint packer-provisioner-breakpoint",
		"provisioner sleep packer-provisioner-sleep",
		"post-processor shell-local packer-post-processor-shell-local",
		"post-processor manifest packer-post-processor-manifest",
		"post-processor checksum packer-post-processor-checksum",
		"post-processor compress packer-post-processor-compress",
		"post-processor artifice packer-post-processor-artifice",
		"post-processor docker-tag packer-post-processor-docker-tag",
		"post-processor docker-import packer-post-processor-docker-import",
		"post-processor docker-save packer-post-processor-docker-save",
		"post-processor docker-push packer-post-processor-docker-push",
		"datasource null packer-datasource-null",
		"datasource http packer-datasource-http",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	if c, ok := builtin.Lookup("packer-provisioner-shell"); !ok || c.Name != "shell" || c.Type != protocol.TypeProvisioner {
		t.Errorf("Lookup(packer-provisioner-shell) = %+v, %v", c, ok)
	}
	if _, ok := builtin.Lookup("packer-builder-amazon-ebs"); ok {
		t.Errorf("Lookup found a builtin amazon-ebs builder")
	}
}

func TestServeUnknown(t *testing.T) {
	err := builtin.Serve("packer-builder-amazon-ebs", "test")
	var ue *builtin.UnknownError
	if !errors.As(err, &ue) || ue.Binary != "packer-builder-amazon-ebs" {
		t.Fatalf("Serve error = %v, want *UnknownError", err)
	}
	for _, c := range builtin.Components() {
		if !strings.Contains(err.Error(), c.Binary) {
			t.Errorf("error %q does not list %s", err, c.Binary)
		}
	}
}

// TestProcesses runs every builtin as its own process: it serves exactly
// its component, every configuration key has a description, and prepare
// of an empty configuration answers (accepted or rejected), not a crash.
func TestProcesses(t *testing.T) {
	for _, c := range builtin.Components() {
		t.Run(c.Binary, func(t *testing.T) {
			p := start(t, c.Binary, host.Options{})
			if got := p.Info().Plugin; got.Name != c.Binary || got.Version != "test" {
				t.Errorf("plugin reports itself as %+v, want %s version test", got, c.Binary)
			}
			comps := p.Components()
			if len(comps) != 1 || comps[0].Type != c.Type || comps[0].Name != c.Name {
				t.Fatalf("components = %+v, want only %s %s", comps, c.Type, c.Name)
			}
			var schema struct {
				Properties map[string]struct {
					Description string `json:"description"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(comps[0].ConfigSchema, &schema); err != nil {
				t.Fatal(err)
			}
			for k, v := range schema.Properties {
				if v.Description == "" {
					t.Errorf("config key %s has no description", k)
				}
			}
			_, _, err := p.Prepare(context.Background(), c.Type, c.Name, map[string]any{})
			if err != nil && !errors.Is(err, protocol.ErrConfigInvalid) {
				t.Errorf("prepare of {}: %v", err)
			}
		})
	}
}

// TestProvisionThroughHost runs a null builder with the local communicator
// in one process and, from its provisioning hook, a shell and a file
// provisioner in two more, whose communicator calls the host relays to the
// builder process: commands run and files move in the builder's local_dir.
func TestProvisionThroughHost(t *testing.T) {
	local, work := t.TempDir(), filepath.Join(t.TempDir(), "work")
	bttest.WriteTree(t, local, map[string]string{"up/1.txt": "1", "up/sub/2.txt": "2"})
	ui := bttest.NewUI()
	shell := start(t, "packer-provisioner-shell", host.Options{UI: ui})
	file := start(t, "packer-provisioner-file", host.Options{UI: ui})
	ctx := context.Background()
	keys := bttest.PackerKeys("b", "null")
	steps := []struct {
		p      *host.Plugin
		name   string
		config map[string]any
	}{
		{file, "file", map[string]any{"source": local + "/up", "destination": "dst"}},
		{shell, "shell", map[string]any{"inline": []string{"cat dst/up/1.txt dst/up/sub/2.txt > both.txt", "echo ran in $(pwd)"}}},
		{file, "file", map[string]any{"source": "dst/", "destination": local + "/down", "direction": "download"}},
		{file, "file", map[string]any{"source": "both.txt", "destination": local + "/down/", "direction": "download"}},
	}
	var insts []*host.Instance
	for _, s := range steps {
		inst, _, err := s.p.Prepare(ctx, protocol.TypeProvisioner, s.name, s.config, keys)
		if err != nil {
			t.Fatalf("prepare %s: %v", s.name, err)
		}
		insts = append(insts, inst)
	}
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		for _, inst := range insts {
			if err := inst.Provision(ctx, comm, data); err != nil {
				return err
			}
		}
		return nil
	})
	null := start(t, "packer-builder-null", host.Options{UI: ui, Hook: hook})
	inst, _, err := null.Prepare(ctx, protocol.TypeBuilder, "null", map[string]any{"communicator": "local", "local_dir": work}, keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Run(ctx); err != nil {
		t.Fatal(err)
	}
	wantWork := map[string]string{"both.txt": "12", "dst/": "", "dst/up/": "", "dst/up/1.txt": "1", "dst/up/sub/": "", "dst/up/sub/2.txt": "2"}
	if diff := cmp.Diff(wantWork, bttest.Tree(t, work)); diff != "" {
		t.Errorf("machine files (-want +got):\n%s", diff)
	}
	wantDown := map[string]string{"down/": "", "down/both.txt": "12", "down/up/": "", "down/up/1.txt": "1", "down/up/sub/": "", "down/up/sub/2.txt": "2"}
	if diff := cmp.Diff(wantDown, filter(bttest.Tree(t, local), "down/")); diff != "" {
		t.Errorf("downloaded files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"message: ran in " + work}, ui.Lines("message")); diff != "" {
		t.Errorf("shell output (-want +got):\n%s", diff)
	}
}

func filter(tree map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range tree {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}
