// Package sshbuilder is the SSH part of docs/writing-a-plugin.md: a builder
// whose provisioners reach a machine over SSH through pluginkit/sshcomm. It
// provisions a machine that already exists; a cloud builder would first
// create one and learn its address, then do the same.
//
// Every region between "guide:start NAME" and "guide:end" comments is
// quoted verbatim in the guide; docs/guide_test.go fails when they differ.
package sshbuilder

// guide:start ssh-builder
import (
	"context"
	"fmt"
	"log"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
	"github.com/packer-stdio/packer/protocol"
)

// Config embeds sshcomm.Options: the template keys ssh_host, ssh_port,
// ssh_username, ssh_private_key_file, ssh_timeout, ssh_bastion_host, ...
// with Packer's names and defaults, in the schema packer validates against.
type Config struct {
	pluginkit.PackerConfig
	sshcomm.Options
}

// Builder provisions the machine at ssh_host.
type Builder struct {
	config Config
}

// Config returns the struct each configuration is decoded into.
func (b *Builder) Config() any { return &b.config }

// Prepare fills in the SSH defaults and checks the SSH keys; true asks for
// a host and a way to log in, as Packer's null builder does.
func (b *Builder) Prepare() ([]string, error) {
	warnings, errs := b.config.Options.Prepare(true)
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// Run connects (Connect waits for the machine, saying "Waiting for SSH to
// become available...", within ssh_timeout) and hands the connection to
// the provisioners; it closes it once they are done.
func (b *Builder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	cfg, err := b.config.Options.Config(ui.Say)
	if err != nil {
		return nil, err
	}
	cfg.Log = func(msg string) { log.Print(msg) } // each failed attempt, with PACKER_LOG=1
	comm, err := sshcomm.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer comm.Close()
	data := map[string]any{"Host": cfg.Host, "Port": cfg.Port, "User": cfg.User}
	if err := hook.Run(ctx, protocol.HookProvision, comm, data); err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: "guide.ssh",
		IDValue:        cfg.Host,
		StringValue:    "provisioned " + cfg.Host,
		FilesValue:     []string{},
	}, nil
}

// guide:end
