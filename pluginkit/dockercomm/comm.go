// Package dockercomm is a [pluginkit.Communicator] for a running Docker
// container, through the Docker Engine API (the official Go client,
// github.com/moby/moby/client): nothing shells out to the docker CLI.
//
// A builder that runs a container creates a client (client.New with
// client.FromEnv honours DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and
// DOCKER_API_VERSION; the API version is negotiated with the daemon), starts
// the container with a long-running process (Packer runs /bin/sh reading a
// terminal that stays open), calls [New] with the container's id and hands
// the result to [pluginkit.Hook.Run]. The Comm holds no resources of its
// own: removing the container ends everything it started.
//
// Commands run through the exec API (like docker exec) with their standard
// streams attached; files and directories travel as tar streams through the
// archive API (like docker cp), written and read as they are transferred:
// nothing is copied whole into memory or into a temporary file. A command
// whose context is cancelled is killed inside the container, with every
// process it started.
package dockercomm

import (
	"context"
	"fmt"
	"path"
	"sync"

	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/pluginkit"
)

// Options configures a [Comm].
type Options struct {
	// User runs commands as this user (name or uid[:gid], as docker exec
	// --user); empty runs them as the container's user.
	User string
	// FixUploadOwner makes uploaded files and directories owned by the
	// container's user (its configured User, root when empty) rather than
	// root, as Packer's fix_upload_owner does.
	FixUploadOwner bool
}

// Comm runs commands in and moves files into and out of one container. It
// is safe for concurrent use. Relative paths are relative to the
// container's working directory (/ when it has none).
type Comm struct {
	api       client.APIClient
	container string
	opts      Options

	mu      sync.Mutex
	workdir string // "" until inspected
	user    string // the container's configured user
}

var _ pluginkit.Communicator = (*Comm)(nil)

// New returns a Comm for the running container id, reached through api.
// It does not contact the engine.
func New(api client.APIClient, id string, opts Options) *Comm {
	return &Comm{api: api, container: id, opts: opts}
}

// ContainerID returns the id of the Comm's container.
func (c *Comm) ContainerID() string { return c.container }

// info inspects the container for its working directory and configured
// user, until that succeeds once.
func (c *Comm) info(ctx context.Context) (workdir, user string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.workdir != "" {
		return c.workdir, c.user, nil
	}
	res, err := c.api.ContainerInspect(ctx, c.container, client.ContainerInspectOptions{})
	if err != nil {
		return "", "", fmt.Errorf("inspecting container %s: %w", short(c.container), err)
	}
	c.workdir = "/"
	if cfg := res.Container.Config; cfg != nil {
		if cfg.WorkingDir != "" {
			c.workdir = cfg.WorkingDir
		}
		c.user = cfg.User
	}
	return c.workdir, c.user, nil
}

// abs resolves p against the container's working directory.
func (c *Comm) abs(ctx context.Context, p string) (string, error) {
	if path.IsAbs(p) {
		return path.Clean(p), nil
	}
	wd, _, err := c.info(ctx)
	if err != nil {
		return "", err
	}
	return path.Join(wd, p), nil
}

// short returns the 12-character form of a container or exec id.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
