package pluginkit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoHeavyInit keeps out of plugin binaries the packages whose init
// costs a plugin's cold start: santhosh-tekuri/jsonschema compiles the
// meta-schemas of five drafts in its package init (about 8 ms, 1.7 MB),
// paid by every plugin at every start merely by importing it.
func TestNoHeavyInit(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list pluginkit's dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/packer-stdio/packer/pluginkit/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/santhosh-tekuri/jsonschema") {
			t.Errorf("pluginkit depends on %s, whose package init every plugin would pay at start", pkg)
		}
	}
}
