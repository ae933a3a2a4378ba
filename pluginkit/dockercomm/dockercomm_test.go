package dockercomm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/internal/dockertest"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/dockercomm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// run runs command through comm and returns its exit status, stdout and
// stderr.
func run(t *testing.T, comm pluginkit.Communicator, command string, stdin io.Reader) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status, err := comm.Start(context.Background(), &pluginkit.RemoteCmd{Command: command, Stdin: stdin, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("Start(%q): %v", command, err)
	}
	return status, stdout.String(), stderr.String()
}

func TestStart(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	id := dockertest.Container(t, cli, image, "")
	type result struct {
		Status         int
		Stdout, Stderr string
	}
	tests := []struct {
		name    string
		opts    dockercomm.Options
		command string
		stdin   string
		want    result
	}{
		{name: "streams and status", command: "echo out; echo err >&2; exit 3", want: result{3, "out\n", "err\n"}},
		{name: "stdin", command: "tr a-z A-Z", stdin: "hello\nworld\n", want: result{0, "HELLO\nWORLD\n", ""}},
		{name: "no trailing newline", command: "printf partial", want: result{0, "partial", ""}},
		{name: "exec user", opts: dockercomm.Options{User: "nobody"}, command: "id -u", want: result{0, "65534\n", ""}},
		{name: "quoting", command: `printf '%s|' "a b" 'c'"'"'d'`, want: result{0, "a b|c'd|", ""}},
		{name: "not found", command: "no-such-command", want: result{127, "", "/bin/sh: no-such-command: not found\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm := dockercomm.New(cli, id, tt.opts)
			var stdin io.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			var got result
			got.Status, got.Stdout, got.Stderr = run(t, comm, tt.command, stdin)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Start(%q) (-want +got):\n%s", tt.command, diff)
			}
		})
	}
}

// TestStartCancel cancels a command that started a background process:
// Start returns the context's error, and no process of the command is left
// in the container.
func TestStartCancel(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	id := dockertest.Container(t, cli, image, "")
	comm := dockercomm.New(cli, id, dockercomm.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := comm.Start(ctx, &pluginkit.RemoteCmd{Command: "sleep 1001 & touch /tmp/started; sleep 1002"})
		errc <- err
	}()
	for {
		if status, _, _ := run(t, comm, "test -e /tmp/started", nil); status == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Start after cancel = %v, want context.Canceled", err)
	}
	// Every process but the container's shell and this exec's.
	_, out, _ := run(t, comm, `for d in /proc/[0-9]*; do tr '\0' ' ' < $d/cmdline; echo; done`, nil)
	if strings.Contains(out, "sleep 100") {
		t.Errorf("processes left in the container after cancellation:\n%s", out)
	}
}

func TestUploadDownload(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	id := dockertest.Container(t, cli, image, "")
	comm := dockercomm.New(cli, id, dockercomm.Options{})
	ctx := context.Background()
	content := strings.Repeat("0123456789abcdef", 100_000) // 1.6 MB

	tests := []struct {
		name string
		dst  string
		mode os.FileMode
		size int64
		want string // stat -c '%a %u' of dst
	}{
		{name: "known size, new parents", dst: "/a/b/c.bin", mode: 0o750, size: int64(len(content)), want: "750 0"},
		{name: "unknown size", dst: "/a/stream.bin", mode: 0o600, size: -1, want: "600 0"},
		{name: "default mode, relative", dst: "rel.bin", size: int64(len(content)), want: "644 0"},
		{name: "setuid", dst: "/a/suid", mode: 0o755 | os.ModeSetuid, size: int64(len(content)), want: "4755 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := comm.Upload(ctx, tt.dst, strings.NewReader(content), tt.mode, tt.size); err != nil {
				t.Fatal(err)
			}
			_, got, _ := run(t, comm, "stat -c '%a %u' "+tt.dst, nil)
			if diff := cmp.Diff(tt.want+"\n", got); diff != "" {
				t.Errorf("mode and owner (-want +got):\n%s", diff)
			}
			var buf bytes.Buffer
			if err := comm.Download(ctx, tt.dst, &buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != content {
				t.Errorf("downloaded %d bytes, want the %d uploaded", buf.Len(), len(content))
			}
		})
	}

	t.Run("short source", func(t *testing.T) {
		err := comm.Upload(ctx, "/a/short", strings.NewReader("abc"), 0, 10)
		if err == nil || !strings.Contains(err.Error(), "3 of 10 bytes") {
			t.Errorf("Upload of a short source = %v, want an error naming the sizes", err)
		}
	})
	t.Run("download follows links", func(t *testing.T) {
		run(t, comm, "ln -s c.bin /a/b/link", nil)
		var buf bytes.Buffer
		if err := comm.Download(ctx, "/a/b/link", &buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != content {
			t.Errorf("downloaded %d bytes through the link, want %d", buf.Len(), len(content))
		}
	})
	t.Run("download errors", func(t *testing.T) {
		for _, src := range []string{"/a", "/no/such/file"} {
			if err := comm.Download(ctx, src, io.Discard); err == nil || !strings.Contains(err.Error(), src) {
				t.Errorf("Download(%s) = %v, want an error naming it", src, err)
			}
		}
	})
}

func TestFixUploadOwner(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	id := dockertest.Container(t, cli, image, "nobody")
	ctx := context.Background()
	for _, tt := range []struct {
		fix  bool
		want string
	}{{false, "0\n"}, {true, "65534\n"}} {
		comm := dockercomm.New(cli, id, dockercomm.Options{FixUploadOwner: tt.fix})
		for _, size := range []int64{1, -1} {
			// /root is not writable by the container's user, nobody.
			dst := fmt.Sprintf("/root/owned-%v-%d", tt.fix, size)
			if err := comm.Upload(ctx, dst, strings.NewReader("x"), 0o644, size); err != nil {
				t.Fatal(err)
			}
			if _, got, _ := run(t, comm, "stat -c %u "+dst, nil); got != tt.want {
				t.Errorf("fix_upload_owner %v, size %d: owner %q, want %q", tt.fix, size, got, tt.want)
			}
		}
	}
}

func TestDirs(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	id := dockertest.Container(t, cli, image, "")
	comm := dockercomm.New(cli, id, dockercomm.Options{})
	ctx := context.Background()

	src := t.TempDir()
	files := map[string]os.FileMode{"top.txt": 0o644, "sub/run.sh": 0o755, "sub/deep/secret": 0o600, "skip.log": 0o644, "sub/also.log": 0o644}
	for name, mode := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	if err := os.Symlink("top.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	archive := pluginkit.ArchiveDir(src, nil)
	defer archive.Close()
	if err := comm.UploadDir(ctx, "/up/dir", archive, []string{"*.log", "sub/*.log"}); err != nil {
		t.Fatal(err)
	}
	_, got, _ := run(t, comm, "cd /up/dir && find . | sort | while read f; do echo \"$f $(stat -c %A \"$f\")\"; done", nil)
	want := `. drwxr-xr-x
./link lrwxrwxrwx
./sub drwxr-xr-x
./sub/deep drwxr-xr-x
./sub/deep/secret -rw-------
./sub/run.sh -rwxr-xr-x
./top.txt -rw-r--r--
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uploaded tree (-want +got):\n%s", diff)
	}

	// Back again, without the deep directory.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(comm.DownloadDir(ctx, "/up/dir", pw, []string{"sub/deep"})) }()
	out := t.TempDir()
	if err := pluginkit.ExtractArchive(pr, out); err != nil {
		t.Fatal(err)
	}
	var names []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		info, _ := d.Info()
		names = append(names, rel+" "+info.Mode().String())
		return nil
	})
	sort.Strings(names)
	wantNames := []string{". drwxr-xr-x", "link Lrwxrwxrwx", "sub drwxr-xr-x", "sub/run.sh -rwxr-xr-x", "top.txt -rw-r--r--"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("downloaded tree (-want +got):\n%s", diff)
	}
}
