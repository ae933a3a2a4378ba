// Package builtin lists the components compiled into the packer binary and
// serves one of them as a plugin process.
//
// A builtin still runs as its own process speaking the stdio protocol: the
// host starts "packer plugin packer-builder-file" (the original Packer
// design) and cmd/packer's plugin subcommand calls [Serve] with the binary
// name, which registers that one component on a pluginkit server and serves
// stdin and stdout exactly as a separately installed plugin would. A
// discovered external plugin with the same name replaces the builtin.
//
// The components live in the subpackages builders, provisioners and
// postprocessors; their doc comments say how each matches Packer's.
package builtin

import (
	"fmt"
	"strings"

	"github.com/packer-stdio/packer/internal/builtin/builders"
	"github.com/packer-stdio/packer/internal/builtin/datasources"
	"github.com/packer-stdio/packer/internal/builtin/internal/shellscript"
	"github.com/packer-stdio/packer/internal/builtin/postprocessors"
	"github.com/packer-stdio/packer/internal/builtin/provisioners"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// Component is one builtin component.
type Component struct {
	// Type is protocol.TypeBuilder, TypeProvisioner or TypePostProcessor.
	Type string
	// Name is the name templates use, e.g. "file".
	Name string
	// Binary is the plugin binary name it runs as, packer-TYPE-NAME, e.g.
	// "packer-builder-file"; the host runs "packer plugin BINARY".
	Binary string
	// Register registers the component, under Name, on a server.
	Register func(*pluginkit.Server)
}

// component is a Component's definition: new returns a fresh value.
type component struct {
	typ, name string
	new       func() pluginkit.Configurable
}

// all is every builtin, in the order Components lists them.
var all = []component{
	{protocol.TypeBuilder, "file", func() pluginkit.Configurable { return new(builders.File) }},
	{protocol.TypeBuilder, "null", func() pluginkit.Configurable { return new(builders.Null) }},
	{protocol.TypeBuilder, "docker", func() pluginkit.Configurable { return new(builders.Docker) }},
	{protocol.TypeProvisioner, "shell-local", func() pluginkit.Configurable { return new(provisioners.ShellLocal) }},
	{protocol.TypeProvisioner, "shell", func() pluginkit.Configurable { return new(provisioners.Shell) }},
	{protocol.TypeProvisioner, "file", func() pluginkit.Configurable { return new(provisioners.File) }},
	{protocol.TypeProvisioner, "breakpoint", func() pluginkit.Configurable { return new(provisioners.Breakpoint) }},
	{protocol.TypeProvisioner, "sleep", func() pluginkit.Configurable { return new(provisioners.Sleep) }},
	{protocol.TypePostProcessor, "shell-local", func() pluginkit.Configurable { return new(postprocessors.ShellLocal) }},
	{protocol.TypePostProcessor, "manifest", func() pluginkit.Configurable { return new(postprocessors.Manifest) }},
	{protocol.TypePostProcessor, "checksum", func() pluginkit.Configurable { return new(postprocessors.Checksum) }},
	{protocol.TypePostProcessor, "compress", func() pluginkit.Configurable { return new(postprocessors.Compress) }},
	{protocol.TypePostProcessor, "artifice", func() pluginkit.Configurable { return new(postprocessors.Artifice) }},
	{protocol.TypePostProcessor, "docker-tag", func() pluginkit.Configurable { return new(postprocessors.DockerTag) }},
	{protocol.TypePostProcessor, "docker-import", func() pluginkit.Configurable { return new(postprocessors.DockerImport) }},
	{protocol.TypePostProcessor, "docker-save", func() pluginkit.Configurable { return new(postprocessors.DockerSave) }},
	{protocol.TypePostProcessor, "docker-push", func() pluginkit.Configurable { return new(postprocessors.DockerPush) }},
	{protocol.TypeDatasource, "null", func() pluginkit.Configurable { return new(datasources.Null) }},
	{protocol.TypeDatasource, "http", func() pluginkit.Configurable { return new(datasources.HTTP) }},
}

func (c component) register(r *pluginkit.Server) {
	switch v := c.new().(type) {
	case pluginkit.Builder:
		r.RegisterBuilder(c.name, v)
	case pluginkit.Provisioner:
		r.RegisterProvisioner(c.name, v)
	case pluginkit.PostProcessor:
		r.RegisterPostProcessor(c.name, v)
	case pluginkit.Datasource:
		r.RegisterDatasource(c.name, v)
	}
}

func (c component) public() Component {
	return Component{
		Type:     c.typ,
		Name:     c.name,
		Binary:   BinaryName(c.typ, c.name),
		Register: func(s *pluginkit.Server) { c.register(s) },
	}
}

// BinaryName returns the plugin binary name of a component:
// "packer-" + typ + "-" + name.
func BinaryName(typ, name string) string {
	return "packer-" + typ + "-" + name
}

// Components returns every builtin component: builders, then provisioners,
// then post-processors. The slice is the caller's.
func Components() []Component {
	out := make([]Component, len(all))
	for i, c := range all {
		out[i] = c.public()
	}
	return out
}

// Lookup returns the builtin whose Binary is binary.
func Lookup(binary string) (Component, bool) {
	for _, c := range all {
		if BinaryName(c.typ, c.name) == binary {
			return c.public(), true
		}
	}
	return Component{}, false
}

// UnknownError is returned by [Serve] for a binary name that is not a
// builtin.
type UnknownError struct {
	Binary string
}

// Error lists the builtins.
func (e *UnknownError) Error() string {
	names := make([]string, len(all))
	for i, c := range all {
		names[i] = BinaryName(c.typ, c.name)
	}
	return fmt.Sprintf("%q is not a builtin plugin; the builtins are: %s", e.Binary, strings.Join(names, ", "))
}

// Serve runs the builtin named binary (e.g. "packer-builder-file"), which
// reports version in the handshake, as a
// plugin process on stdin and stdout, like [pluginkit.Serve]: it checks
// the magic cookie, keeps stdout for the protocol, serves until shutdown or
// end of input and exits the process; it does not return then. It returns
// an *UnknownError at once when binary is not a builtin.
func Serve(binary string, version string) error {
	for _, c := range all {
		if BinaryName(c.typ, c.name) == binary {
			s := pluginkit.NewServer(protocol.Peer{Name: binary, Version: version})
			c.register(s)
			shellscript.StopWithParent()
			s.Serve()
			return nil // not reached: Serve exits
		}
	}
	return &UnknownError{Binary: binary}
}
