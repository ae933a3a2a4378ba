package builders

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
	"github.com/packer-stdio/packer/pluginkit/steps"
	"github.com/packer-stdio/packer/protocol"
)

// NullBuilderID is the builder id of the null builder's artifact, Packer's.
const NullBuilderID = "fnoeding.null"

// Communicator types of the null builder.
const (
	CommunicatorSSH   = "ssh"
	CommunicatorNone  = "none"
	CommunicatorLocal = "local"
)

// NullConfig is the configuration of [Null].
type NullConfig struct {
	pluginkit.PackerConfig
	Communicator string `json:"communicator,omitempty" jsonschema:"enum=ssh,enum=none,enum=local,default=ssh" jsonschema_description:"ssh (the default, as in Packer): provisioners reach ssh_host over SSH. none: provisioners get no communicator. local: provisioners run commands and copy files on this machine, in local_dir."`
	LocalDir     string `json:"local_dir,omitempty" jsonschema_description:"Working directory of the local communicator; created if missing. Default: the current directory."`
	sshcomm.Options
}

// Null is the null builder: it builds nothing and runs the provisioners.
// Its communicator is, as in Packer, "ssh" unless the template says
// otherwise: it connects to ssh_host with Packer's ssh_* options
// (pluginkit/sshcomm) and hands the connection to the provisioners. With
// communicator "local" it hands them a communicator on this machine
// (pluginkit/localcomm) working in local_dir, so provisioners that run
// commands and move files work without a machine to reach.
//
// The hook data (Packer's generated data) is {"ID": "null", "ConnType":
// communicator, "Host": ssh_host, "localhost" or "", "Port": ssh_port or 0,
// "User": ssh_username or "", "LocalDir": local_dir or "",
// "PackerRunUUID": $PACKER_RUN_UUID}. Like Packer's null builder, it
// returns an artifact with no files (builder id "fnoeding.null", id "Null",
// the hook data in its state under "generated_data") so that
// post-processors run.
type Null struct {
	config NullConfig
}

var _ pluginkit.Builder = (*Null)(nil)

// Config implements [pluginkit.Configurable].
func (b *Null) Config() any { return &b.config }

// Prepare implements [pluginkit.Configurable]. local_dir is made absolute.
func (b *Null) Prepare() ([]string, error) {
	c := &b.config
	var warnings []string
	var errs pluginkit.ConfigErrors
	switch c.Communicator {
	case "":
		c.Communicator = CommunicatorSSH
	case CommunicatorSSH, CommunicatorNone, CommunicatorLocal:
	default:
		errs = append(errs, pluginkit.ConfigError{Path: "/communicator", Message: fmt.Sprintf("must be %q, %q or %q, not %q", CommunicatorSSH, CommunicatorNone, CommunicatorLocal, c.Communicator)})
	}
	if c.Communicator == CommunicatorSSH {
		w, e := c.Options.Prepare(true)
		warnings = append(warnings, w...)
		errs = append(errs, e...)
	}
	if c.Communicator == CommunicatorLocal {
		dir := c.LocalDir
		if dir == "" {
			dir = "."
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: "/local_dir", Message: err.Error()})
		}
		c.LocalDir = abs
	} else if c.LocalDir != "" {
		warnings = append(warnings, "local_dir is ignored unless communicator is \"local\"")
	}
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// Run runs the provisioning hook and returns the null artifact.
func (b *Null) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	c := &b.config
	data := map[string]any{
		"ID":            "null",
		"ConnType":      c.Communicator,
		"Host":          "",
		"Port":          0,
		"User":          "",
		"LocalDir":      "",
		"PackerRunUUID": os.Getenv("PACKER_RUN_UUID"),
	}
	var comm pluginkit.Communicator
	var sc *sshcomm.Comm
	defer func() { // the connection is not something to leave for inspection
		if sc != nil {
			sc.Close()
		}
	}()
	err := steps.Run(ctx, ui, c.PackerConfig,
		steps.Step{Name: "connect", Run: func(ctx context.Context) error {
			switch c.Communicator {
			case CommunicatorSSH:
				cfg, err := c.Options.Config(ui.Say)
				if err != nil {
					return err
				}
				cfg.Log = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
				if sc, err = sshcomm.Connect(ctx, cfg); err != nil {
					return err
				}
				comm = sc
				data["Host"] = cfg.Host
				data["Port"] = cfg.Port
				data["User"] = cfg.User
			case CommunicatorLocal:
				if err := os.MkdirAll(c.LocalDir, 0o755); err != nil {
					return fmt.Errorf("creating local_dir: %w", err)
				}
				ui.Say(fmt.Sprintf("Using the local communicator in %s", c.LocalDir))
				comm = localcomm.New(c.LocalDir)
				data["Host"] = "localhost"
				data["LocalDir"] = c.LocalDir
			}
			return nil
		}},
		steps.Step{Name: "provision", Run: func(ctx context.Context) error {
			return hook.Run(ctx, protocol.HookProvision, comm, data)
		}},
	)
	if err != nil {
		return nil, err
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: NullBuilderID,
		IDValue:        "Null",
		StringValue:    "Did not export anything. This is the null builder",
		FilesValue:     []string{},
		StateValue:     map[string]any{"generated_data": data},
	}, nil
}
