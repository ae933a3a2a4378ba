package pluginkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/packer-stdio/packer/protocol"
)

// Version is the version the package-level [Serve] reports in the
// handshake, and what `packer plugins install` files the binary under. Set
// it when building a release, without changing code:
//
//	go build -ldflags "-X github.com/packer-stdio/packer/pluginkit.Version=1.2.0"
//
// or assign it in main before [Serve]. When it is empty, the version is the
// main module's version from the build information (a `go install
// module@v1.2.0` build has one), or "(devel)", which `packer plugins
// install` refuses without --version. A [Server] made with [NewServer]
// reports its [protocol.Peer]'s Version instead, or this one when that is
// empty.
var Version string

// defaultVersion is the version a server reports when nobody set one.
func defaultVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// defaultServer is the Server the package-level functions use; its version
// is read when it is served, so that main may set [Version] first.
var defaultServer = NewServer(protocol.Peer{Name: filepath.Base(os.Args[0])})

// RegisterBuilder registers b under name with the server [Serve] runs; see
// [Server.RegisterBuilder]. Call it from main before Serve.
func RegisterBuilder(name string, b Builder) { defaultServer.RegisterBuilder(name, b) }

// RegisterProvisioner registers p under name; see [RegisterBuilder].
func RegisterProvisioner(name string, p Provisioner) { defaultServer.RegisterProvisioner(name, p) }

// RegisterPostProcessor registers p under name; see [RegisterBuilder].
func RegisterPostProcessor(name string, p PostProcessor) {
	defaultServer.RegisterPostProcessor(name, p)
}

// Serve runs the plugin process with the components registered by the
// package-level Register functions; see [Server.Serve].
func Serve() { defaultServer.Serve() }

// Serve runs the plugin process and never returns. It checks that packer
// started the process ([protocol.EnvMagicCookie]); if not, it prints what
// this program is and how to install it to stderr and exits 1 without
// reading stdin. Otherwise it keeps the real standard output for the
// protocol, points os.Stdout at stderr (so a stray fmt.Println cannot
// corrupt the protocol), serves s's components on stdin and stdout with
// [Server.ServeConn], and exits 0 after shutdown or end of input, 1 on
// error. Diagnostics and panic stacks go to stderr, which the host forwards
// to the user; so does the standard log package's output. With
// [EnvDebugPipes] set it serves on named pipes instead (debug mode).
func (s *Server) Serve() {
	if path := os.Getenv(EnvDebugPipes); path != "" {
		s.serveDebug(path) // never returns
	}
	if os.Getenv(protocol.EnvMagicCookie) != protocol.MagicCookieValue {
		fmt.Fprint(os.Stderr, s.usage())
		os.Exit(1)
	}
	in, err := takeStdin()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: keeping stdin for the protocol: %v\n", s.info.Name, err)
		os.Exit(1)
	}
	out, err := takeStdout()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: keeping stdout for the protocol: %v\n", s.info.Name, err)
		os.Exit(1)
	}
	cs := closers{in, out}
	if in != os.Stdin {
		cs = append(cs, os.Stdin)
	}
	logger := log.New(os.Stderr, "pluginkit: ", 0)
	// SIGTERM is the host's third step in stopping a plugin (SPEC §9.3):
	// treat it like end of input. SIGINT belongs to the host, which stops
	// work with $/cancelRequest; a plugin started in the host's process
	// group must not die of the user's Ctrl-C before the host has cleaned
	// up.
	signal.Ignore(os.Interrupt)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = s.ServeConn(ctx, in, out, cs, logger)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		logger.Printf("SIGTERM: in-flight work cancelled; exiting")
		os.Exit(0)
	}
	if err != nil {
		logger.Printf("%v", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// usage is what a person who runs the plugin by hand reads.
func (s *Server) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is a Packer plugin (%s %s). It is not meant to be run by hand:\n", s.info.Name, s.peer().Version)
	b.WriteString("packer starts it and talks to it over stdin and stdout.\n\nIt serves these components:\n")
	for _, c := range s.describe() {
		fmt.Fprintf(&b, "  %-15s %s\n", c.Type, c.Name)
	}
	fmt.Fprintf(&b, "\nInstall it with:\n\n  packer plugins install --path %s\n\n", os.Args[0])
	b.WriteString("To try it without installing, name it packer-plugin-NAME and put it in the directory\n" +
		"you run packer build from, or in a directory listed in PACKER_PLUGIN_PATH.\n")
	return b.String()
}
