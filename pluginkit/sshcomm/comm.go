package sshcomm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/packer-stdio/packer/pluginkit"
)

// signalGrace is how long Start waits, after sending SIGTERM to a
// cancelled command, before closing its session.
const signalGrace = 2 * time.Second

// client is an SSH connection, with the bastion connection it goes
// through, if any.
type client struct {
	*ssh.Client
	bastion *ssh.Client
}

func (c *client) close() error {
	err := c.Client.Close()
	if c.bastion != nil {
		c.bastion.Close()
	}
	return err
}

// Comm is a [pluginkit.Communicator] on one SSH connection, made by
// [Connect]. Its methods may be called concurrently: each command and each
// SCP transfer has a session of its own; SFTP transfers share one client.
// Close it when done.
type Comm struct {
	client *client
	cfg    Config

	agentOnce sync.Once
	agentErr  error

	sftpMu sync.Mutex
	sftp   *sftp.Client

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
	// connDone is closed when the connection has ended, with connErr
	// (nil for a clean close) set before.
	connDone chan struct{}
	connErr  error
	// listeners are the tunnels' listeners, closed by Close.
	listeners []net.Listener
	// dead is set by the keep-alive loop when the server stopped
	// answering; read after done is closed or under deadMu.
	deadMu sync.Mutex
	dead   error
}

var _ pluginkit.Communicator = (*Comm)(nil)

func newComm(c *client, cfg *Config) *Comm {
	comm := &Comm{client: c, cfg: *cfg, done: make(chan struct{}), connDone: make(chan struct{})}
	comm.wg.Add(1)
	go func() {
		defer comm.wg.Done()
		if err := c.Wait(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			comm.connErr = err
		}
		close(comm.connDone)
	}()
	if cfg.KeepAliveInterval > 0 {
		comm.wg.Add(1)
		go comm.keepAlive(cfg.KeepAliveInterval)
	}
	return comm
}

// keepAliveMissed is how many keep-alives in a row may go unanswered
// before the connection is closed (OpenSSH's ServerAliveCountMax).
const keepAliveMissed = 3

// keepAlive sends a keepalive@openssh.com request every interval; when
// keepAliveMissed intervals pass without an answer, it closes the
// connection, which fails every operation in flight.
func (c *Comm) keepAlive(interval time.Duration) {
	defer c.wg.Done()
	answered := make(chan error, 1)
	answered <- nil
	missed := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		select {
		case err := <-answered:
			if err != nil {
				return // the connection is gone
			}
			missed = 0
			go func() {
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				answered <- err
			}()
		default:
			missed++
			if missed >= keepAliveMissed {
				c.deadMu.Lock()
				c.dead = fmt.Errorf("ssh: %s: the server did not answer %d keep-alives sent every %s", address(c.cfg.Host, c.cfg.Port), missed, interval)
				c.deadMu.Unlock()
				c.client.close()
				return
			}
		}
	}
}

// Close closes the connection (and the bastion's), stopping every command
// and transfer still in flight.
func (c *Comm) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		for _, l := range c.listeners {
			l.Close()
		}
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		err = c.client.close()
		c.wg.Wait()
	})
	return err
}

// wrap names the connection in err and, when the connection was lost
// (keep-alives unanswered, a read or write timeout), says why.
func (c *Comm) wrap(what string, err error) error {
	addr := address(c.cfg.Host, c.cfg.Port)
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || errors.Is(err, io.EOF) {
		// The session ended with the connection: give the reader of
		// the connection a moment to record why.
		select {
		case <-c.connDone:
		case <-time.After(time.Second):
		}
	}
	select {
	case <-c.connDone:
		c.deadMu.Lock()
		dead := c.dead
		c.deadMu.Unlock()
		if dead != nil {
			return fmt.Errorf("%s: %w", what, dead)
		}
		if c.connErr != nil {
			return fmt.Errorf("%s on %s: connection lost: %w", what, addr, c.connErr)
		}
	default:
	}
	return fmt.Errorf("%s on %s: %w", what, addr, err)
}

// forwardAgent forwards the local agent on sess, unless disabled or there
// is none.
func (c *Comm) forwardAgent(sess *ssh.Session) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if c.cfg.DisableAgentForwarding || sock == "" {
		return
	}
	c.agentOnce.Do(func() { c.agentErr = agent.ForwardToRemote(c.client.Client, sock) })
	if c.agentErr != nil {
		c.cfg.logf("ssh: agent forwarding: %v", c.agentErr)
		return
	}
	if err := agent.RequestAgentForwarding(sess); err != nil {
		c.cfg.logf("ssh: agent forwarding: %v", err)
	}
}

// Start runs cmd.Command on the remote machine (by the login shell, as
// ssh does) in a new session, streaming cmd.Stdin, Stdout and Stderr, and
// returns its exit status; a command killed by a signal is an error. Stdin
// is copied until it ends (then the command's input is closed) or the
// command exits, so a Stdin that never ends does not keep Start waiting.
// When ctx is done, Start sends the command SIGTERM, closes the session
// after a short grace (with a pseudo-terminal, the command then gets
// SIGHUP) and returns an error wrapping ctx.Err().
func (c *Comm) Start(ctx context.Context, cmd *pluginkit.RemoteCmd) (int, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return -1, c.wrap("opening a session", err)
	}
	defer sess.Close()
	c.forwardAgent(sess)
	if c.cfg.Pty {
		modes := ssh.TerminalModes{ssh.ECHO: 0, ssh.TTY_OP_ISPEED: 14400, ssh.TTY_OP_OSPEED: 14400}
		if err := sess.RequestPty("xterm", 40, 80, modes); err != nil {
			return -1, c.wrap("requesting a pty", err)
		}
	}
	sess.Stdout = orDiscard(cmd.Stdout)
	sess.Stderr = orDiscard(cmd.Stderr)
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		if stdin, err = sess.StdinPipe(); err != nil {
			return -1, c.wrap("opening stdin", err)
		}
	}
	if err := sess.Start(cmd.Command); err != nil {
		return -1, c.wrap(fmt.Sprintf("starting %q", cmd.Command), err)
	}
	if stdin != nil {
		go func() {
			io.Copy(stdin, cmd.Stdin)
			stdin.Close()
		}()
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGTERM)
		select {
		case <-waited:
		case <-time.After(signalGrace):
			sess.Close()
			// Closed, the session's output ends: wait (bounded, in case
			// a writer blocks) so that nothing is written to Stdout or
			// Stderr after Start returns.
			select {
			case <-waited:
			case <-time.After(signalGrace):
			}
		}
		return -1, fmt.Errorf("running %q: %w", cmd.Command, ctx.Err())
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit) && exit.Signal() == "":
		return exit.ExitStatus(), nil
	case errors.As(err, &exit):
		return -1, fmt.Errorf("running %q: killed by signal %s", cmd.Command, exit.Signal())
	default:
		return -1, c.wrap(fmt.Sprintf("running %q", cmd.Command), err)
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Upload writes src to the file dst (relative paths are relative to the
// user's home directory) with permission bits mode (0: 0644). Over SCP
// an upload of unknown size is first spooled to a temporary file. The
// parent directory must exist.
func (c *Comm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	if mode == 0 {
		mode = 0o644
	}
	var err error
	if c.cfg.FileTransfer == SFTP {
		err = c.sftpUpload(ctx, dst, src, mode)
	} else {
		err = c.scpUpload(ctx, dst, src, mode, size)
	}
	if err != nil {
		return c.wrap("uploading "+dst, err)
	}
	return nil
}

// Download writes the contents of the remote file src to dst.
func (c *Comm) Download(ctx context.Context, src string, dst io.Writer) error {
	var err error
	if c.cfg.FileTransfer == SFTP {
		err = c.sftpDownload(ctx, src, dst)
	} else {
		err = c.scpDownload(ctx, src, dst)
	}
	if err != nil {
		return c.wrap("downloading "+src, err)
	}
	return nil
}

// UploadDir extracts the tar stream archive under the remote directory
// dst, creating it if needed, with the entries' permission bits, skipping
// excluded entries. Entries that would land outside dst (absolute names,
// "..", symbolic links whose targets are absolute or lead outside) are
// refused with an error wrapping [ErrUnsafe]; so are hard links and
// special files. Over SFTP, a path through an existing symbolic link is
// refused too; over SCP (whose protocol has no links) symbolic links are
// created with "ln -s" once the files are sent.
func (c *Comm) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	var err error
	if c.cfg.FileTransfer == SFTP {
		err = c.sftpUploadDir(ctx, dst, archive, exclude)
	} else {
		err = c.scpUploadDir(ctx, dst, archive, exclude)
	}
	if err != nil {
		return c.wrap("uploading directory "+dst, err)
	}
	return nil
}

// DownloadDir writes a tar stream of the remote directory src's contents
// to archive, with permission bits, skipping excluded entries. Over SFTP
// symbolic links travel as links; over SCP, whose protocol has no links,
// they arrive as the files they point to (as with OpenSSH's scp -r).
func (c *Comm) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error {
	var err error
	if c.cfg.FileTransfer == SFTP {
		err = c.sftpDownloadDir(ctx, src, archive, exclude)
	} else {
		err = c.scpDownloadDir(ctx, src, archive, exclude)
	}
	if err != nil {
		return c.wrap("downloading directory "+src, err)
	}
	return nil
}
