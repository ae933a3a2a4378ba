// Command host-demo runs the example plugin through the host library, step
// by step, printing what happens. It is the "run something real" command:
//
//	go run ./examples/host-demo            # builds the example plugin first
//	go run ./examples/host-demo PLUGIN     # uses a plugin binary you built
//
// It shows the handshake, the components and their schemas, a rejected
// configuration, a build whose provisioning hook runs the example-shell
// provisioner through the host (the relay), a post-processor, and a build
// cancelled while it waits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "host-demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "host-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := ""
	if len(os.Args) > 1 {
		bin = os.Args[1]
	} else {
		bin = filepath.Join(tmp, "packer-plugin-example")
		step("Building the example plugin (go build ./examples/plugins/packer-plugin-example)")
		cmd := exec.Command("go", "build", "-o", bin, "./examples/plugins/packer-plugin-example")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the example plugin (run from the repository root): %w", err)
		}
	}

	ui := printUI{}
	opts := host.Options{Name: "example", UI: ui, Stderr: os.Stderr}

	// The hook the builder runs: it provisions through a second process of
	// the same plugin, relaying the provisioner's communicator calls to the
	// builder.
	var provisioner *host.Plugin
	opts.Hook = host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		fmt.Printf("    [host] hook %q called by the builder; running example-shell through the builder's communicator\n", name)
		inst, _, err := provisioner.Prepare(ctx, protocol.TypeProvisioner, "example-shell", map[string]any{
			"inline":           []string{"echo hello from the provisioner, in $(pwd)", "cat artifact.txt"},
			"environment_vars": []string{"GREETING=hi"},
		})
		if err != nil {
			return err
		}
		return inst.Provision(ctx, comm, data)
	})

	step("Starting the plugin " + bin)
	p, err := host.Start(ctx, exec.Command(bin), opts)
	if err != nil {
		return err
	}
	defer p.Close()
	popts := opts
	popts.Name, popts.Hook = "example-provisioner", nil
	provisioner, err = host.Start(ctx, exec.Command(bin), popts)
	if err != nil {
		return err
	}
	defer provisioner.Close()

	info := p.Info()
	fmt.Printf("    plugin %s %s speaks protocol version %d\n", info.Plugin.Name, info.Plugin.Version, info.ProtocolVersion)
	for _, c := range p.Components() {
		fmt.Printf("    %-15s %-17s config keys: %s\n", c.Type, c.Name, schemaKeys(c.ConfigSchema))
	}

	step("Preparing the builder with a bad configuration")
	_, _, err = p.Prepare(ctx, protocol.TypeBuilder, "example", map[string]any{"output": "", "wait": "soon"})
	for _, ce := range host.ConfigErrors(err) {
		fmt.Printf("    %s: %s\n", ce.Path, ce.Message)
	}
	if host.ConfigErrors(err) == nil {
		return fmt.Errorf("expected configuration errors, got %v", err)
	}

	out := filepath.Join(tmp, "output")
	step("Preparing the builder with output " + out)
	b, warnings, err := p.Prepare(ctx, protocol.TypeBuilder, "example", map[string]any{"output": out, "content": "hello from host-demo\n"})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Println("    warning:", w)
	}

	step("Running the builder")
	art, err := b.Run(ctx)
	if err != nil {
		return err
	}
	printArtifact("builder artifact", art)

	step("Running the example-checksum post-processor on it")
	pp, _, err := p.Prepare(ctx, protocol.TypePostProcessor, "example-checksum", map[string]any{})
	if err != nil {
		return err
	}
	sums, keep, _, err := pp.PostProcess(ctx, *art)
	if err != nil {
		return err
	}
	printArtifact(fmt.Sprintf("post-processor artifact (keep input: %v)", keep), sums)

	step(`Running a second build with wait: "1m", cancelled after 200ms`)
	slow, _, err := p.Prepare(ctx, protocol.TypeBuilder, "example", map[string]any{"output": filepath.Join(tmp, "slow"), "wait": "1m"})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = slow.Run(cctx)
	cancel()
	fmt.Printf("    error: %v\n    cancelled by the plugin: %v\n", err, errors.Is(err, protocol.ErrCancelled))

	step("Closing the plugins")
	if err := provisioner.Close(); err != nil {
		return err
	}
	if err := p.Close(); err != nil {
		return err
	}
	fmt.Println("    done")
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func schemaKeys(schema json.RawMessage) string {
	var s struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return "(unreadable schema)"
	}
	var keys []string
	for k := range s.Properties {
		if !strings.HasPrefix(k, "packer_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ") + "  (required: " + strings.Join(s.Required, ", ") + ")"
}

func printArtifact(what string, a *protocol.Artifact) {
	if a == nil {
		fmt.Printf("    %s: none\n", what)
		return
	}
	fmt.Printf("    %s: %s (builder id %s)\n", what, a.String, a.BuilderID)
	for _, f := range a.Files {
		fmt.Printf("      file %s\n", f)
	}
}

// printUI prints what plugins say, indented under the current step.
type printUI struct{}

func (printUI) Say(msg string)     { fmt.Println("    [plugin] " + msg) }
func (printUI) Message(msg string) { fmt.Println("    [plugin]   " + msg) }
func (printUI) Error(msg string)   { fmt.Println("    [plugin] error: " + msg) }
func (printUI) Machine(typ string, data ...string) {
	fmt.Printf("    [plugin] machine %s %v\n", typ, data)
}
func (printUI) Progress(p protocol.UIProgressParams) {
	fmt.Printf("    [plugin] %s %s %d/%d\n", p.Label, p.State, p.Current, p.Total)
}
func (printUI) Ask(context.Context, string) (string, error) {
	return "", protocol.ErrUnsupported.WithMessage("host-demo does not ask")
}
