// Package dockerapi holds what the docker builder and the docker-*
// post-processors share: the connection to the Docker Engine, Packer's
// builder ids, image artifacts, and checks of platform strings and
// Dockerfile changes.
package dockerapi

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/packer-stdio/packer/pluginkit"
)

// Builder ids, Packer's: a committed or imported image, an exported tar
// file, a tagged image and a saved image.
const (
	BuilderIDImport = "packer.post-processor.docker-import"
	BuilderIDExport = "packer.docker"
	BuilderIDTag    = "packer.post-processor.docker-tag"
	BuilderIDSave   = "packer.post-processor.docker-save"
	// BuilderIDArtifice is the artifice post-processor's, whose files
	// docker-import accepts as Packer's does.
	BuilderIDArtifice = "packer.post-processor.artifice"
)

// pingTimeout bounds the first contact with the engine.
const pingTimeout = 30 * time.Second

// Dial returns a client for the engine the environment names (DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION, as the docker CLI
// reads them), after a ping that also negotiates the API version. The
// caller closes it.
func Dial(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker engine client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("cannot reach the Docker Engine at %s (set DOCKER_HOST to reach another): %w", cli.DaemonHost(), err)
	}
	return cli, nil
}

// ImageArtifact returns the artifact of an image: id is the image id or a
// reference; destroying it removes that image or tag (not forced: an image
// a container still uses stays).
func ImageArtifact(builderID, id, desc string, state map[string]any) *pluginkit.BasicArtifact {
	return &pluginkit.BasicArtifact{
		BuilderIDValue: builderID,
		IDValue:        id,
		StringValue:    desc,
		FilesValue:     []string{},
		StateValue:     state,
		DestroyFunc:    func(ctx context.Context) error { return RemoveImage(ctx, id) },
	}
}

// RemoveImage removes the image or tag ref; one already gone is not an
// error.
func RemoveImage(ctx context.Context, ref string) error {
	cli, err := Dial(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing image %s: %w", ref, err)
	}
	return nil
}

// ParsePlatform parses "os[/arch[/variant]]", as docker --platform does.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os[/arch[/variant]]", s)
	}
	for _, p := range parts {
		if p == "" {
			return ocispec.Platform{}, fmt.Errorf("platform %q: want os[/arch[/variant]]", s)
		}
	}
	p := ocispec.Platform{OS: strings.ToLower(parts[0])}
	if len(parts) > 1 {
		p.Architecture = strings.ToLower(parts[1])
	}
	if len(parts) > 2 {
		p.Variant = strings.ToLower(parts[2])
	}
	return p, nil
}

// ChangeInstructions are the Dockerfile instructions the engine applies on
// commit and import.
var ChangeInstructions = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR"}

// CheckChanges returns an error, with a JSON pointer under path, for each
// change that is not one of [ChangeInstructions] followed by arguments.
// The engine parses the arguments.
func CheckChanges(path string, changes []string) pluginkit.ConfigErrors {
	var errs pluginkit.ConfigErrors
	for i, ch := range changes {
		instr, args, _ := strings.Cut(strings.TrimSpace(ch), " ")
		ok := false
		for _, in := range ChangeInstructions {
			if strings.EqualFold(instr, in) {
				ok = true
			}
		}
		p := fmt.Sprintf("%s/%d", path, i)
		switch {
		case !ok:
			errs = append(errs, pluginkit.ConfigError{Path: p, Message: fmt.Sprintf("%q: the instruction must be one of %s", ch, strings.Join(ChangeInstructions, ", "))})
		case strings.TrimSpace(args) == "":
			errs = append(errs, pluginkit.ConfigError{Path: p, Message: fmt.Sprintf("%q: %s needs arguments", ch, strings.ToUpper(instr))})
		}
	}
	return errs
}

// Short returns the 12-character form of an id, without "sha256:".
func Short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ShowProgress relays the status lines of an image pull or push, as the
// engine streams them in msgs, to ui ("ID: status", progress bars left
// out). It returns the first error of the stream or of a message in it,
// or nil once the stream ends.
func ShowProgress(ui pluginkit.UI, msgs iter.Seq2[jsonstream.Message, error]) error {
	for msg, err := range msgs {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		if msg.Progress == nil && msg.Status != "" {
			line := msg.Status
			if msg.ID != "" {
				line = msg.ID + ": " + line
			}
			ui.Message(line)
		}
	}
	return nil
}
