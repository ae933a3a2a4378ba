package host_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// Start a plugin binary, ask it what it serves, prepare a builder with a bad
// and then a good configuration, run it with a hook that provisioning would
// use, and shut it down. (examplePlugin is the example plugin, built by this
// package's TestMain from examples/plugins/packer-plugin-example.)
func ExampleStart() {
	if exampleBuildErr != nil {
		fmt.Println(exampleBuildErr)
		return
	}
	out, err := os.MkdirTemp("", "example-start-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(out)

	ctx := context.Background()
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		fmt.Println("hook:", name, "with a communicator:", comm != nil)
		return nil
	})
	p, err := host.Start(ctx, exec.Command(examplePlugin), host.Options{Hook: hook})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	fmt.Println("plugin:", p.Info().Plugin.Name)
	for _, c := range p.Components() {
		fmt.Println("component:", c.Type, c.Name)
	}

	_, _, err = p.Prepare(ctx, protocol.TypeBuilder, "example", map[string]any{"content": "hi"})
	for _, ce := range host.ConfigErrors(err) {
		fmt.Printf("config error at %s: %s\n", ce.Path, ce.Message)
	}

	inst, _, err := p.Prepare(ctx, protocol.TypeBuilder, "example", map[string]any{"output": out, "content": "hi"})
	if err != nil {
		fmt.Println(err)
		return
	}
	art, err := inst.Run(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("artifact from:", art.BuilderID, "files:", len(art.Files))
	fmt.Println("close:", p.Close())
	// Output:
	// plugin: packer-plugin-example
	// component: builder example
	// component: provisioner example-shell
	// component: post-processor example-checksum
	// config error at /output: missing required key
	// hook: packer_provision with a communicator: true
	// artifact from: example.builder files: 1
	// close: <nil>
}
