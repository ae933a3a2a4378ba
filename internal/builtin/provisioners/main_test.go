package provisioners_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/internal/builtin/provisioners"
	"github.com/packer-stdio/packer/pluginkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func register(s *pluginkit.Server) {
	s.RegisterProvisioner("shell-local", new(provisioners.ShellLocal))
	s.RegisterProvisioner("shell", new(provisioners.Shell))
	s.RegisterProvisioner("file", new(provisioners.File))
	s.RegisterProvisioner("breakpoint", new(provisioners.Breakpoint))
	s.RegisterProvisioner("sleep", new(provisioners.Sleep))
}
