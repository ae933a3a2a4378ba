package postprocessors_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/internal/builtin/postprocessors"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func register(s *pluginkit.Server) {
	s.RegisterPostProcessor("shell-local", new(postprocessors.ShellLocal))
	s.RegisterPostProcessor("manifest", new(postprocessors.Manifest))
	s.RegisterPostProcessor("checksum", new(postprocessors.Checksum))
	s.RegisterPostProcessor("compress", new(postprocessors.Compress))
	s.RegisterPostProcessor("artifice", new(postprocessors.Artifice))
}

// result is what a post-processor answered.
type result struct {
	out         *protocol.Artifact
	keep, force bool
}

// postProcess prepares name with config and the packer_* keys of build
// "web" of type "file", and runs it on in.
func postProcess(t *testing.T, p *host.Plugin, name string, config map[string]any, in protocol.Artifact) (result, error) {
	t.Helper()
	inst, _, err := p.Prepare(context.Background(), protocol.TypePostProcessor, name, config, bttest.PackerKeys("web", "file"))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	out, keep, force, err := inst.PostProcess(context.Background(), in)
	return result{out, keep, force}, err
}

// inputArtifact writes files (name → contents) in dir and returns an
// artifact made of them, in the order given by names.
func inputArtifact(t *testing.T, dir string, files map[string]string, names ...string) protocol.Artifact {
	t.Helper()
	bttest.WriteTree(t, dir, files)
	a := protocol.Artifact{BuilderID: "packer.file", ID: "input", String: "input artifact"}
	for _, n := range names {
		a.Files = append(a.Files, filepath.Join(dir, n))
	}
	return a
}
