package dockercomm_test

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/dockercomm"
	"github.com/packer-stdio/packer/protocol"
)

// A builder's Run: start a container that stays up, hand the provisioners a
// communicator into it, remove the container at the end. (Not run by go
// test: it needs an engine and the image.)
func Example() {
	run := func(ctx context.Context, hook pluginkit.Hook) error {
		cli, err := client.New(client.FromEnv) // DOCKER_HOST etc.; the API version is negotiated
		if err != nil {
			return err
		}
		defer cli.Close()
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: "busybox:latest", Entrypoint: []string{"/bin/sh"}, Tty: true, OpenStdin: true},
		})
		if err != nil {
			return err
		}
		defer cli.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
		if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			return err
		}
		comm := dockercomm.New(cli, res.ID, dockercomm.Options{FixUploadOwner: true})
		return hook.Run(ctx, protocol.HookProvision, comm, map[string]any{"ID": res.ID})
	}
	fmt.Println(run != nil)
}
