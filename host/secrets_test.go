//go:build linux

package host_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// TestSecretsInConfig: a secret in a component's configuration travels to
// the plugin on stdin only (never in its arguments or environment), and a
// masked trace does not show it. The plugin here echoes the secret in its
// error; the host passes the plugin's text on unchanged, since it cannot
// tell a secret from any other text: masking error text is the CLI's job,
// with the template's masker.
func TestSecretsInConfig(t *testing.T) {
	const secret = "s3cr3t-Pa55w0rd"
	var traceMu sync.Mutex
	var trace bytes.Buffer
	opts := fastOptions("helper-echo-secret-prepare")
	opts.Tracer = protocol.NewTracer(lockedWriter{&traceMu, &trace}).WithMask(strings.NewReplacer(secret, "<sensitive>").Replace)
	cmd := helperCmd("echo-secret-prepare")
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer assertGroupGone(t, cmd.Process.Pid)
	defer p.Close()
	_, _, err = p.Prepare(t.Context(), protocol.TypeBuilder, "x", map[string]any{"password": secret})
	if err == nil {
		t.Fatal("Prepare succeeded, want the plugin's configuration error")
	}
	ce := host.ConfigErrors(err)
	if len(ce) != 1 || !strings.Contains(ce[0].Message, secret) {
		t.Errorf("ConfigErrors = %+v, want the plugin's text unchanged (the host cannot know what is secret)", ce)
	}
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", cmd.Process.Pid, f))
		if err != nil {
			t.Fatalf("reading the plugin's %s: %v", f, err)
		}
		if len(b) == 0 {
			t.Errorf("the plugin's %s is empty: the check cannot see anything", f)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the plugin's %s holds the secret", f)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	traceMu.Lock()
	defer traceMu.Unlock()
	if bytes.Contains(trace.Bytes(), []byte(secret)) {
		t.Errorf("the masked trace shows the secret:\n%s", trace.Bytes())
	}
	if !bytes.Contains(trace.Bytes(), []byte(`"password":"<sensitive>"`)) {
		t.Errorf("the trace does not show the masked config:\n%s", trace.Bytes())
	}
}
