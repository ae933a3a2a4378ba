package builders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/packer-stdio/packer/internal/builtin/internal/output"
	"github.com/packer-stdio/packer/internal/ctxio"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/steps"
	"github.com/packer-stdio/packer/protocol"
)

// FileBuilderID is the builder id of the file builder's artifacts.
const FileBuilderID = "packer.file"

// FileConfig is the configuration of [File].
type FileConfig struct {
	pluginkit.PackerConfig
	Source  string  `json:"source,omitempty" jsonschema_description:"Path of a file to copy to target. Exactly one of source and content is required."`
	Content *string `json:"content,omitempty" jsonschema_description:"Text to write to target (may be empty). Exactly one of source and content is required."`
	Target  string  `json:"target" jsonschema:"required" jsonschema_description:"Path of the file to create; its parent directories are created. The artifact is this file."`
}

// File is the file builder: it writes content, or a copy of source, to
// target and returns that file as the artifact (builder id "packer.file",
// id the target path). The file is written to a temporary name in target's
// directory and renamed when complete, so a cancelled or failed build never
// leaves a partial target. An existing target is an error unless packer
// runs with -force, which replaces it; a target that is not a regular file
// (a device such as /dev/full, a directory, a symbolic link) is refused
// either way. Like Packer's, it then runs the provisioning
// hook without a communicator (provisioners such as shell-local still run)
// and, if that fails, removes target unless packer runs with
// -on-error=abort (or -on-error=ask, answered "a"). Writing and provisioning
// are steps (pluginkit/steps): -debug pauses after each, -on-error=ask can
// retry the failed one. Destroying the artifact removes the file.
//
// Unlike Packer, which accepts neither source nor content (with a
// warning), exactly one is required; "content": "" writes an empty file.
type File struct {
	config FileConfig
}

var _ pluginkit.Builder = (*File)(nil)

// KeyRules implements [pluginkit.KeyRuler]: "content": "" counts as set.
func (FileConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.ExactlyOneOf("source", "content")}
}

// Config implements [pluginkit.Configurable].
func (b *File) Config() any { return &b.config }

// Prepare implements [pluginkit.Configurable].
func (b *File) Prepare() ([]string, error) {
	c := &b.config
	var errs pluginkit.ConfigErrors
	switch {
	case c.Source != "" && c.Content != nil:
		errs = append(errs, pluginkit.ConfigError{Path: "/content", Message: "only one of source and content may be set"})
	case c.Source == "" && c.Content == nil:
		errs = append(errs, pluginkit.ConfigError{Path: "/content", Message: "one of source or content is required"})
	}
	if c.Source != "" {
		if fi, err := os.Stat(c.Source); err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: "/source", Message: fmt.Sprintf("cannot read source: %v", err)})
		} else if !fi.Mode().IsRegular() {
			errs = append(errs, pluginkit.ConfigError{Path: "/source", Message: fmt.Sprintf("source %s is not a regular file", c.Source)})
		}
	}
	if c.Target == "" {
		errs = append(errs, pluginkit.ConfigError{Path: "/target", Message: "must not be empty"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

// Run writes target and runs the provisioning hook.
func (b *File) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	c := &b.config
	wrote, provisioned := false, false
	err := steps.Run(ctx, ui, c.PackerConfig,
		steps.Step{Name: "write target", Run: func(ctx context.Context) error {
			n, err := b.write(ctx, ui)
			if err != nil {
				return err
			}
			wrote = true
			ui.Message(fmt.Sprintf("Wrote %d bytes", n))
			return nil
		}, Cleanup: func(context.Context) error {
			if wrote && !provisioned { // a failed build leaves no target
				os.Remove(c.Target)
			}
			return nil
		}},
		steps.Step{Name: "provision", Run: func(ctx context.Context) error {
			if err := hook.Run(ctx, protocol.HookProvision, nil, nil); err != nil {
				return err
			}
			provisioned = true
			return nil
		}},
	)
	if err != nil {
		return nil, err
	}
	target := c.Target
	return &pluginkit.BasicArtifact{
		BuilderIDValue: FileBuilderID,
		IDValue:        target,
		StringValue:    "Stored file: " + target,
		FilesValue:     []string{target},
		DestroyFunc: func(context.Context) error {
			if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		},
	}, nil
}

// write writes content, or a copy of source, to target and returns how
// many bytes it wrote.
func (b *File) write(ctx context.Context, ui pluginkit.UI) (int64, error) {
	c := &b.config
	if c.Source == "" {
		ui.Say(fmt.Sprintf("Writing content to %s", c.Target))
		return writeFile(ctx, c.Target, strings.NewReader(*c.Content), 0o644, c.Force)
	}
	f, err := os.Open(c.Source)
	if err != nil {
		return 0, fmt.Errorf("opening source: %w", err)
	}
	defer f.Close()
	mode := fs.FileMode(0o644)
	if fi, err := f.Stat(); err == nil {
		mode = fi.Mode().Perm()
	}
	ui.Say(fmt.Sprintf("Copying %s to %s", c.Source, c.Target))
	return writeFile(ctx, c.Target, f, mode, c.Force)
}

// writeFile writes r to path through a temporary file in the same
// directory, put in place only when complete (see package output for the
// -force rule); it stops when ctx is done. Parent directories are created.
func writeFile(ctx context.Context, path string, r io.Reader, mode fs.FileMode, force bool) (int64, error) {
	if err := output.Check(path, force); err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("creating the directory of target %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.part")
	if err != nil {
		return 0, fmt.Errorf("creating target %s: %w", path, err)
	}
	n, err := io.Copy(tmp, ctxio.Reader(ctx, r))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = output.Place(tmp.Name(), path, force)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return n, nil
}
