package sshcomm

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/pkg/sftp"

	"github.com/packer-stdio/packer/internal/ctxio"
	"github.com/packer-stdio/packer/pluginkit/internal/archive"
)

// sftpClient returns the connection's SFTP client, starting it on first
// use.
func (c *Comm) sftpClient() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	cl, err := sftp.NewClient(c.client.Client, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		return nil, fmt.Errorf("starting the sftp subsystem: %w", err)
	}
	c.sftp = cl
	return cl, nil
}

func (c *Comm) sftpUpload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	return sftpWrite(ctx, cl, dst, src, mode)
}

// sftpWrite writes src to the remote file dst and gives it mode.
func sftpWrite(ctx context.Context, cl *sftp.Client, dst string, src io.Reader, mode fs.FileMode) error {
	f, err := cl.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.ReadFromWithConcurrency(ctxio.Reader(ctx, src), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *Comm) sftpDownload(ctx context.Context, src string, dst io.Writer) error {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	f, err := cl.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	_, err = f.WriteTo(ctxio.Writer(ctx, dst))
	return err
}

func (c *Comm) sftpUploadDir(ctx context.Context, dst string, arch io.Reader, exclude []string) error {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	if err := cl.MkdirAll(dst); err != nil {
		return err
	}
	// safe holds the directories known to be real directories (not links)
	// under dst; dirModes the modes to give directories at the end, so
	// that a read-only directory can be filled first.
	safe := map[string]bool{".": true}
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirModes []dirMode
	remote := func(name string) string { return path.Join(dst, name) }
	// ensureDir makes dir (relative) a directory under dst, refusing a
	// path through a symbolic link.
	var ensureDir func(dir string) error
	ensureDir = func(dir string) error {
		if safe[dir] {
			return nil
		}
		if err := ensureDir(path.Dir(dir)); err != nil {
			return err
		}
		fi, err := cl.Lstat(remote(dir))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := cl.Mkdir(remote(dir)); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: %q is a symbolic link", ErrUnsafe, dir)
		case !fi.IsDir():
			return fmt.Errorf("%s exists and is not a directory", remote(dir))
		}
		safe[dir] = true
		return nil
	}
	tr := tar.NewReader(ctxio.Reader(ctx, arch))
	for {
		hdr, name, err := nextEntry(tr, exclude)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := ensureDir(path.Dir(name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := ensureDir(name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			dirModes = append(dirModes, dirMode{name, tarMode(hdr)})
		case tar.TypeReg:
			if fi, err := cl.Lstat(remote(name)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				if err := cl.Remove(remote(name)); err != nil {
					return err
				}
			}
			if err := sftpWrite(ctx, cl, remote(name), tr, tarMode(hdr)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case tar.TypeSymlink:
			if err := linkTarget(name, hdr.Linkname); err != nil {
				return err
			}
			if fi, err := cl.Lstat(remote(name)); err == nil {
				if fi.IsDir() {
					return fmt.Errorf("%s: a directory is in the way of the link", name)
				}
				if err := cl.Remove(remote(name)); err != nil {
					return err
				}
			}
			if err := cl.Symlink(hdr.Linkname, remote(name)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			delete(safe, name)
		default:
			return fmt.Errorf("%w: %q: unsupported entry type %q", ErrUnsafe, hdr.Name, hdr.Typeflag)
		}
	}
	// Deepest first, so that a read-only parent is the last to change.
	slices.SortStableFunc(dirModes, func(a, b dirMode) int {
		return strings.Count(b.name, "/") - strings.Count(a.name, "/")
	})
	for _, d := range dirModes {
		if err := cl.Chmod(remote(d.name), d.mode); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}

func (c *Comm) sftpDownloadDir(ctx context.Context, src string, arch io.Writer, exclude []string) error {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	src = path.Clean(src)
	fi, err := cl.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", src)
	}
	tw := tar.NewWriter(ctxio.Writer(ctx, arch))
	walker := cl.Walk(src)
	for walker.Step() {
		if err := walker.Err(); err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(walker.Path(), src), "/")
		if rel == "" {
			continue
		}
		info := walker.Stat()
		if archive.Excluded(rel, exclude) {
			if info.IsDir() {
				walker.SkipDir()
			}
			continue
		}
		var link string
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = cl.ReadLink(walker.Path()); err != nil {
				return err
			}
		case !info.Mode().IsRegular() && !info.IsDir():
			continue // sockets, devices, pipes: not transferred
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = "", "", 0, 0
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		f, err := cl.Open(walker.Path())
		if err != nil {
			return err
		}
		_, err = f.WriteTo(tw)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	return tw.Close()
}
