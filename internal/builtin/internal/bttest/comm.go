package bttest

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
)

// LocalComm returns a host.Communicator working in dir on this machine
// (pluginkit/localcomm seen from the host side).
func LocalComm(dir string) host.Communicator {
	return hostComm{localcomm.New(dir)}
}

type hostComm struct{ c pluginkit.Communicator }

func (h hostComm) Start(ctx context.Context, cmd *host.RemoteCmd) (int, error) {
	return h.c.Start(ctx, &pluginkit.RemoteCmd{Command: cmd.Command, Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr})
}

func (h hostComm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	return h.c.Upload(ctx, dst, src, mode, size)
}

func (h hostComm) Download(ctx context.Context, src string, dst io.Writer) error {
	return h.c.Download(ctx, src, dst)
}

func (h hostComm) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	return h.c.UploadDir(ctx, dst, archive, exclude)
}

func (h hostComm) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error {
	return h.c.DownloadDir(ctx, src, archive, exclude)
}

// Tree returns the regular files under dir as slash-separated relative
// path → contents; directories appear as "path/" → "".
func Tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("reading tree %s: %v", dir, err)
	}
	return out
}

// WriteTree creates files under dir from path → contents; a path ending in
// "/" is a directory.
func WriteTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if name[len(name)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
