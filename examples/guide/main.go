// guide:start main

// Command packer-plugin-notes is a packer plugin: a builder that makes a
// directory, a provisioner that writes a note into it through the
// communicator, and a post-processor that writes a manifest of the files
// with their SHA-256 sums.
package main

import (
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// version is the plugin's version, reported in the handshake; packer
// plugins install files the binary under it. Release builds set it with
// -ldflags "-X main.version=1.2.0".
var version = "0.1.0"

// newServer registers the components; tests serve the same Server in
// process with plugintest.
func newServer() *pluginkit.Server {
	srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-notes", Version: version})
	srv.RegisterBuilder("dir", new(Builder))
	srv.RegisterProvisioner("write", new(Writer))
	srv.RegisterPostProcessor("manifest", new(Manifest))
	return srv
}

func main() {
	newServer().Serve() // never returns
}

// guide:end
