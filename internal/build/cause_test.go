package build_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/build"
	"github.com/packer-stdio/packer/protocol"
)

func configInvalid(errs ...protocol.ConfigError) error {
	data, _ := json.Marshal(protocol.ConfigInvalidData{Errors: errs})
	return &host.PluginError{Plugin: "packer-builder-file", Op: "component/prepare",
		Err: &protocol.Error{Code: protocol.CodeConfigInvalid, Message: "configuration invalid", Data: data}}
}

func TestPrepareError(t *testing.T) {
	c := build.Component{Type: protocol.TypeBuilder, Name: "file", Locate: func(p string) string {
		if p == "/taget" {
			return "t.json:7:5"
		}
		return ""
	}}
	err := build.PrepareError(c, []string{"content", "source", "target"}, configInvalid(
		protocol.ConfigError{Path: "/taget", Message: "unknown key"},
		protocol.ConfigError{Path: "/target", Message: "missing required key"},
		protocol.ConfigError{Path: "/zzzzzz", Message: "unknown key"},
		protocol.ConfigError{Path: "/content", Message: "one of source or content is required"},
		protocol.ConfigError{Path: "/source", Message: "one of source or content is required"},
		protocol.ConfigError{Message: "something else"},
		protocol.ConfigError{Path: "/taget", Message: "one of source or content is required"},
		protocol.ConfigError{Path: "/qqqqqq", Message: "unknown key"},
		protocol.ConfigError{Path: "/yyyyyy", Message: "unknown key"},
	))
	want := `t.json:7:5: builder "file": /taget: unknown key (did you mean "target"?)
builder "file": /target: missing required key
builder "file": /zzzzzz, /qqqqqq, /yyyyyy: unknown key
builder "file": /content, /source: one of source or content is required
builder "file": something else
t.json:7:5: builder "file": /taget: one of source or content is required (did you mean "target"?)`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var ce *build.ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, protocol.ErrConfigInvalid) {
		t.Errorf("%T does not keep the ConfigError and the protocol code", err)
	}
	other := build.PrepareError(c, nil, errors.New("boom"))
	if other.Error() != `builder "file": boom` {
		t.Errorf("other errors: %q", other)
	}
}

func TestCause(t *testing.T) {
	failed := &host.PluginError{Plugin: "packer-provisioner-shell", Op: "provisioner/provision",
		Err: protocol.ErrComponentFailed.WithMessage("script exited with status 3 (allowed: 0)")}
	crashed := &host.PluginError{Plugin: "packer-builder-crash", Op: "builder/run", Err: host.ErrExited,
		Exit: "exit status 3", StderrTail: []string{"fatal: on fire"}}
	cfg := build.PrepareError(build.Component{Type: protocol.TypeBuilder, Name: "file"}, nil,
		configInvalid(protocol.ConfigError{Path: "/x", Message: "unknown key"}))
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a component's own message", fmt.Errorf("build %q: %w", "b", fmt.Errorf("provisioner %q: %w", "shell", failed)),
			"script exited with status 3 (allowed: 0)"},
		{"a crash keeps the whole report", fmt.Errorf("build %q: %w", "b", crashed),
			"plugin packer-builder-crash: builder/run: plugin exited unexpectedly (exit status 3)\nlast lines of its stderr:\n  fatal: on fire"},
		{"cancelled", fmt.Errorf("build: %w", &host.PluginError{Plugin: "p", Op: "builder/run", Err: protocol.ErrCancelled}), build.Cancelled},
		{"context cancelled", fmt.Errorf("waiting: %w", context.Canceled), build.Cancelled},
		{"configuration", fmt.Errorf("build %q: %w", "b", cfg), `builder "file": /x: unknown key`},
		{"joined, each once", fmt.Errorf("build: %w", errors.Join(cfg, failed)), "builder \"file\": /x: unknown key\nscript exited with status 3 (allowed: 0)"},
		{"not a plugin's", errors.New("packer is stopping"), "packer is stopping"},
		{"a code other than component failed", &host.PluginError{Plugin: "p", Op: "o", Err: protocol.ErrUnknownHandle.WithMessage("i9")}, "unknown handle: i9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, build.Cause(tt.err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchemaKeys(t *testing.T) {
	served := []protocol.Component{
		{Type: protocol.TypeBuilder, Name: "file", ConfigSchema: json.RawMessage(`{"properties":{"target":{},"content":{},"packer_force":{}}}`)},
		{Type: protocol.TypeProvisioner, Name: "file", ConfigSchema: json.RawMessage(`{"properties":{"source":{}}}`)},
	}
	if diff := cmp.Diff([]string{"content", "target"}, build.SchemaKeys(served, protocol.TypeBuilder, "file")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := build.SchemaKeys(served, protocol.TypePostProcessor, "file"); got != nil {
		t.Errorf("unknown component: %q", got)
	}
}
