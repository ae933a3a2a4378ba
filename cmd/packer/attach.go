package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// envAttach names plugins the author started by hand (for example under a
// debugger) for packer build to use instead of starting them:
//
//	PACKER_PLUGIN_ATTACH=builder/notes-dir=/tmp/notes[,TYPE/NAME=PATH...]
//
// TYPE/NAME is a component as the template names it; PATH is the prefix of
// the two named pipes the plugin serves on (PATH.in, which the plugin
// reads, and PATH.out, which it writes), as the plugin was told with
// PACKER_PLUGIN_DEBUG_PIPES=PATH. Unix only: see docs/writing-a-plugin.md.
const envAttach = "PACKER_PLUGIN_ATTACH"

// attachArg is the argument of "packer plugin" that relays to an attached
// plugin: packer plugin attach=PATH.
const attachArg = "attach="

// parseAttach reads PACKER_PLUGIN_ATTACH into TYPE/NAME → PATH.
func parseAttach(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
		comp, path, ok := strings.Cut(strings.TrimSpace(item), "=")
		typ, name, ok2 := strings.Cut(comp, "/")
		if !ok || !ok2 || path == "" || name == "" {
			return nil, fmt.Errorf("%s: %q: want TYPE/NAME=PATH, e.g. builder/notes-dir=/tmp/notes", envAttach, item)
		}
		switch typ {
		case "builder", "provisioner", "post-processor":
		default:
			return nil, fmt.Errorf("%s: %q: type %q is not builder, provisioner or post-processor", envAttach, item, typ)
		}
		out[comp] = path
	}
	return out, nil
}

// relayAttached is "packer plugin attach=PATH": the plugin process the
// host starts in place of an attached plugin. It opens PATH.in for writing
// and PATH.out for reading (in that order, the order the plugin opens
// them, so neither blocks forever) and copies its stdin to PATH.in and
// PATH.out to its stdout until the plugin closes PATH.out. When the host
// closes its stdin, it closes PATH.in: the plugin sees the end of its
// input and finishes its session.
func relayAttached(e *env, path string) int {
	in, err := os.OpenFile(path+".in", os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer: attaching to the plugin on %s.in: %v (start it with PACKER_PLUGIN_DEBUG_PIPES=%s first)\n", path, err, path)
		return 1
	}
	out, err := os.Open(path + ".out")
	if err != nil {
		in.Close()
		fmt.Fprintf(e.stderr, "packer: attaching to the plugin on %s.out: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(e.stderr, "attached to the plugin serving on %s.in and %s.out\n", path, path)
	go func() {
		io.Copy(in, e.stdin)
		in.Close()
	}()
	_, err = io.Copy(e.stdout, out)
	out.Close()
	if err != nil {
		fmt.Fprintf(e.stderr, "packer: relaying from %s.out: %v\n", path, err)
		return 1
	}
	return 0
}
