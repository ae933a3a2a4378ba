package pluginkit

import (
	"context"
	"fmt"
	"log"
	"os"
)

// EnvDebugPipes turns on debug mode. A plugin started by its author (for
// example under a debugger, "dlv exec ./packer-plugin-notes") with
// PACKER_PLUGIN_DEBUG_PIPES=PATH does not need packer's magic cookie and
// does not use its stdin and stdout for the protocol: [Serve] creates two
// named pipes (FIFOs), PATH.in and PATH.out, if they do not exist, opens
// PATH.in for reading and then PATH.out for writing, and serves one session
// on them. packer attaches to it when run with
// PACKER_PLUGIN_ATTACH=TYPE/NAME=PATH. Debug mode is Unix-only.
const EnvDebugPipes = "PACKER_PLUGIN_DEBUG_PIPES"

// serveDebug serves one session on the debug pipes with prefix path and
// exits like Serve.
func (s *Server) serveDebug(path string) {
	logger := log.New(os.Stderr, "pluginkit: ", 0)
	if err := makeFIFOs(path); err != nil {
		logger.Printf("debug mode: %v", err)
		os.Exit(1)
	}
	logger.Printf("debug mode: waiting for packer on %s.in and %s.out; run packer with PACKER_PLUGIN_ATTACH=TYPE/NAME=%s", path, path, path)
	in, err := os.Open(path + ".in")
	if err != nil {
		logger.Printf("debug mode: %v", err)
		os.Exit(1)
	}
	out, err := os.OpenFile(path+".out", os.O_WRONLY, 0)
	if err != nil {
		in.Close()
		logger.Printf("debug mode: %v", err)
		os.Exit(1)
	}
	logger.Printf("debug mode: packer attached")
	if err := s.ServeConn(context.Background(), in, out, closers{in, out}, logger); err != nil {
		logger.Printf("%v", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// makeFIFOs creates PATH.in and PATH.out as named pipes, unless they exist.
func makeFIFOs(path string) error {
	for _, p := range []string{path + ".in", path + ".out"} {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode()&os.ModeNamedPipe != 0:
			continue
		case err == nil:
			return fmt.Errorf("%s exists and is not a named pipe", p)
		}
		if err := mkfifo(p); err != nil {
			return fmt.Errorf("creating the named pipe %s: %w", p, err)
		}
	}
	return nil
}
