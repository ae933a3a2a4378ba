package postprocessors

import (
	"context"
	"fmt"
	"slices"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/internal/builtin/internal/dockerapi"
	"github.com/packer-stdio/packer/pluginkit"
)

// DockerPushConfig is the configuration of [DockerPush].
type DockerPushConfig struct {
	pluginkit.PackerConfig
	Login         bool   `json:"login,omitempty" jsonschema_description:"Send login_username and login_password to the registry."`
	LoginUsername string `json:"login_username,omitempty" jsonschema_description:"Registry user name, with login."`
	LoginPassword string `json:"login_password,omitempty" jsonschema_description:"Registry password, with login."`
	LoginServer   string `json:"login_server,omitempty" jsonschema_description:"Registry address the credentials are for, with login."`
	DockerPath    string `json:"docker_path,omitempty" jsonschema_description:"Accepted for Packer templates and ignored: the Engine API is used, not the docker CLI."`
}

// DockerPush is the docker-push post-processor: it pushes the image of a
// docker-tag or docker-import artifact (its id, then each reference in its
// state's "docker_tags") through the Engine API, with the login
// credentials when login is set (sent with each push; nothing is stored in a
// docker configuration). The artifact it returns describes the same image:
// the input's builder id, id and state; destroying it does nothing (the
// pushed image stays in the registry). Like Packer's it keeps its input.
// Not supported: ecr_login and the aws_* keys.
type DockerPush struct {
	config DockerPushConfig
}

var _ pluginkit.PostProcessor = (*DockerPush)(nil)

// Config implements [pluginkit.Configurable].
func (p *DockerPush) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *DockerPush) Prepare() ([]string, error) {
	c := &p.config
	var warnings []string
	if c.Login && (c.LoginUsername == "" || c.LoginPassword == "") {
		return nil, pluginkit.ConfigErrors{{Path: "/login", Message: "login needs login_username and login_password"}}
	}
	if !c.Login && (c.LoginUsername != "" || c.LoginPassword != "" || c.LoginServer != "") {
		warnings = append(warnings, "login_username, login_password and login_server are used only with login: they are ignored")
	}
	if c.DockerPath != "" {
		warnings = append(warnings, "docker_path is ignored: the Engine API is used, not the docker CLI")
	}
	return warnings, nil
}

// PostProcess pushes the image.
func (p *DockerPush) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	c := &p.config
	switch in.BuilderID() {
	case dockerapi.BuilderIDImport, dockerapi.BuilderIDTag:
	default:
		return nil, false, false, fmt.Errorf("docker-push: unknown artifact type %q: it pushes images of docker-import and docker-tag", in.BuilderID())
	}
	// The engine wants the header even without credentials ("{}").
	var creds registry.AuthConfig
	if c.Login {
		creds = registry.AuthConfig{Username: c.LoginUsername, Password: c.LoginPassword, ServerAddress: c.LoginServer}
	}
	auth, err := authconfig.Encode(creds)
	if err != nil {
		return nil, false, false, fmt.Errorf("docker-push: encoding the credentials: %w", err)
	}
	names := []string{in.ID()}
	if tags, ok := in.State()["docker_tags"].([]any); ok {
		for _, t := range tags {
			if s, ok := t.(string); ok && !slices.Contains(names, s) {
				names = append(names, s)
			}
		}
	}
	cli, err := dockerapi.Dial(ctx)
	if err != nil {
		return nil, false, false, err
	}
	defer cli.Close()
	for _, name := range names {
		ui.Message("Pushing: " + name)
		if err := push(ctx, ui, cli, name, auth); err != nil {
			return nil, false, false, fmt.Errorf("docker-push: pushing %s: %w", name, err)
		}
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: in.BuilderID(),
		IDValue:        in.ID(),
		StringValue:    in.String(),
		FilesValue:     []string{},
		StateValue:     in.State(),
	}, true, false, nil
}

// push pushes name, showing the engine's status lines.
func push(ctx context.Context, ui pluginkit.UI, cli *client.Client, name, auth string) error {
	resp, err := cli.ImagePush(ctx, name, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	defer resp.Close()
	return dockerapi.ShowProgress(ui, resp.JSONMessages(ctx))
}
