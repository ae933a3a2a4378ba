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
	"github.com/packer-stdio/packer/internal/template"
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

// redactor masks stderrSecret the way the CLI's template masker does.
var redactor = template.NewMasker([]string{stderrSecret})

// TestStderrMaskedBeforeCutting: with a Redactor, no cut the host makes in
// a plugin's stderr (64 KiB pieces, the 512-byte lines of the stderr tail)
// leaves a part of a secret unmasked, in the forwarded lines or in the
// error.
func TestStderrMaskedBeforeCutting(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	opts := fastOptions("helper-secret-stderr")
	opts.Stderr = lockedWriter{&mu, &out}
	opts.Redactor = redactor
	_, err := host.Start(t.Context(), helperCmd("secret-stderr"), opts)
	if err == nil {
		t.Fatal("Start succeeded, want the helper's crash")
	}
	mu.Lock()
	defer mu.Unlock()
	// Any third of the secret is a leak.
	for _, part := range []string{stderrSecret[:7], stderrSecret[7:14], stderrSecret[14:]} {
		if bytes.Contains(out.Bytes(), []byte(part)) {
			t.Errorf("forwarded stderr shows %q of the secret", part)
		}
		if strings.Contains(err.Error(), part) {
			t.Errorf("the error's stderr tail shows %q of the secret:\n%.2000s", part, err)
		}
	}
	if n := bytes.Count(out.Bytes(), []byte(template.Redacted)); n != 3 {
		t.Errorf("forwarded stderr masks %d secrets, want 3", n)
	}
	if !strings.Contains(out.String(), " end of the long line\n") {
		t.Errorf("the long line's end was not forwarded")
	}
}
