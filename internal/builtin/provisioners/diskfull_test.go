//go:build linux

package provisioners_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

// TestFileDownloadDiskFull: a download onto a full disk (a 64 KiB tmpfs)
// fails with a message that says so and names the destination, and leaves
// neither a partial file nor a replaced one. Mounting needs privileges; the
// test is skipped, saying why, where it has none.
func TestFileDownloadDiskFull(t *testing.T) {
	local, work := t.TempDir(), t.TempDir()
	if err := syscall.Mount("tmpfs", local, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); TestFileUploadDiskFull covers the size-limited path", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(local, 0); err != nil {
			t.Errorf("unmounting %s: %v", local, err)
		}
	})
	bttest.WriteTree(t, local, map[string]string{"b.txt": "old"})
	bttest.WriteTree(t, work, map[string]string{"big.bin": strings.Repeat("x", 1<<20)})
	dst := filepath.Join(local, "b.txt")
	err := provision(t, bttest.NewUI(), "file", map[string]any{"source": "big.bin", "destination": dst, "direction": "download"}, bttest.LocalComm(work))
	if err == nil {
		t.Fatal("Provision succeeded on a full disk")
	}
	t.Logf("error: %v", err)
	if !errors.Is(err, protocol.ErrComponentFailed) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), dst) {
		t.Errorf("error %q does not say the disk is full and name %s", err, dst)
	}
	if diff := cmp.Diff(map[string]string{"b.txt": "old"}, bttest.Tree(t, local)); diff != "" {
		t.Errorf("local files (-want +got):\n%s", diff)
	}
}

// fullDisk is a communicator whose machine has room for limit bytes: an
// upload beyond that fails as a full disk does, after writing what fit.
type fullDisk struct {
	host.Communicator
	limit   int64
	written int64
}

func (c *fullDisk) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		c.written += int64(n)
		if c.written > c.limit {
			return &fs.PathError{Op: "write", Path: dst, Err: syscall.ENOSPC}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// TestFileUploadDiskFull: an upload to a machine whose disk fills up fails
// with a message that says so, through the communicator relay, and the
// provisioner does not report success.
func TestFileUploadDiskFull(t *testing.T) {
	local, work := t.TempDir(), t.TempDir()
	bttest.WriteTree(t, local, map[string]string{"big.bin": strings.Repeat("x", 1<<20)})
	comm := &fullDisk{Communicator: bttest.LocalComm(work), limit: 64 << 10}
	err := provision(t, bttest.NewUI(), "file", map[string]any{"source": filepath.Join(local, "big.bin"), "destination": "dst.bin"}, comm)
	if err == nil {
		t.Fatal("Provision succeeded on a full disk")
	}
	t.Logf("error: %v", err)
	if !errors.Is(err, protocol.ErrComponentFailed) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "dst.bin") {
		t.Errorf("error %q does not say the disk is full and name dst.bin", err)
	}
	if comm.written > 1<<20 {
		t.Errorf("the communicator was given %d bytes, more than the file", comm.written)
	}
	if _, err := os.Stat(filepath.Join(work, "dst.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dst.bin exists on the machine: %v", err)
	}
}
