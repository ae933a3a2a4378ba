package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// The test binary plays several programs, chosen by the base name it is run
// under (go-plugin's helper-process pattern, keyed on argv[0] as testscript
// does):
//
//   - "packer" is the CLI itself; testscript.Main links it into a directory
//     on $PATH. Builtins are started as os.Executable() plus "plugin NAME";
//     on Linux os.Executable reads /proc/self/exe, which names the link the
//     process was started through, so a builtin is that same link, its base
//     name is "packer" and testscript dispatches it to packerMain again.
//   - the names in helperPlugins are misbehaving or probing plugins. The
//     script command "install-plugin self NAME DIR" links the test binary
//     into DIR under NAME, where discovery finds it.
var helperPlugins = map[string]func(){
	"packer-builder-crash":     crashBuilder,
	"packer-builder-nohook":    noHookBuilder,
	"packer-builder-dupe":      dupeBuilder,
	"packer-provisioner-probe": probeProvisioner,
	// A plugin that shadows the builtin shell-local provisioner.
	"packer-provisioner-shell-local": probeProvisioner,
	"packer-provisioner-stubborn":    stubbornProvisioner,
	// Hostile plugins (hostile_plugins_test.go).
	"packer-builder-spoof":        serveSpoof,
	"packer-builder-hang-prepare": serveHangPrepare,
	// A builder that shadows the builtin file builder.
	"packer-builder-file": fakeFileBuilder,
	// A provisioner that leaves a daemon behind (setsid, own session).
	"packer-provisioner-daemon": daemonProvisioner,
	// A plugin that reports the version in $HELPER_VERSION.
	"packer-plugin-versioned": versionedPlugin,
}

func TestMain(m *testing.M) {
	if f, ok := helperPlugins[filepath.Base(os.Args[0])]; ok {
		f() // serves and exits
		os.Exit(2)
	}
	testscript.Main(m, map[string]func(){
		"packer": func() { os.Exit(packerMain()) },
	})
}

// examplePlugin builds ./examples/plugins/packer-plugin-example once.
var examplePlugin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "packer-cli-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "packer-plugin-example")
	cmd := exec.Command("go", "build", "-o", bin, "../../examples/plugins/packer-plugin-example")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the example plugin: %v\n%s", err, out)
	}
	return bin, nil
})

// guidePlugin builds ./examples/guide (the plugin of
// docs/writing-a-plugin.md) once, as packer-plugin-notes.
var guidePlugin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "packer-cli-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "packer-plugin-notes")
	cmd := exec.Command("go", "build", "-o", bin, "../../examples/guide")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the guide's plugin: %v\n%s", err, out)
	}
	return bin, nil
})

func TestScripts(t *testing.T) {
	example, err := examplePlugin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(example)) })
	guide, err := guidePlugin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(guide)) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("../../examples/templates")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			// Discovery reads ~/.packer.d/plugins and ~/.packerconfig:
			// every script gets its own home, and nothing from the
			// environment of the person running the tests leaks in.
			home := filepath.Join(e.WorkDir, "home")
			e.Setenv("HOME", home)
			e.Setenv("EXAMPLES", examples)
			// Under -race every process would sleep a second at exit
			// (the race runtime's atexit_sleep_ms), and packer waits for
			// every plugin to exit: keep the suite fast.
			e.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
			for _, k := range []string{"PACKER_LOG", "PACKER_LOG_PATH", "PACKER_RPC_TRACE", "PACKER_RPC_TRACE_DATA", "PACKER_PLUGIN_PATH", "PACKER_CONFIG"} {
				e.Setenv(k, "")
			}
			return os.MkdirAll(home, 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"install-plugin": func(ts *testscript.TestScript, neg bool, args []string) {
				installPlugin(ts, neg, args, map[string]string{"self": self, "example": example, "guide": guide})
			},
			"waitfile":  waitFile,
			"noprocs":   noProcs,
			"perm":      checkPerm,
			"sigpacker": sigPacker,
			"sshd":      startSSHD,
		},
	})
}

// installPlugin: install-plugin self|example NAME DIR copies (hard-links
// when it can) a plugin binary into DIR under NAME.
func installPlugin(ts *testscript.TestScript, neg bool, args []string, bins map[string]string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: install-plugin self|example NAME DIR")
	}
	src, ok := bins[args[0]]
	if !ok {
		ts.Fatalf("install-plugin: unknown binary %q", args[0])
	}
	dir := ts.MkAbs(args[2])
	ts.Check(os.MkdirAll(dir, 0o755))
	dst := filepath.Join(dir, args[1])
	if err := os.Link(src, dst); err == nil {
		return
	}
	in, err := os.Open(src)
	ts.Check(err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	ts.Check(err)
	_, err = io.Copy(out, in)
	ts.Check(err)
	ts.Check(out.Close())
}

// patience bounds how long waitfile and noprocs wait for something that
// must happen; it is a safety net against a hang, not an assertion about
// speed.
const patience = 60 * time.Second

// waitFile: waitfile PATH waits until PATH exists.
func waitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(patience)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear within %v", path, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noProcs: noprocs fails if any live process other than the test itself
// has this script's $WORK in its environment: every plugin packer started
// in this script (and everything they started) inherited it. Processes may
// still be dying from SIGKILL when packer exits, so it waits for them, and
// reports what is left.
func noProcs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: noprocs")
	}
	marker := []byte("WORK=" + ts.Getenv("WORK") + "\x00")
	deadline := time.Now().Add(patience)
	for {
		left := scriptProcs(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("processes left behind:\n%v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type proc struct {
	pid     int
	cmdline string
}

func (p proc) String() string { return fmt.Sprintf("  %d: %s", p.pid, p.cmdline) }

// scriptProcs lists the live processes, other than this one, whose
// environment contains marker.
func scriptProcs(marker []byte) []proc {
	ents, _ := os.ReadDir("/proc")
	var left []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, marker) {
			continue // gone, not ours, or a zombie (no environment)
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		args[0] = filepath.Base(args[0])
		left = append(left, proc{pid, strings.Join(args, " ")})
	}
	return left
}

// checkPerm: perm MODE PATH checks a file's permission bits (octal).
func checkPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm MODE PATH")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o; want %s%#o", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// sigPacker: sigpacker INT|TERM sends a signal to the "packer build"
// process of this script (found, like noprocs, by $WORK in its
// environment): testscript's kill knows only INT and KILL.
func sigPacker(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sigpacker INT|TERM")
	}
	sigs := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}
	sig, ok := sigs[args[0]]
	if !ok {
		ts.Fatalf("sigpacker: unknown signal %q", args[0])
	}
	marker := []byte("WORK=" + ts.Getenv("WORK") + "\x00")
	var pids []int
	for _, p := range scriptProcs(marker) {
		if strings.HasPrefix(p.cmdline, "packer build ") {
			pids = append(pids, p.pid)
		}
	}
	if len(pids) != 1 {
		ts.Fatalf("sigpacker: want one packer build process, found %v", pids)
	}
	p, err := os.FindProcess(pids[0])
	ts.Check(err)
	ts.Check(p.Signal(sig))
}

// ---- helper plugins ----

type noConfig struct {
	pluginkit.PackerConfig
	// Marker, if set, is a file the component creates when it reaches the
	// point the test waits for, holding its pid.
	Marker string `json:"marker,omitempty"`
	// Inline is accepted, and ignored, so that a helper can stand in for
	// a shell provisioner.
	Inline []string `json:"inline,omitempty"`
}

// crash is a builder that dies in Run: it writes a few lines to stderr and
// exits with status 3, as a plugin with a fatal bug would.
type crash struct{ config noConfig }

func (c *crash) Config() any                { return &c.config }
func (c *crash) Prepare() ([]string, error) { return nil, nil }
func (c *crash) Run(context.Context, pluginkit.UI, pluginkit.Hook) (pluginkit.Artifact, error) {
	fmt.Fprintln(os.Stderr, "crash: opening the hypervisor")
	fmt.Fprintln(os.Stderr, "crash: fatal: the hypervisor is on fire")
	os.Exit(3)
	return nil, nil
}

func crashBuilder() {
	pluginkit.RegisterBuilder("crash", new(crash))
	pluginkit.Serve()
}

// noHook is a builder that makes an artifact without ever running the
// provisioning hook.
type noHook struct{ config noConfig }

func (b *noHook) Config() any                { return &b.config }
func (b *noHook) Prepare() ([]string, error) { return nil, nil }
func (b *noHook) Run(context.Context, pluginkit.UI, pluginkit.Hook) (pluginkit.Artifact, error) {
	return &pluginkit.BasicArtifact{BuilderIDValue: "test.nohook", IDValue: "x", StringValue: "made without provisioning"}, nil
}

func noHookBuilder() {
	pluginkit.RegisterBuilder("nohook", new(noHook))
	pluginkit.Serve()
}

// probe is a provisioner that shows the packer_* keys it was prepared with,
// proving that build flags reach components.
type probe struct{ config noConfig }

func (p *probe) Config() any                { return &p.config }
func (p *probe) Prepare() ([]string, error) { return nil, nil }
func (p *probe) Provision(_ context.Context, ui pluginkit.UI, _ pluginkit.Communicator, _ map[string]any) error {
	c := p.config.PackerConfig
	// Its stderr goes to packer's log.
	fmt.Fprintf(os.Stderr, "probe: inline %q\n", p.config.Inline)
	ui.Say(fmt.Sprintf("probe: build=%s type=%s debug=%t force=%t on_error=%s", c.BuildName, c.BuilderType, c.Debug, c.Force, c.OnError))
	return nil
}

// probeProvisioner serves probe under the name its binary has.
func probeProvisioner() {
	pluginkit.RegisterProvisioner(strings.TrimPrefix(filepath.Base(os.Args[0]), "packer-provisioner-"), new(probe))
	pluginkit.Serve()
}

// stubborn is a provisioner that ignores every request to stop: it ignores
// SIGINT and SIGTERM, writes its marker and then blocks forever, even when
// its request is cancelled or the host asks it to shut down. Only SIGKILL
// ends it.
type stubborn struct{ config noConfig }

func (p *stubborn) Config() any                { return &p.config }
func (p *stubborn) Prepare() ([]string, error) { return nil, nil }
func (p *stubborn) Provision(ctx context.Context, ui pluginkit.UI, _ pluginkit.Communicator, _ map[string]any) error {
	ui.Say("stubborn: provisioning forever")
	if p.config.Marker != "" {
		if err := os.WriteFile(p.config.Marker, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return err
		}
		// Tell the test that the cancellation arrived, and ignore it.
		<-ctx.Done()
		os.WriteFile(p.config.Marker+".cancelled", nil, 0o644) //nolint:errcheck // the test waits for it
	}
	select {} // never returns
}

func stubbornProvisioner() {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
	pluginkit.RegisterProvisioner("stubborn", new(stubborn))
	pluginkit.Serve()
}

// fakeFile is a builder that only says it ran.
type fakeFile struct{ config noConfig }

func (f *fakeFile) Config() any                { return &f.config }
func (f *fakeFile) Prepare() ([]string, error) { return nil, nil }
func (f *fakeFile) Run(_ context.Context, ui pluginkit.UI, _ pluginkit.Hook) (pluginkit.Artifact, error) {
	ui.Say("the fake file builder ran")
	return nil, nil
}

func fakeFileBuilder() {
	pluginkit.RegisterBuilder("file", new(fakeFile))
	pluginkit.Serve()
}

// daemon is a provisioner that starts "sleep 300" in a new session, as a
// daemon does to escape its parent's process group and terminal, writes
// its pid to the marker and returns.
type daemon struct{ config noConfig }

func (d *daemon) Config() any                { return &d.config }
func (d *daemon) Prepare() ([]string, error) { return nil, nil }
func (d *daemon) Provision(_ context.Context, ui pluginkit.UI, _ pluginkit.Communicator, _ map[string]any) error {
	cmd := exec.Command("sleep", "300")
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	ui.Say(fmt.Sprintf("daemon: started pid %d in its own session", cmd.Process.Pid))
	return os.WriteFile(d.config.Marker, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

func daemonProvisioner() {
	pluginkit.RegisterProvisioner("daemon", new(daemon))
	pluginkit.Serve()
}

// versionedPlugin serves probe as its default provisioner and reports
// $HELPER_VERSION as its version in the handshake.
func versionedPlugin() {
	s := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-versioned", Version: os.Getenv("HELPER_VERSION")})
	s.RegisterProvisioner("default", new(probe))
	s.Serve()
}

var (
	_ pluginkit.Builder     = (*crash)(nil)
	_ pluginkit.Provisioner = (*probe)(nil)
	_ pluginkit.Provisioner = (*stubborn)(nil)
)

// startSSHD: sshd starts an OpenSSH sshd on loopback for the rest of the
// script (internal/sshdtest) and sets SSHD_PORT, SSHD_USER, SSHD_KEY (the
// user's private key file) and SSHD_FINGERPRINT (the host key's).
func startSSHD(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: sshd")
	}
	srv := sshdtest.Start(scriptT{ts})
	ts.Setenv("SSHD_PORT", strconv.Itoa(srv.Port))
	ts.Setenv("SSHD_USER", srv.User)
	ts.Setenv("SSHD_KEY", srv.KeyFile)
	ts.Setenv("SSHD_FINGERPRINT", ssh.FingerprintSHA256(srv.HostKey))
}

// scriptT is a script as the sshdtest.T a server needs.
type scriptT struct{ ts *testscript.TestScript }

func (scriptT) Helper()                             {}
func (s scriptT) Fatalf(format string, args ...any) { s.ts.Fatalf(format, args...) }
func (s scriptT) Logf(format string, args ...any)   { s.ts.Logf(format, args...) }
func (s scriptT) Skip(args ...any)                  { s.ts.Fatalf("%s", fmt.Sprint(args...)) }
func (s scriptT) Cleanup(f func())                  { s.ts.Defer(f) }

// Failed is true so that sshd's log lands in the script's log, which
// testscript shows only when the script fails.
func (scriptT) Failed() bool { return true }
