package sshcomm

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/packer-stdio/packer/internal/commwire"
	"github.com/packer-stdio/packer/internal/ctxio"
	"github.com/packer-stdio/packer/pluginkit/internal/archive"
)

// maxSCPLine bounds a line of the scp protocol read from the server.
const maxSCPLine = 64 << 10

// maxStderr bounds how much of a remote program's stderr an error quotes.
const maxStderr = 4 << 10

// scpSession runs the remote command (an "scp" in sink or source mode, or
// a shell command), hands its stdin and stdout to speak, and waits for it.
// Cancelling ctx closes the session. The error of a command that failed
// quotes the start of its stderr.
func (c *Comm) scpSession(ctx context.Context, command string, speak func(w io.Writer, r *bufio.Reader) error) error {
	sess, err := c.client.NewSession()
	if err != nil {
		return fmt.Errorf("opening a session: %w", err)
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	w, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &limitedBuffer{max: maxStderr}
	sess.Stderr = stderr
	if err := sess.Start(command); err != nil {
		return fmt.Errorf("starting %s: %w", command, err)
	}
	speakErr := speak(w, bufio.NewReaderSize(out, 64<<10))
	w.Close()
	if speakErr != nil {
		// Don't wait on a peer that may still be sending.
		sess.Close()
	}
	waitErr := sess.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if speakErr != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w (remote %s: %s)", speakErr, command, msg)
		}
		return speakErr
	}
	if waitErr != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("remote %s: %w: %s", command, waitErr, msg)
		}
		return fmt.Errorf("remote %s: %w", command, waitErr)
	}
	return nil
}

// run runs a shell command and fails unless it exits with status 0.
func (c *Comm) run(ctx context.Context, command string) error {
	return c.scpSession(ctx, command, func(io.Writer, *bufio.Reader) error { return nil })
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// errSCP is the error the remote scp reported.
type errSCP string

func (e errSCP) Error() string { return "scp: " + string(e) }

// scpAck reads the remote scp's answer: 0 is OK, 1 and 2 carry a message.
func scpAck(r *bufio.Reader) error {
	b, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("reading scp answer: %w", err)
	}
	switch b {
	case 0:
		return nil
	case 1, 2:
		line, _ := readLine(r)
		return errSCP(line)
	default:
		return fmt.Errorf("scp: unexpected answer byte %#x", b)
	}
}

// readLine reads a line of at most maxSCPLine bytes, without its newline.
func readLine(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		frag, err := r.ReadSlice('\n')
		sb.Write(frag)
		if sb.Len() > maxSCPLine {
			return "", errors.New("scp: line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading scp line: %w", err)
		}
		return strings.TrimSuffix(sb.String(), "\n"), nil
	}
}

// scpFile sends one file record and its bytes to a remote scp sink.
func scpFile(w io.Writer, r *bufio.Reader, name string, mode fs.FileMode, size int64, src io.Reader) error {
	if err := scpName(name); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "C%04o %d %s\n", scpMode(mode), size, name); err != nil {
		return err
	}
	if err := scpAck(r); err != nil {
		return err
	}
	n, err := io.CopyN(w, src, size)
	if err != nil {
		if err == io.EOF {
			return fmt.Errorf("source ended after %d of %d bytes", n, size)
		}
		return err
	}
	if _, err := w.Write([]byte{0}); err != nil {
		return err
	}
	return scpAck(r)
}

// scpName refuses a name the scp protocol cannot carry: its records are
// lines.
func scpName(name string) error {
	if strings.ContainsAny(name, "\n\r") {
		return fmt.Errorf("scp: cannot send the name %q: it has a line break (use sftp)", name)
	}
	return nil
}

// scpMode is mode as the scp protocol's octal mode: permission bits with
// setuid, setgid and sticky.
func scpMode(mode fs.FileMode) uint32 { return commwire.WireMode(mode) }

// parseSCPMode is the inverse of scpMode.
func parseSCPMode(s string) (fs.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("scp: bad mode %q", s)
	}
	return commwire.FileMode(uint32(m)), nil
}

// tarMode is the mode of a tar entry: permission bits with setuid, setgid
// and sticky.
func tarMode(hdr *tar.Header) fs.FileMode { return commwire.FileMode(uint32(hdr.Mode & 0o7777)) }

func (c *Comm) scpUpload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	if size < 0 {
		spool, err := os.CreateTemp("", "sshcomm-upload-*")
		if err != nil {
			return fmt.Errorf("spooling an upload of unknown size: %w", err)
		}
		defer os.Remove(spool.Name())
		defer spool.Close()
		if size, err = io.Copy(spool, ctxio.Reader(ctx, src)); err != nil {
			return fmt.Errorf("spooling an upload of unknown size: %w", err)
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		src = spool
	}
	return c.scpSession(ctx, "scp -p -t -- "+shellQuote(dst), func(w io.Writer, r *bufio.Reader) error {
		if err := scpAck(r); err != nil {
			return err
		}
		return scpFile(w, r, path.Base(dst), mode, size, ctxio.Reader(ctx, src))
	})
}

// scpRecord is one record a remote scp source sends.
type scpRecord struct {
	kind byte // 'C', 'D', 'E' or 'T'
	mode fs.FileMode
	size int64
	name string
	line string
}

// readRecord reads a record from a remote scp source; io.EOF when it has
// no more.
func readRecord(r *bufio.Reader) (scpRecord, error) {
	b, err := r.ReadByte()
	if err != nil {
		return scpRecord{}, err
	}
	if b == 1 || b == 2 {
		line, _ := readLine(r)
		return scpRecord{}, errSCP(line)
	}
	line, err := readLine(r)
	if err != nil {
		return scpRecord{}, err
	}
	rec := scpRecord{kind: b, line: line}
	switch b {
	case 'E', 'T':
		return rec, nil
	case 'C', 'D':
		fields := strings.SplitN(line, " ", 3)
		if len(fields) != 3 {
			return rec, fmt.Errorf("scp: bad record %q", string(b)+line)
		}
		if rec.mode, err = parseSCPMode(fields[0]); err != nil {
			return rec, err
		}
		if rec.size, err = strconv.ParseInt(fields[1], 10, 64); err != nil || rec.size < 0 {
			return rec, fmt.Errorf("scp: bad size in %q", string(b)+line)
		}
		rec.name = fields[2]
		if rec.name == "" || rec.name == "." || rec.name == ".." || strings.Contains(rec.name, "/") {
			return rec, fmt.Errorf("%w: scp source sent the name %q", ErrUnsafe, rec.name)
		}
		return rec, nil
	default:
		return rec, fmt.Errorf("scp: unexpected record %q", string(b)+line)
	}
}

func (c *Comm) scpDownload(ctx context.Context, src string, dst io.Writer) error {
	return c.scpSession(ctx, "scp -f -- "+shellQuote(src), func(w io.Writer, r *bufio.Reader) error {
		if _, err := w.Write([]byte{0}); err != nil {
			return err
		}
		rec, err := readRecord(r)
		if err != nil {
			return err
		}
		if rec.kind != 'C' {
			return fmt.Errorf("scp: %s is not a regular file", src)
		}
		if _, err := w.Write([]byte{0}); err != nil {
			return err
		}
		if _, err := io.CopyN(ctxio.Writer(ctx, dst), r, rec.size); err != nil {
			return err
		}
		if err := scpAck(r); err != nil {
			return err
		}
		_, err = w.Write([]byte{0})
		return err
	})
}

// ErrUnsafe is wrapped by the error of UploadDir for an archive entry that
// would land outside the destination directory, and of DownloadDir for a
// name that a remote scp must not send.
var ErrUnsafe = archive.ErrUnsafe

// nextEntry returns the next entry of an archive that UploadDir writes
// out: its header and cleaned relative name (see entryName). It passes
// over the root itself, entries exclude matches and global headers, and
// returns io.EOF at the end of the archive. The scp and SFTP uploads
// share it so both skip the same entries.
func nextEntry(tr *tar.Reader, exclude []string) (*tar.Header, string, error) {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, "", io.EOF
		}
		if err != nil {
			return nil, "", fmt.Errorf("reading archive: %w", err)
		}
		name, err := entryName(hdr)
		if err != nil {
			return nil, "", err
		}
		if name == "" || archive.Excluded(name, exclude) || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		return hdr, name, nil
	}
}

// entryName checks a tar entry's name as SPEC says a receiver must: it
// returns the cleaned relative name ("" for the root itself).
func entryName(hdr *tar.Header) (string, error) {
	name := strings.TrimSuffix(hdr.Name, "/")
	if name == "" || name == "." {
		return "", nil
	}
	if strings.Contains(hdr.Name, "\\") || path.IsAbs(hdr.Name) || !fs.ValidPath(path.Clean(name)) || path.Clean(name) != strings.TrimPrefix(name, "./") {
		return "", fmt.Errorf("%w: %q", ErrUnsafe, hdr.Name)
	}
	return path.Clean(name), nil
}

// linkTarget checks that the symbolic link name → target stays inside the
// destination.
func linkTarget(name, target string) error {
	if target == "" || path.IsAbs(target) || strings.Contains(target, "\\") {
		return fmt.Errorf("%w: link %q to %q", ErrUnsafe, name, target)
	}
	if !fs.ValidPath(path.Join(path.Dir(name), target)) {
		return fmt.Errorf("%w: link %q to %q", ErrUnsafe, name, target)
	}
	return nil
}

// throughLink reports whether name lies under one of the links.
func throughLink(name string, links map[string]bool) bool {
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if links[p] {
			return true
		}
	}
	return false
}

func (c *Comm) scpUploadDir(ctx context.Context, dst string, arch io.Reader, exclude []string) error {
	if err := c.run(ctx, "mkdir -p -- "+shellQuote(dst)); err != nil {
		return err
	}
	type link struct{ name, target string }
	var links []link
	linked := map[string]bool{}
	err := c.scpSession(ctx, "scp -r -p -t -- "+shellQuote(dst), func(w io.Writer, r *bufio.Reader) error {
		if err := scpAck(r); err != nil {
			return err
		}
		var open []string // the directories entered, outermost first
		send := func(format string, args ...any) error {
			if _, err := fmt.Fprintf(w, format, args...); err != nil {
				return err
			}
			return scpAck(r)
		}
		// enter leaves and enters directories until dir ("." for the
		// root) is the one open; directories entered on the way that the
		// archive did not list get 0755.
		enter := func(dir string) error {
			var want []string
			if dir != "." {
				want = strings.Split(dir, "/")
			}
			common := 0
			for common < len(open) && common < len(want) && open[common] == want[common] {
				common++
			}
			for len(open) > common {
				if err := send("E\n"); err != nil {
					return err
				}
				open = open[:len(open)-1]
			}
			for _, name := range want[common:] {
				if err := scpName(name); err != nil {
					return err
				}
				if err := send("D0755 0 %s\n", name); err != nil {
					return err
				}
				open = append(open, name)
			}
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
			if throughLink(name, linked) || linked[name] && hdr.Typeflag != tar.TypeSymlink {
				return fmt.Errorf("%w: %q is written through a symbolic link", ErrUnsafe, hdr.Name)
			}
			mode := tarMode(hdr)
			switch hdr.Typeflag {
			case tar.TypeDir:
				if err := enter(path.Dir(name)); err != nil {
					return err
				}
				if err := scpName(path.Base(name)); err != nil {
					return err
				}
				if err := send("D%04o 0 %s\n", scpMode(mode), path.Base(name)); err != nil {
					return err
				}
				open = append(open, path.Base(name))
			case tar.TypeReg:
				if err := enter(path.Dir(name)); err != nil {
					return err
				}
				if err := scpFile(w, r, path.Base(name), mode, hdr.Size, tr); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			case tar.TypeSymlink:
				if err := linkTarget(name, hdr.Linkname); err != nil {
					return err
				}
				links = append(links, link{name, hdr.Linkname})
				linked[name] = true
			default:
				return fmt.Errorf("%w: %q: unsupported entry type %q", ErrUnsafe, hdr.Name, hdr.Typeflag)
			}
		}
		return enter(".")
	})
	if err != nil {
		return err
	}
	// The scp protocol has no links: make them with ln, a batch at a time.
	for len(links) > 0 {
		n := min(len(links), 100)
		var cmd strings.Builder
		cmd.WriteString("set -e")
		for _, l := range links[:n] {
			p := shellQuote(path.Join(dst, l.name))
			fmt.Fprintf(&cmd, "; rm -f -- %s; ln -s -- %s %s", p, shellQuote(l.target), p)
		}
		if err := c.run(ctx, "sh -c "+shellQuote(cmd.String())); err != nil {
			return fmt.Errorf("creating symbolic links: %w", err)
		}
		links = links[n:]
	}
	return nil
}

func (c *Comm) scpDownloadDir(ctx context.Context, src string, arch io.Writer, exclude []string) error {
	tw := tar.NewWriter(ctxio.Writer(ctx, arch))
	err := c.scpSession(ctx, "scp -r -p -f -- "+shellQuote(src), func(w io.Writer, r *bufio.Reader) error {
		ack := func() error { _, err := w.Write([]byte{0}); return err }
		if err := ack(); err != nil {
			return err
		}
		var dirs []string // entered directories below src
		depth := 0        // records D minus E seen, including src itself
		var mtime time.Time
		for {
			rec, err := readRecord(r)
			if err == io.EOF {
				if depth != 0 {
					return errors.New("scp: stream ended inside a directory")
				}
				return nil
			}
			if err != nil {
				return err
			}
			switch rec.kind {
			case 'T':
				var sec, usec, asec, ausec int64
				if _, err := fmt.Sscanf(rec.line, "%d %d %d %d", &sec, &usec, &asec, &ausec); err == nil {
					mtime = time.Unix(sec, usec*1000)
				}
				if err := ack(); err != nil {
					return err
				}
				continue
			case 'D':
				if depth == 0 {
					// The directory src itself.
					depth++
					if err := ack(); err != nil {
						return err
					}
					continue
				}
				depth++
				dirs = append(dirs, rec.name)
				name := path.Join(dirs...)
				if !archive.Excluded(name, exclude) {
					err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(scpMode(rec.mode)), ModTime: mtime, Format: tar.FormatPAX})
					if err != nil {
						return err
					}
				}
				if err := ack(); err != nil {
					return err
				}
			case 'E':
				if depth == 0 {
					return errors.New("scp: unbalanced end of directory")
				}
				depth--
				if len(dirs) > 0 {
					dirs = dirs[:len(dirs)-1]
				}
				if err := ack(); err != nil {
					return err
				}
				if depth == 0 {
					return nil
				}
			case 'C':
				if depth == 0 {
					return fmt.Errorf("scp: %s is not a directory", src)
				}
				name := path.Join(append(dirs[:len(dirs):len(dirs)], rec.name)...)
				if err := ack(); err != nil {
					return err
				}
				var dst io.Writer = io.Discard
				if !archive.Excluded(name, exclude) {
					err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(scpMode(rec.mode)), Size: rec.size, ModTime: mtime, Format: tar.FormatPAX})
					if err != nil {
						return err
					}
					dst = tw
				}
				if _, err := io.CopyN(dst, r, rec.size); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if err := scpAck(r); err != nil {
					return err
				}
				if err := ack(); err != nil {
					return err
				}
			}
			mtime = time.Time{}
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
