// Package localcomm is a [pluginkit.Communicator] for the machine the plugin
// runs on: commands run in a local shell and files are copied on the local
// file system. Builders that build on the local machine (and tests) hand it
// to [pluginkit.Hook.Run].
package localcomm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/packer-stdio/packer/internal/ctxio"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/internal/archive"
)

// waitDelay bounds how long Start waits, after the command exits or is
// killed, for its output pipes to close and its input copy to stop.
const waitDelay = 2 * time.Second

// Comm runs commands and moves files on the local machine. Relative paths
// and commands resolve in its directory. It is safe for concurrent use.
type Comm struct {
	dir string
}

var _ pluginkit.Communicator = (*Comm)(nil)

// New returns a Comm working in dir.
func New(dir string) *Comm { return &Comm{dir: dir} }

func (c *Comm) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Start runs cmd.Command with the local shell (sh -c; cmd /C on Windows) in
// the Comm's directory, streaming stdin, stdout and stderr, and waits for
// it. The exit status of a command that ran is returned with a nil error,
// whatever it is. When ctx is done the command and every process it
// started (its process group, on Unix) are killed and Start returns an
// error wrapping ctx.Err().
func (c *Comm) Start(ctx context.Context, rc *pluginkit.RemoteCmd) (int, error) {
	name, args := shell(rc.Command)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	cmd.Stdin = rc.Stdin
	cmd.Stdout = rc.Stdout
	cmd.Stderr = rc.Stderr
	cmd.WaitDelay = waitDelay
	ownGroup(cmd)
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return -1, fmt.Errorf("running %q: %w", rc.Command, ctxErr)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return code, nil
		}
		return -1, fmt.Errorf("running %q: %w", rc.Command, err)
	}
	if err != nil {
		return -1, fmt.Errorf("running %q: %w", rc.Command, err)
	}
	return 0, nil
}

// Upload writes src to the file dst, creating its parent directories. mode
// 0 means 0644. The data goes to a temporary file beside dst that is
// renamed over dst only when complete, so a cancelled or failed upload
// leaves dst as it was (and no temporary file). A dst that is a symbolic
// link is resolved first, so the upload replaces the file it points to, as
// writing through it would; a dst that exists and is not a regular file (a
// device, a FIFO) is written directly, never replaced.
func (c *Comm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	if mode == 0 {
		mode = 0o644
	}
	p := c.path(dst)
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
	}
	if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return writeInto(ctx, p, dst, src)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.upload")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxio.Reader(ctx, src))
	if err != nil {
		err = fmt.Errorf("uploading %s: %w", dst, err)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// writeInto writes src into the existing non-regular file p.
func writeInto(ctx context.Context, p, dst string, src io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, ctxio.Reader(ctx, src)); err != nil {
		f.Close()
		return fmt.Errorf("uploading %s: %w", dst, err)
	}
	return f.Close()
}

// Download copies the file src to dst.
func (c *Comm) Download(ctx context.Context, src string, dst io.Writer) error {
	f, err := os.Open(c.path(src))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(dst, ctxio.Reader(ctx, f)); err != nil {
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	return nil
}

// UploadDir extracts the tar stream archive under dst with the rules of
// [pluginkit.ExtractArchive], skipping excluded entries.
func (c *Comm) UploadDir(ctx context.Context, dst string, arch io.Reader, exclude []string) error {
	return archive.Extract(ctxio.Reader(ctx, arch), c.path(dst), exclude)
}

// DownloadDir writes a tar stream of the directory src to arch, as
// [pluginkit.ArchiveDir] does, skipping excluded entries.
func (c *Comm) DownloadDir(ctx context.Context, src string, arch io.Writer, exclude []string) error {
	p := c.path(src)
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", src)
	}
	return archive.Write(ctxio.Writer(ctx, arch), p, exclude)
}
