//go:build unix

package localcomm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStart(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "here.txt"), nil, 0o644))
	tests := []struct {
		name           string
		command, stdin string
		status         int
		stdout, stderr string
	}{
		{name: "output and status", command: "echo out; echo err >&2; exit 3", status: 3, stdout: "out\n", stderr: "err\n"},
		{name: "stdin streamed", command: "tr a-z A-Z", stdin: "hello", stdout: "HELLO"},
		{name: "runs in dir", command: "ls", stdout: "here.txt\n"},
		{name: "no streams", command: "true"},
	}
	c := localcomm.New(dir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := &pluginkit.RemoteCmd{Command: tc.command}
			if tc.stdin != "" {
				cmd.Stdin = strings.NewReader(tc.stdin)
			}
			if tc.stdout != "" || tc.stderr != "" {
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
			}
			status, err := c.Start(context.Background(), cmd)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{strconv.Itoa(status), stdout.String(), stderr.String()}
			if diff := cmp.Diff([]string{strconv.Itoa(tc.status), tc.stdout, tc.stderr}, got); diff != "" {
				t.Errorf("status, stdout, stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStartCancelKillsGroup: cancelling kills the command and what it
// started in the background.
func TestStartCancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	c := localcomm.New(dir)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	pr := &notifyWriter{w: &stdout, ready: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := c.Start(ctx, &pluginkit.RemoteCmd{Command: "sleep 60 & echo $! > bg.pid; echo started; wait", Stdout: pr})
		done <- err
	}()
	<-pr.ready
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bg.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The killed background process may stay a zombie until init reaps it;
	// wait for that (a watchdog, not a timing assertion).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if zombie(pid) {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("background process %d survived the cancel", pid)
		}
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z")
}

type notifyWriter struct {
	w     *bytes.Buffer
	ready chan struct{}
	once  bool
}

func (n *notifyWriter) Write(p []byte) (int, error) {
	if !n.once {
		n.once = true
		close(n.ready)
	}
	return n.w.Write(p)
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	c := localcomm.New(dir)
	ctx := context.Background()
	payload := bytes.Repeat([]byte("z"), 100000)
	must(t, c.Upload(ctx, "sub/f.bin", bytes.NewReader(payload), 0o751, int64(len(payload))))
	fi, err := os.Stat(filepath.Join(dir, "sub", "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o751 {
		t.Errorf("mode: got %v, want -rwxr-x--x", fi.Mode())
	}
	abs := filepath.Join(dir, "sub", "f.bin")
	for _, src := range []string{"sub/f.bin", abs} {
		var back bytes.Buffer
		must(t, c.Download(ctx, src, &back))
		if !bytes.Equal(payload, back.Bytes()) {
			t.Errorf("download %s: got %d bytes, want %d", src, back.Len(), len(payload))
		}
	}
	must(t, c.Upload(ctx, "default", strings.NewReader("d"), 0, -1))
	if fi, _ := os.Stat(filepath.Join(dir, "default")); fi == nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode 0: got %v, want -rw-r--r--", fi)
	}
	if err := c.Download(ctx, "missing", &bytes.Buffer{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("download missing: got %v, want ErrNotExist", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Upload(cancelled, "x", strings.NewReader("x"), 0, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("upload after cancel: got %v, want context.Canceled", err)
	}
}

func TestDirs(t *testing.T) {
	dir := t.TempDir()
	c := localcomm.New(dir)
	ctx := context.Background()
	must(t, os.MkdirAll(filepath.Join(dir, "src", "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "src", "d", "keep.txt"), []byte("k"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "src", "drop.tmp"), []byte("t"), 0o644))
	var arch bytes.Buffer
	must(t, c.DownloadDir(ctx, "src", &arch, []string{"*.tmp"}))
	must(t, c.UploadDir(ctx, "dst", bytes.NewReader(arch.Bytes()), nil))
	if b, err := os.ReadFile(filepath.Join(dir, "dst", "d", "keep.txt")); err != nil || string(b) != "k" {
		t.Errorf("dst/d/keep.txt: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dst", "drop.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("excluded file was transferred: %v", err)
	}
	// Exclusion on upload.
	must(t, c.UploadDir(ctx, "dst2", bytes.NewReader(arch.Bytes()), []string{"d"}))
	if _, err := os.Stat(filepath.Join(dir, "dst2", "d")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("excluded directory was extracted: %v", err)
	}
	if err := c.DownloadDir(ctx, "src/d/keep.txt", &bytes.Buffer{}, nil); err == nil {
		t.Error("DownloadDir of a file: no error")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cancelAfter yields n bytes of data, then cancels and keeps yielding, as
// a transfer cut off halfway does.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
	}
	r.n -= len(p)
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestUploadCancelledLeavesDestination: a cancelled upload leaves the
// destination as it was, new or old, and no temporary file beside it.
func TestUploadCancelledLeavesDestination(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run("existing="+strconv.FormatBool(existing), func(t *testing.T) {
			dir := t.TempDir()
			if existing {
				must(t, os.WriteFile(filepath.Join(dir, "dst"), []byte("old"), 0o644))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := localcomm.New(dir).Upload(ctx, "dst", &cancelAfter{n: 1 << 20, cancel: cancel}, 0o644, 4<<20)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Upload: %v, want context.Canceled", err)
			}
			var names []string
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				names = append(names, e.Name())
			}
			var want []string
			if existing {
				want = []string{"dst"}
				if got, _ := os.ReadFile(filepath.Join(dir, "dst")); string(got) != "old" {
					t.Errorf("dst holds %d bytes after the cancelled upload, want the old contents", len(got))
				}
			}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("directory after a cancelled upload (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUploadThroughLink: a link at the destination is resolved, so the
// file it points to is replaced and the link stays.
func TestUploadThroughLink(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "target"), []byte("old"), 0o644))
	must(t, os.Symlink("target", filepath.Join(dir, "link")))
	must(t, localcomm.New(dir).Upload(context.Background(), "link", strings.NewReader("new"), 0o644, 3))
	if got, _ := os.ReadFile(filepath.Join(dir, "target")); string(got) != "new" {
		t.Errorf("target = %q, want new", got)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
}
