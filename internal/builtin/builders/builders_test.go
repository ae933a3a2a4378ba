package builders_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/builders"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
	"github.com/packer-stdio/packer/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func register(s *pluginkit.Server) {
	s.RegisterBuilder("file", new(builders.File))
	s.RegisterBuilder("null", new(builders.Null))
}

func TestFileBuilderConfigErrors(t *testing.T) {
	dir := t.TempDir()
	p := bttest.Start(t, register, host.Options{})
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"no target", map[string]any{"content": "x"}, []string{"/target: missing required key"}},
		{"empty target", map[string]any{"content": "x", "target": ""}, []string{"/target: must not be empty"}},
		{"neither", map[string]any{"target": "t"}, []string{"/content: one of source or content is required", "/source: one of source or content is required"}},
		{"both", map[string]any{"target": "t", "content": "x", "source": filepath.Join(dir, "missing")},
			[]string{"/content: only one of source and content may be set; source and content are set", "/source: only one of source and content may be set; source and content are set"}},
		{"source is a directory", map[string]any{"target": "t", "source": dir}, []string{"/source: source " + dir + " is not a regular file"}},
		{"wrong type", map[string]any{"target": 1, "content": ""}, []string{"/target: got number, want string"}},
		{"unknown key", map[string]any{"target": "t", "content": "", "contents": "x"}, []string{"/contents: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "file", tt.config)
			if !errors.Is(err, protocol.ErrConfigInvalid) {
				t.Fatalf("Prepare error = %v, want ErrConfigInvalid", err)
			}
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileBuilder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, []byte("from source\x00\xff"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		config   map[string]any
		target   string
		contents string
	}{
		{"content", map[string]any{"content": "hello\n"}, "out/nested/a.txt", "hello\n"},
		{"empty content", map[string]any{"content": ""}, "empty.txt", ""},
		{"source", map[string]any{"source": src}, "copy/src.bin", "from source\x00\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hooks []string
			ui := bttest.NewUI()
			p := bttest.Start(t, register, host.Options{UI: ui, Hook: host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
				hooks = append(hooks, name)
				if comm != nil {
					t.Errorf("hook got a communicator")
				}
				return nil
			})})
			target := filepath.Join(dir, tt.name, tt.target)
			tt.config["target"] = target
			inst, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "file", tt.config, bttest.PackerKeys("b", "file"))
			if err != nil {
				t.Fatal(err)
			}
			a, err := inst.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.contents, string(got)); diff != "" {
				t.Errorf("target contents (-want +got):\n%s", diff)
			}
			want := &protocol.Artifact{Handle: a.Handle, BuilderID: "packer.file", ID: target, Files: []string{target}, String: "Stored file: " + target}
			if diff := cmp.Diff(want, a); diff != "" {
				t.Errorf("artifact (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{protocol.HookProvision}, hooks); diff != "" {
				t.Errorf("hooks run (-want +got):\n%s", diff)
			}
			if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 1 {
				t.Errorf("target directory holds %d entries, want only the target", len(entries))
			}
			if err := p.DestroyArtifact(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("target after destroy: %v, want it gone", err)
			}
		})
	}
}

// TestFileBuilderHookFails checks that a failed provisioning removes the
// target, unless packer_on_error is abort.
func TestFileBuilderHookFails(t *testing.T) {
	for _, onError := range []string{"cleanup", "abort"} {
		t.Run(onError, func(t *testing.T) {
			p := bttest.Start(t, register, host.Options{Hook: host.HookFunc(func(context.Context, string, host.Communicator, map[string]any) error {
				return errors.New("provisioner failed")
			})})
			target := filepath.Join(t.TempDir(), "a.txt")
			inst, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "file",
				map[string]any{"content": "x", "target": target}, map[string]any{"packer_on_error": onError})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := inst.Run(context.Background()); err == nil {
				t.Fatal("Run succeeded")
			}
			_, err = os.Stat(target)
			if kept := err == nil; kept != (onError == "abort") {
				t.Errorf("target kept = %v, want %v", kept, onError == "abort")
			}
		})
	}
}

func TestNullBuilderNone(t *testing.T) {
	var gotComm host.Communicator
	var gotData map[string]any
	p := bttest.Start(t, register, host.Options{Hook: host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		gotComm, gotData = comm, data
		return nil
	})})
	inst, warnings, err := p.Prepare(context.Background(), protocol.TypeBuilder, "null", map[string]any{"communicator": "none", "local_dir": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 {
		t.Errorf("warnings = %q, want one about local_dir", warnings)
	}
	a, err := inst.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gotComm != nil {
		t.Errorf("hook got a communicator with communicator none")
	}
	wantData := map[string]any{"ID": "null", "ConnType": "none", "Host": "", "Port": 0.0, "User": "", "LocalDir": "", "PackerRunUUID": os.Getenv("PACKER_RUN_UUID")}
	if diff := cmp.Diff(wantData, gotData); diff != "" {
		t.Errorf("hook data (-want +got):\n%s", diff)
	}
	want := &protocol.Artifact{Handle: a.Handle, BuilderID: "fnoeding.null", ID: "Null", Files: []string{},
		String: "Did not export anything. This is the null builder", State: map[string]any{"generated_data": wantData}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("artifact (-want +got):\n%s", diff)
	}
}

// TestNullBuilderLocal checks that the local communicator the hook gets
// runs commands and moves files in local_dir, through the protocol.
func TestNullBuilderLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	var status int
	p := bttest.Start(t, register, host.Options{Hook: host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		if comm == nil {
			return errors.New("no communicator")
		}
		var err error
		status, err = comm.Start(ctx, &host.RemoteCmd{Command: "echo made > made.txt; exit 3"})
		return err
	})})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "null", map[string]any{"communicator": "local", "local_dir": dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status != 3 {
		t.Errorf("exit status = %d, want 3", status)
	}
	if diff := cmp.Diff(map[string]string{"made.txt": "made\n"}, bttest.Tree(t, dir)); diff != "" {
		t.Errorf("local_dir (-want +got):\n%s", diff)
	}
}

func TestNullBuilderConfigErrors(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	sshdtest.WriteKey(t, locked, "passphrase")
	tests := []struct {
		name   string
		config map[string]any
		want   []string
		reason string
	}{
		{"unknown communicator", map[string]any{"communicator": "winrm"}, []string{"/communicator: value must be one of 'ssh', 'none', 'local'"}, "WinRM is not done"},
		{"ssh by default", map[string]any{}, []string{
			"/ssh_username: an ssh_username must be specified",
			"/ssh_host: a host must be specified, please reference your communicator documentation",
			"/ssh_password: one authentication method must be specified: ssh_password, ssh_private_key_file or ssh_agent_auth",
		}, "Packer's null builder defaults to ssh and needs a host, a user and a way to log in"},
		{"encrypted key", map[string]any{"ssh_host": "h", "ssh_username": "u", "ssh_private_key_file": locked}, []string{
			"/ssh_private_key_file: ssh_private_key_file is invalid: " + locked + ": " + sshcomm.ErrEncryptedKey.Error(),
		}, ""},
		{"bad values", map[string]any{"ssh_host": "h", "ssh_username": "u", "ssh_password": "p", "ssh_timeout": "soon", "ssh_file_transfer_method": "rsync"}, []string{
			"/ssh_file_transfer_method: value must be one of 'scp', 'sftp'",
		}, "the schema checks the enum before Prepare runs"},
		{"bad duration", map[string]any{"ssh_host": "h", "ssh_username": "u", "ssh_password": "p", "ssh_timeout": "soon"}, []string{
			`/ssh_timeout: time: invalid duration "soon"`,
		}, ""},
		{"bastion without auth", map[string]any{"ssh_host": "h", "ssh_username": "u", "ssh_password": "p", "ssh_bastion_host": "b"}, []string{
			"/ssh_bastion_host: ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth must be specified",
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "null", tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s\n%s", diff, tt.reason)
			}
		})
	}
}

// TestNullBuilderSSH runs a command and moves files through the null
// builder's SSH communicator, against a real sshd, through the protocol.
func TestNullBuilderSSH(t *testing.T) {
	srv := sshdtest.Start(t)
	dir := t.TempDir()
	var status int
	var out strings.Builder
	var data map[string]any
	p := bttest.Start(t, register, host.Options{Hook: host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, d map[string]any) error {
		data = d
		if comm == nil {
			return errors.New("no communicator")
		}
		if err := comm.Upload(ctx, filepath.Join(dir, "up.txt"), strings.NewReader("uploaded"), 0o600, 8); err != nil {
			return err
		}
		var err error
		status, err = comm.Start(ctx, &host.RemoteCmd{Command: "cat " + filepath.Join(dir, "up.txt") + "; exit 4", Stdout: &out})
		return err
	})})
	inst, warnings, err := p.Prepare(context.Background(), protocol.TypeBuilder, "null", map[string]any{
		"ssh_host": "127.0.0.1", "ssh_port": srv.Port, "ssh_username": srv.User, "ssh_private_key_file": srv.KeyFile,
		"ssh_host_key_fingerprint": ssh.FingerprintSHA256(srv.HostKey), "ssh_file_transfer_method": "sftp",
	})
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Prepare: %v, warnings %q", err, warnings)
	}
	if _, err := inst.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status != 4 || out.String() != "uploaded" {
		t.Errorf("command: status %d, output %q; want 4, %q", status, out.String(), "uploaded")
	}
	if data["ConnType"] != "ssh" || data["Host"] != "127.0.0.1" || data["Port"] != float64(srv.Port) || data["User"] != srv.User {
		t.Errorf("hook data %v", data)
	}
}

// TestFileBuilderCancel checks that a cancelled run answers cancelled and
// leaves no target behind: the hook blocks until the host cancels.
func TestFileBuilderCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := bttest.Start(t, register, host.Options{Hook: host.HookFunc(func(hctx context.Context, _ string, _ host.Communicator, _ map[string]any) error {
		cancel()
		<-hctx.Done()
		return hctx.Err()
	})})
	target := filepath.Join(t.TempDir(), "a.txt")
	inst, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "file", map[string]any{"content": "x", "target": target})
	if err != nil {
		t.Fatal(err)
	}
	_, err = inst.Run(ctx)
	if !errors.Is(err, protocol.ErrCancelled) {
		t.Errorf("Run error = %v, want ErrCancelled", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target after cancel: %v, want it gone", err)
	}
}

// TestFileBuilderTargetRules: an existing target is an error without
// -force and replaced with it; a target that is not a regular file is
// refused either way and left as it was.
func TestFileBuilderTargetRules(t *testing.T) {
	p := bttest.Start(t, register, host.Options{Hook: host.HookFunc(func(context.Context, string, host.Communicator, map[string]any) error { return nil })})
	tests := []struct {
		name    string
		setup   func(t *testing.T, target string)
		force   bool
		wantErr string
		want    string // the target's contents afterwards ("" when not a regular file)
	}{
		{"new", func(*testing.T, string) {}, false, "", "new"},
		{"existing without -force", writeOld, false, "output already exists: %s; run packer build with -force to replace it", "old"},
		{"existing with -force", writeOld, true, "", "new"},
		{"symbolic link", func(t *testing.T, target string) {
			victim := filepath.Join(filepath.Dir(target), "victim")
			writeOld(t, victim)
			if err := os.Symlink(victim, target); err != nil {
				t.Skip(err)
			}
		}, true, "output is not a regular file: %s is a symbolic link; refusing to replace it", ""},
		{"named pipe", func(t *testing.T, target string) {
			if err := mkfifo(target); err != nil {
				t.Skip(err)
			}
		}, true, "output is not a regular file: %s is a named pipe; refusing to replace it", ""},
		{"directory", func(t *testing.T, target string) { os.Mkdir(target, 0o755) }, true, "%s is a directory; refusing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			tt.setup(t, target)
			before, _ := os.Lstat(target)
			keys := bttest.PackerKeys("b", "file")
			keys["packer_force"] = tt.force
			inst, _, err := p.Prepare(context.Background(), protocol.TypeBuilder, "file", map[string]any{"content": "new", "target": target}, keys)
			if err != nil {
				t.Fatal(err)
			}
			_, err = inst.Run(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf(tt.wantErr, target))):
				t.Fatalf("Run: %v, want an error with %q", err, fmt.Sprintf(tt.wantErr, target))
			}
			if tt.want != "" {
				got, _ := os.ReadFile(target)
				if diff := cmp.Diff(tt.want, string(got)); diff != "" {
					t.Errorf("target (-want +got):\n%s", diff)
				}
			} else if after, _ := os.Lstat(target); after == nil || before == nil || after.Mode() != before.Mode() {
				t.Errorf("target replaced: was %v, now %v", before.Mode(), after.Mode())
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".part") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func writeOld(t *testing.T, path string) {
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
}
