package builders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/packer-stdio/packer/internal/builtin/internal/dockerapi"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/dockercomm"
	"github.com/packer-stdio/packer/pluginkit/steps"
	"github.com/packer-stdio/packer/protocol"
)

// DefaultContainerDir is container_dir's default, Packer's.
const DefaultContainerDir = "/packer-files"

// cleanupTimeout bounds removing the container after the build, which runs
// even when the build's context is cancelled.
const cleanupTimeout = 2 * time.Minute

// DockerConfig is the configuration of [Docker]: Packer's docker builder
// keys, less those listed in Docker's doc comment.
type DockerConfig struct {
	pluginkit.PackerConfig
	Image          string            `json:"image" jsonschema:"required" jsonschema_description:"The base image: a reference the engine knows or can pull."`
	Pull           *bool             `json:"pull,omitempty" jsonschema_description:"Pull the image before the build (default true). If the pull fails and the image is present locally, the local image is used and the build says so."`
	Commit         bool              `json:"commit,omitempty" jsonschema_description:"Commit the container to an image: the artifact is the image id. Exactly one of commit, export_path and discard."`
	ExportPath     string            `json:"export_path,omitempty" jsonschema_description:"Export the container's file system to this tar file: the artifact is the file. Exactly one of commit, export_path and discard."`
	Discard        bool              `json:"discard,omitempty" jsonschema_description:"Throw the container away: no artifact. Exactly one of commit, export_path and discard."`
	Changes        []string          `json:"changes,omitempty" jsonschema_description:"Dockerfile instructions applied on commit: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR."`
	Message        string            `json:"message,omitempty" jsonschema_description:"Commit message."`
	Author         string            `json:"author,omitempty" jsonschema_description:"Commit author."`
	RunCommand     []string          `json:"run_command,omitempty" jsonschema_description:"The docker run arguments the container is created from, {{.Image}} standing for the image. Default: -d -i -t --entrypoint=/bin/sh -- {{.Image}}. They are interpreted into Engine API options; unsupported flags are an error."`
	Volumes        map[string]string `json:"volumes,omitempty" jsonschema_description:"Host paths to mount in the container: host path to container path."`
	Privileged     bool              `json:"privileged,omitempty" jsonschema_description:"Run the container privileged."`
	ContainerDir   string            `json:"container_dir,omitempty" jsonschema_description:"A scratch directory in the container (default /packer-files), an anonymous volume removed with the container and never committed."`
	ExecUser       string            `json:"exec_user,omitempty" jsonschema_description:"User that runs provisioners' commands (docker exec --user); default the container's."`
	FixUploadOwner *bool             `json:"fix_upload_owner,omitempty" jsonschema_description:"Uploaded files are owned by the container's user rather than root (default true)."`
	Platform       string            `json:"platform,omitempty" jsonschema_description:"Platform of the image and container, os[/arch[/variant]]."`
	CapAdd         []string          `json:"cap_add,omitempty" jsonschema_description:"Linux capabilities to add."`
	CapDrop        []string          `json:"cap_drop,omitempty" jsonschema_description:"Linux capabilities to drop."`
	TmpFs          []string          `json:"tmpfs,omitempty" jsonschema_description:"tmpfs mounts, path[:options]."`
	Device         []string          `json:"device,omitempty" jsonschema_description:"Host devices to add, host[:container[:permissions]]."`
	Runtime        string            `json:"runtime,omitempty" jsonschema_description:"Container runtime (docker run --runtime)."`
	Communicator   string            `json:"communicator,omitempty" jsonschema:"enum=docker,enum=none,default=docker" jsonschema_description:"docker: provisioners reach the container through the engine (exec and archive API). none: no communicator."`
	DockerPath     string            `json:"docker_path,omitempty" jsonschema_description:"Accepted for Packer templates and ignored: the builder talks to the Engine API, not the docker CLI."`
}

// Docker is the docker builder: it runs a container from image, hands the
// provisioners a communicator into it ([dockercomm]: exec and the archive
// API of the Docker Engine, reached as DOCKER_HOST and the usual variables
// say), then commits the container to an image (artifact: the image id,
// builder id "packer.post-processor.docker-import" as Packer's), exports
// its file system to export_path (artifact: the tar file, builder id
// "packer.docker") or discards it (no artifact). Destroying the artifact
// removes the image or the file. The container is removed at the end, on
// failure and on cancellation; with -on-error=abort a failed build leaves
// it running and says its id (with -on-error=ask the user chooses: clean
// up, abort or retry the failed step). The work is done in steps
// (pluginkit/steps): pull image, start container, provision, and commit,
// export or discard; -debug pauses after each.
//
// The hook data (Packer's generated data) is {"ID": container id,
// "ConnType": "docker", "Host": "", "ContainerDir", "SourceImageSha256",
// "SourceImageDigest", "ImageSha256" (known after commit: the artifact's
// state has it under "generated_data"), "PackerRunUUID"}.
//
// Differences from Packer: run_command is interpreted into Engine API
// options rather than passed to the docker CLI, so only the docker run
// flags listed in its error are supported; container_dir is an anonymous
// volume rather than a bind of a host temporary directory (files travel
// through the archive API, so it also works with a remote engine); uploads
// are not staged through it. Not supported: build (Dockerfile builds),
// login, login_username, login_password, login_server, ecr_login and the
// aws_* keys (no registry), windows_container, and the ssh/winrm
// communicators.
type Docker struct {
	config DockerConfig
	pull   bool
	fixOwn bool
	run    *runSpec
	plat   *ocispec.Platform
}

var _ pluginkit.Builder = (*Docker)(nil)

// KeyRules implements [pluginkit.KeyRuler].
func (DockerConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.ExactlyOneOf("commit", "export_path", "discard")}
}

// Config implements [pluginkit.Configurable].
func (b *Docker) Config() any { return &b.config }

// Prepare implements [pluginkit.Configurable].
func (b *Docker) Prepare() ([]string, error) {
	c := &b.config
	var warnings []string
	var errs pluginkit.ConfigErrors
	add := func(p, format string, args ...any) {
		errs = append(errs, pluginkit.ConfigError{Path: p, Message: fmt.Sprintf(format, args...)})
	}
	if c.Image == "" {
		add("/image", "must not be empty")
	}
	b.pull = c.Pull == nil || *c.Pull
	b.fixOwn = c.FixUploadOwner == nil || *c.FixUploadOwner

	n := 0
	for _, set := range []bool{c.Commit, c.ExportPath != "", c.Discard} {
		if set {
			n++
		}
	}
	if n != 1 {
		add("/commit", "exactly one of commit, export_path and discard must be set")
	}
	if c.ExportPath != "" {
		abs, err := filepath.Abs(c.ExportPath)
		if err != nil {
			add("/export_path", "%v", err)
		}
		c.ExportPath = abs
		if _, err := os.Stat(abs); err == nil && !c.Force {
			add("/export_path", "%s already exists (packer build -force overwrites it)", abs)
		}
	}
	errs = append(errs, dockerapi.CheckChanges("/changes", c.Changes)...)
	if !c.Commit {
		if len(c.Changes) > 0 {
			warnings = append(warnings, "changes are applied only with commit: they are ignored")
		}
		if c.Message != "" || c.Author != "" {
			warnings = append(warnings, "message and author are used only with commit: they are ignored")
		}
	}
	if c.ContainerDir == "" {
		c.ContainerDir = DefaultContainerDir
	}
	if !path.IsAbs(c.ContainerDir) {
		add("/container_dir", "%q must be an absolute path", c.ContainerDir)
	}
	if c.Platform != "" {
		p, err := dockerapi.ParsePlatform(c.Platform)
		if err != nil {
			add("/platform", "%v", err)
		}
		b.plat = &p
	}
	switch c.Communicator {
	case "":
		c.Communicator = "docker"
	case "docker", "none":
	default:
		add("/communicator", "must be \"docker\" or \"none\", not %q (the ssh and winrm communicators are not supported)", c.Communicator)
	}
	if c.DockerPath != "" {
		warnings = append(warnings, "docker_path is ignored: the docker builder talks to the Engine API, not the docker CLI")
	}
	if len(c.RunCommand) == 0 {
		c.RunCommand = DefaultRunCommand
	}
	spec, err := parseRunCommand(c.RunCommand, c.Image)
	if err != nil {
		add("/run_command", "%v", err)
	} else {
		b.run = spec
		if err := b.applyKeys(spec); err != nil {
			errs = append(errs, err...)
		}
	}
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// applyKeys adds the builder's container keys to what run_command asks.
func (b *Docker) applyKeys(s *runSpec) pluginkit.ConfigErrors {
	c := &b.config
	var errs pluginkit.ConfigErrors
	hc := &s.HostConfig
	if c.Privileged {
		hc.Privileged = true
	}
	hc.CapAdd = append(hc.CapAdd, c.CapAdd...)
	hc.CapDrop = append(hc.CapDrop, c.CapDrop...)
	if c.Runtime != "" {
		hc.Runtime = c.Runtime
	}
	for i, t := range c.TmpFs {
		if err := addTmpfs(hc, t); err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: fmt.Sprintf("/tmpfs/%d", i), Message: err.Error()})
		}
	}
	for i, d := range c.Device {
		if err := addDevice(hc, d); err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: fmt.Sprintf("/device/%d", i), Message: err.Error()})
		}
	}
	for host, guest := range c.Volumes {
		if strings.HasPrefix(host, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				host = filepath.Join(home, host[2:])
			}
		}
		if !filepath.IsAbs(host) {
			abs, err := filepath.Abs(host)
			if err != nil {
				errs = append(errs, pluginkit.ConfigError{Path: "/volumes", Message: err.Error()})
			}
			host = abs
		}
		if !path.IsAbs(guest) {
			errs = append(errs, pluginkit.ConfigError{Path: "/volumes", Message: fmt.Sprintf("container path %q must be absolute", guest)})
		}
		hc.Binds = append(hc.Binds, host+":"+guest)
	}
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Target: c.ContainerDir})
	if c.Platform == "" && s.Platform != "" {
		p, err := dockerapi.ParsePlatform(s.Platform)
		if err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: "/run_command", Message: err.Error()})
		}
		b.plat = &p
	}
	return errs
}

// Run runs the container, the provisioning hook, and the commit, export or
// discard.
func (b *Docker) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	c := &b.config
	cli, err := dockerapi.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	var (
		src     imageInfo
		id      string
		removed bool
		art     pluginkit.Artifact
		data    = map[string]any{}
	)
	err = steps.Run(ctx, ui, c.PackerConfig,
		steps.Step{Name: "pull image", Run: func(ctx context.Context) (err error) {
			src, err = b.image(ctx, ui, cli)
			return err
		}},
		steps.Step{Name: "start container", Run: func(ctx context.Context) (err error) {
			id, err = b.startContainer(ctx, ui, cli)
			return err
		}, Cleanup: func(ctx context.Context) error {
			if id == "" {
				return nil
			}
			removed = true
			return removeContainer(ctx, ui, cli, id)
		}},
		steps.Step{Name: "provision", Run: func(ctx context.Context) error {
			maps.Copy(data, map[string]any{
				"ID":                id,
				"ConnType":          c.Communicator,
				"Host":              "",
				"ContainerDir":      c.ContainerDir,
				"SourceImageSha256": src.ID,
				"SourceImageDigest": "",
				"ImageSha256":       "ERR_IMAGE_SHA256_NOT_FOUND",
				"PackerRunUUID":     os.Getenv("PACKER_RUN_UUID"),
			})
			if len(src.RepoDigests) > 0 {
				data["SourceImageDigest"] = src.RepoDigests[0]
			}
			var comm pluginkit.Communicator
			if c.Communicator == "docker" {
				comm = dockercomm.New(cli, id, dockercomm.Options{User: c.ExecUser, FixUploadOwner: b.fixOwn})
			}
			return hook.Run(ctx, protocol.HookProvision, comm, data)
		}},
		steps.Step{Name: "commit, export or discard", Run: func(ctx context.Context) (err error) {
			art, err = b.finish(ctx, ui, cli, id, data)
			return err
		}},
	)
	if err != nil && id != "" && !removed {
		ui.Error(fmt.Sprintf("The build failed: container %s is left running for inspection; remove it with: docker rm -f %s", id, dockerapi.Short(id)))
	}
	if err != nil {
		return nil, err
	}
	return art, nil
}

// finish commits, exports or discards the container id and returns the
// artifact (nil when discarded).
func (b *Docker) finish(ctx context.Context, ui pluginkit.UI, cli *client.Client, id string, data map[string]any) (pluginkit.Artifact, error) {
	c := &b.config
	switch {
	case c.Commit:
		ui.Say("Committing the container")
		res, err := cli.ContainerCommit(ctx, id, client.ContainerCommitOptions{Comment: c.Message, Author: c.Author, Changes: c.Changes})
		if err != nil {
			return nil, fmt.Errorf("committing container %s: %w", dockerapi.Short(id), err)
		}
		ui.Message("Image ID: " + res.ID)
		data["ImageSha256"] = strings.TrimPrefix(res.ID, "sha256:")
		return dockerapi.ImageArtifact(dockerapi.BuilderIDImport, res.ID, "Imported Docker image: "+res.ID,
			map[string]any{"generated_data": data}), nil
	case c.ExportPath != "":
		if err := b.export(ctx, ui, cli, id); err != nil {
			return nil, err
		}
		p := c.ExportPath
		return &pluginkit.BasicArtifact{
			BuilderIDValue: dockerapi.BuilderIDExport,
			IDValue:        p,
			StringValue:    "Exported Docker file: " + p,
			FilesValue:     []string{p},
			StateValue:     map[string]any{"generated_data": data},
			DestroyFunc: func(context.Context) error {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				return nil
			},
		}, nil
	default:
		ui.Say("Discarding the container")
		return nil, nil
	}
}

// image makes sure the base image is present, pulling it when pull is set,
// and returns its inspection.
func (b *Docker) image(ctx context.Context, ui pluginkit.UI, cli *client.Client) (imageInfo, error) {
	c := &b.config
	if b.pull {
		ui.Say("Pulling Docker image: " + c.Image)
		perr := b.pullImage(ctx, ui, cli)
		if perr == nil {
			return inspectImage(ctx, cli, c.Image)
		}
		if ctx.Err() != nil {
			return imageInfo{}, perr
		}
		info, err := inspectImage(ctx, cli, c.Image)
		if err != nil {
			return imageInfo{}, fmt.Errorf("image %s is not present locally and pulling it failed: %w", c.Image, perr)
		}
		ui.Message(fmt.Sprintf("Pulling failed (%v): using the image present locally, %s. Set \"pull\": false to skip the pull.", perr, dockerapi.Short(info.ID)))
		return info, nil
	}
	info, err := inspectImage(ctx, cli, c.Image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return imageInfo{}, fmt.Errorf("image %s is not present locally, and pull is false: import or load it first, or set \"pull\": true: %w", c.Image, err)
		}
		return imageInfo{}, err
	}
	ui.Say(fmt.Sprintf("Using the local image %s (%s)", c.Image, dockerapi.Short(info.ID)))
	return info, nil
}

// pullImage pulls the image, showing the engine's status lines.
func (b *Docker) pullImage(ctx context.Context, ui pluginkit.UI, cli *client.Client) error {
	opts := client.ImagePullOptions{}
	if b.plat != nil {
		opts.Platforms = []ocispec.Platform{*b.plat}
	}
	resp, err := cli.ImagePull(ctx, b.config.Image, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return dockerapi.ShowProgress(ui, resp.JSONMessages(ctx))
}

type imageInfo struct {
	ID          string
	RepoDigests []string
}

func inspectImage(ctx context.Context, cli *client.Client, ref string) (imageInfo, error) {
	res, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return imageInfo{}, fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	return imageInfo{ID: res.ID, RepoDigests: res.RepoDigests}, nil
}

// startContainer creates and starts the container and checks it stays up.
// It returns the id of a created container even with an error.
func (b *Docker) startContainer(ctx context.Context, ui pluginkit.UI, cli *client.Client) (string, error) {
	s := b.run
	ui.Say("Starting the docker container")
	ui.Message("Run command: docker run " + strings.Join(renderedRunCommand(b.config.RunCommand, b.config.Image), " "))
	cfg := s.Config
	hc := s.HostConfig
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &cfg,
		HostConfig: &hc,
		Name:       s.Name,
		Platform:   b.plat,
	})
	if err != nil {
		return "", fmt.Errorf("creating the container from %s: %w", b.config.Image, err)
	}
	id := res.ID
	for _, w := range res.Warnings {
		ui.Message("Warning from the engine: " + w)
	}
	ui.Message("Container ID: " + id)
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return id, fmt.Errorf("starting container %s: %w", dockerapi.Short(id), err)
	}
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return id, fmt.Errorf("inspecting container %s: %w", dockerapi.Short(id), err)
	}
	if st := ins.Container.State; st != nil && !st.Running {
		return id, fmt.Errorf("container %s exited at once with status %d: run_command must keep it running (the default runs /bin/sh on an open terminal: -d -i -t --entrypoint=/bin/sh)", dockerapi.Short(id), st.ExitCode)
	}
	return id, nil
}

// renderedRunCommand returns run_command with the image filled in, for
// display.
func renderedRunCommand(args []string, image string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		r, err := renderImage(a, image)
		if err != nil {
			r = a
		}
		out[i] = r
	}
	return out
}

// export writes the container's file system to export_path, through a
// temporary file in the same directory renamed when complete.
func (b *Docker) export(ctx context.Context, ui pluginkit.UI, cli *client.Client, id string) error {
	p := b.config.ExportPath
	ui.Say("Exporting the container to " + p)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("export to %s: %w", p, err)
	}
	rc, err := cli.ContainerExport(ctx, id, client.ContainerExportOptions{})
	if err != nil {
		return fmt.Errorf("exporting container %s: %w", dockerapi.Short(id), err)
	}
	r := ui.TrackProgress(filepath.Base(p), 0, -1, rc)
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.part")
	if err != nil {
		return fmt.Errorf("export to %s: %w", p, err)
	}
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("export to %s: %w", p, err)
	}
	return nil
}

// removeContainer force-removes the container and its anonymous volumes
// (container_dir), on a context of its own: it runs after cancellation
// too.
func removeContainer(ctx context.Context, ui pluginkit.UI, cli *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	ui.Say("Removing the container " + dockerapi.Short(id))
	if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", dockerapi.Short(id), err)
	}
	return nil
}
