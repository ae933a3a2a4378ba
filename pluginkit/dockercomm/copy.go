package dockercomm

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/internal/archive"
)

// maxLinks bounds the symbolic links Download follows.
const maxLinks = 40

// Upload writes the size bytes of src to the file dst in the container,
// with permission bits mode (0: 0644), creating missing parent directories
// (0755). A known size travels as a one-file tar stream through the archive
// API, written as src is read; with size -1 the bytes are piped into an exec
// of cat instead (a tar header needs the size first), which needs /bin/sh,
// mkdir, cat and chmod (and chown) in the container. The file is owned by
// root, or by the container's user with Options.FixUploadOwner.
func (c *Comm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	if mode == 0 {
		mode = 0o644
	}
	abs, err := c.abs(ctx, dst)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	if size < 0 {
		return c.uploadStream(ctx, abs, src, mode)
	}
	dir, name := path.Split(abs)
	if name == "" {
		return fmt.Errorf("upload to %s: not a file name", dst)
	}
	if err := c.mkdirAll(ctx, dir); err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     tarMode(mode),
			Size:     size,
			ModTime:  time.Now(),
		})
		if err == nil {
			var n int64
			n, err = io.CopyN(tw, src, size)
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("source ended after %d of %d bytes", n, size)
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	err = c.copyTo(ctx, dir, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	return nil
}

// uploadStream writes src of unknown size to abs through an exec of cat,
// as root; with FixUploadOwner the file is then given to the container's
// user.
func (c *Comm) uploadStream(ctx context.Context, abs string, src io.Reader, mode fs.FileMode) error {
	script := `mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"`
	args := []string{quote(abs), fmt.Sprintf("%o", tarMode(mode))}
	if c.opts.FixUploadOwner {
		_, user, err := c.info(ctx)
		if err != nil {
			return fmt.Errorf("upload to %s: %w", abs, err)
		}
		if user != "" {
			script += ` && chown "$3" "$1"`
			args = append(args, quote(user))
		}
	}
	var stderr strings.Builder
	root := &Comm{api: c.api, container: c.container, opts: Options{User: "0"}}
	status, err := root.Start(ctx, &pluginkit.RemoteCmd{
		Command: "set -- " + strings.Join(args, " ") + "; " + script,
		Stdin:   src,
		Stderr:  &stderr,
	})
	if err != nil {
		return fmt.Errorf("upload to %s: %w", abs, err)
	}
	if status != 0 {
		return fmt.Errorf("upload to %s: exited %d: %s", abs, status, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Download writes the contents of the file src in the container to dst,
// following symbolic links. It is an error if src is a directory.
func (c *Comm) Download(ctx context.Context, src string, dst io.Writer) error {
	abs, err := c.abs(ctx, src)
	if err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	for range maxLinks {
		res, err := c.api.CopyFromContainer(ctx, c.container, client.CopyFromContainerOptions{SourcePath: abs})
		if err != nil {
			return fmt.Errorf("download %s: %w", src, err)
		}
		tr := tar.NewReader(res.Content)
		hdr, err := tr.Next()
		if err != nil {
			res.Content.Close()
			return fmt.Errorf("download %s: reading the archive: %w", src, err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			_, err := io.Copy(dst, tr)
			res.Content.Close()
			if err != nil {
				return fmt.Errorf("download %s: %w", src, err)
			}
			return nil
		case tar.TypeSymlink:
			res.Content.Close()
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(abs), target)
			}
			abs = target
		case tar.TypeDir:
			res.Content.Close()
			return fmt.Errorf("download %s: is a directory", src)
		default:
			res.Content.Close()
			return fmt.Errorf("download %s: not a regular file (tar type %q)", src, hdr.Typeflag)
		}
	}
	return fmt.Errorf("download %s: more than %d symbolic links", src, maxLinks)
}

// UploadDir extracts the tar stream archive under the directory dst in the
// container (created, with its missing parents, if needed), leaving out
// entries whose names match a glob in exclude. The stream is passed to the
// engine entry by entry as it is read; entries are owned by root, or by
// the container's user with Options.FixUploadOwner. The engine refuses
// entries that would land outside dst.
func (c *Comm) UploadDir(ctx context.Context, dst string, r io.Reader, exclude []string) error {
	abs, err := c.abs(ctx, dst)
	if err != nil {
		return fmt.Errorf("upload directory to %s: %w", dst, err)
	}
	if err := c.mkdirAll(ctx, abs); err != nil {
		return fmt.Errorf("upload directory to %s: %w", dst, err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(retar(pw, tar.NewReader(r), func(hdr *tar.Header) (bool, error) {
			name := strings.TrimSuffix(path.Clean(hdr.Name), "/")
			if archive.Excluded(name, exclude) {
				return false, nil
			}
			switch hdr.Typeflag {
			case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
			default:
				return false, fmt.Errorf("%s: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			return true, nil
		}))
	}()
	err = c.copyTo(ctx, abs, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return fmt.Errorf("upload directory to %s: %w", dst, err)
	}
	return nil
}

// DownloadDir writes to w a tar stream of the contents of the directory src
// in the container, with names relative to src, leaving out entries whose
// names match a glob in exclude. Modes, owners and times are the
// container's. The engine's stream is rewritten entry by entry as it is
// read.
func (c *Comm) DownloadDir(ctx context.Context, src string, w io.Writer, exclude []string) error {
	abs, err := c.abs(ctx, src)
	if err != nil {
		return fmt.Errorf("download directory %s: %w", src, err)
	}
	res, err := c.api.CopyFromContainer(ctx, c.container, client.CopyFromContainerOptions{SourcePath: abs})
	if err != nil {
		return fmt.Errorf("download directory %s: %w", src, err)
	}
	defer res.Content.Close()
	if !res.Stat.Mode.IsDir() {
		return fmt.Errorf("download directory %s: not a directory", src)
	}
	err = retar(w, tar.NewReader(res.Content), func(hdr *tar.Header) (bool, error) {
		// The engine names entries BASE/..., BASE being src's base name.
		_, rest, _ := strings.Cut(strings.TrimPrefix(hdr.Name, "./"), "/")
		rest = strings.TrimSuffix(rest, "/")
		if rest == "" || archive.Excluded(rest, exclude) {
			return false, nil
		}
		hdr.Name = rest
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("download directory %s: %w", src, err)
	}
	return nil
}

// retar copies the tar stream tr to w entry by entry; keep may rewrite a
// header and says whether to copy the entry.
func retar(w io.Writer, tr *tar.Reader, keep func(*tar.Header) (bool, error)) error {
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		ok, err := keep(hdr)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
}

// copyTo sends the tar stream r to the directory dir in the container.
func (c *Comm) copyTo(ctx context.Context, dir string, r io.Reader) error {
	_, err := c.api.CopyToContainer(ctx, c.container, client.CopyToContainerOptions{
		DestinationPath: dir,
		Content:         r,
		CopyUIDGID:      c.opts.FixUploadOwner,
	})
	return err
}

// mkdirAll creates the directory dir in the container with its missing
// parents (0755), through the archive API: existing directories are left
// as they are.
func (c *Comm) mkdirAll(ctx context.Context, dir string) error {
	dir = path.Clean(dir)
	var missing []string
	for d := dir; d != "/"; d = path.Dir(d) {
		res, err := c.api.ContainerStatPath(ctx, c.container, client.ContainerStatPathOptions{Path: d})
		if err == nil {
			if !res.Stat.Mode.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	// The outermost missing directory's parent exists: send it a tar
	// stream of the missing chain.
	top := missing[len(missing)-1]
	parent := path.Dir(top)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		now := time.Now()
		for i := len(missing) - 1; i >= 0; i-- {
			rel := strings.TrimPrefix(missing[i], strings.TrimSuffix(parent, "/")+"/")
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: now}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	err := c.copyTo(ctx, parent, pr)
	pr.Close()
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}

// tarMode converts permission, setuid, setgid and sticky bits to a tar
// header's mode.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// quote quotes s for /bin/sh.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
