package discovery_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/packer-stdio/packer/internal/discovery"
)

// envHelper makes the test binary print its marker and exit, so that a
// test can install it as a plugin and see which file ran.
const envHelper = "DISCOVERY_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) != "" {
		fmt.Println("verified binary ran")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// installSelf installs the test binary as plugin name at version.
func installSelf(t *testing.T, o discovery.Options, name, version string) *discovery.Entry {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := discovery.Install(discovery.PluginsDir(o), name, version, self); err != nil {
		t.Fatal(err)
	}
	c, err := discovery.Discover(o)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Plugin(name)
	if e == nil {
		t.Fatalf("plugin %s not discovered", name)
	}
	return e
}

// TestOpenRunsTheVerifiedFile swaps the installed binary for another file
// after Open verified it: on Linux the verified file still runs.
func TestOpenRunsTheVerifiedFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux executes the verified descriptor; elsewhere a swap after the check is not detected")
	}
	tr := newTree(t)
	o := discovery.Options{HomeDir: tr.dir("home")}
	e := installSelf(t, o, "swap", "1.0.0")
	x, err := discovery.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()

	// The swap: a script that the checksum never saw, renamed over the
	// binary as an attacker with write access to the directory would.
	evil := filepath.Join(filepath.Dir(e.Path), ".evil")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\necho swapped binary ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(evil, e.Path); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.Path)
	cmd.Path = x.Path
	cmd.Env = append(os.Environ(), envHelper+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running %s (%s): %v\n%s", x.Path, e.Path, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "verified binary ran" {
		t.Errorf("after the swap, running the opened plugin printed %q, want the verified binary's output", got)
	}
	// Opened again, the swapped file is refused without running it.
	if _, err := discovery.Open(e); !errors.Is(err, discovery.ErrChecksum) {
		t.Errorf("Open of the swapped binary: %v, want ErrChecksum", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	skipOnWindows(t)
	tests := []struct {
		name   string
		change func(t *testing.T, e *discovery.Entry)
		want   error
	}{
		{"sum file missing", func(t *testing.T, e *discovery.Entry) { os.Remove(e.SumFile) }, discovery.ErrUnverified},
		{"sum file garbage", func(t *testing.T, e *discovery.Entry) { os.WriteFile(e.SumFile, []byte("x"), 0o644) }, discovery.ErrUnverified},
		{"binary changed", func(t *testing.T, e *discovery.Entry) { os.WriteFile(e.Path, []byte("tampered"), 0o755) }, discovery.ErrChecksum},
		{"binary is a link out of the plugins directory", func(t *testing.T, e *discovery.Entry) {
			outside := filepath.Join(t.TempDir(), "outside")
			os.WriteFile(outside, []byte("x"), 0o755)
			os.Remove(e.Path)
			if err := os.Symlink(outside, e.Path); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			o := discovery.Options{HomeDir: tr.dir("home")}
			e := installSelf(t, o, "p", "1.0.0")
			tt.change(t, e)
			x, err := discovery.Open(e)
			if err == nil {
				x.Close()
				t.Fatalf("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), e.Path) {
				t.Errorf("error %q does not name %s", err, e.Path)
			}
		})
	}
}
