// Command packer-plugin-example is a model plugin: one binary serving a
// builder, a provisioner and a post-processor through pluginkit. Read it in
// this order: main.go (registration), builder.go (a builder that runs the
// provisioners through a hook and honours cancellation), shell.go (a
// provisioner that uses the communicator it is given), checksum.go (a
// post-processor that makes a new artifact from the builder's).
//
// packer starts it; run by hand it explains that and exits 1.
package main

import "github.com/packer-stdio/packer/pluginkit"

func main() {
	// Each registration names a component as templates use it. The value
	// registered is a template: every component/prepare works on a shallow
	// copy of it, so instances never share configuration.
	pluginkit.RegisterBuilder("example", new(Builder))
	pluginkit.RegisterProvisioner("example-shell", new(ShellProvisioner))
	pluginkit.RegisterPostProcessor("example-checksum", new(Checksum))
	pluginkit.Serve() // never returns
}
