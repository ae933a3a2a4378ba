package dockercomm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/pluginkit"
)

// runScript runs the command ($1) with /bin/sh after printing the shell's
// pid on a line of its own: exec keeps that pid, so it is the root of the
// command's process tree, which killScript kills on cancellation.
const runScript = `echo "$$" && exec /bin/sh -c "$1"`

// killScript stops the process $1 and every descendant (found through
// /proc/PID/stat, re-scanned until no new one appears, so that processes
// forked meanwhile are caught while their parents are stopped), then kills
// them all.
const killScript = `root=$1
kill -STOP "$root" 2>/dev/null || exit 0
all=" $root "
more=1
while [ -n "$more" ]; do
  more=
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$all" in *" $p "*) continue ;; esac
    read -r s < "$d/stat" 2>/dev/null || continue
    s=${s##*) }
    set -- $s
    case "$all" in *" $2 "*) kill -STOP "$p" 2>/dev/null; all="$all$p "; more=1 ;; esac
  done
done
kill -KILL $all 2>/dev/null
exit 0`

// killTimeout bounds the exec that kills a cancelled command's processes,
// and the wait for its pid.
const killTimeout = 10 * time.Second

// Start runs cmd.Command with /bin/sh -c in the container, as
// Options.User, through the exec API, streaming cmd.Stdin to it and its
// stdout and stderr to cmd.Stdout and cmd.Stderr, and waits for it. The
// container must have /bin/sh. The exit status of a command that ran is
// returned with a nil error, whatever it is. When ctx is done the command
// and every process it started are killed inside the container (an exec
// of /bin/sh reading /proc) and Start returns an error wrapping ctx.Err().
//
// Start returns when the command's output has ended; reading cmd.Stdin may
// go on in the background until it returns (it is not closed).
func (c *Comm) Start(ctx context.Context, cmd *pluginkit.RemoteCmd) (int, error) {
	exec, err := c.api.ExecCreate(ctx, c.container, client.ExecCreateOptions{
		User:         c.opts.User,
		AttachStdin:  cmd.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
		Cmd:          []string{"/bin/sh", "-c", runScript, "sh", cmd.Command},
	})
	if err != nil {
		return -1, c.runErr(cmd, fmt.Errorf("creating exec: %w", err))
	}
	att, err := c.api.ExecAttach(ctx, exec.ID, client.ExecAttachOptions{})
	if err != nil {
		return -1, c.runErr(cmd, fmt.Errorf("starting exec %s: %w", short(exec.ID), err))
	}
	defer att.Close()

	if cmd.Stdin != nil {
		go func() {
			io.Copy(att.Conn, cmd.Stdin)
			att.CloseWrite()
		}()
	}

	pid := &pidWriter{w: cmd.Stdout, got: make(chan struct{})}
	stderr := cmd.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(pid, stderr, att.Reader)
		done <- err
	}()

	select {
	case err := <-done:
		if err != nil && ctx.Err() == nil {
			return -1, c.runErr(cmd, fmt.Errorf("reading the output of exec %s: %w", short(exec.ID), err))
		}
	case <-ctx.Done():
		// Wait (a little) for the pid if the shell has not printed it.
		select {
		case <-pid.got:
		case <-done:
		case <-time.After(killTimeout):
		}
		att.Close()
		<-done
		if p, ok := pid.pid(); ok {
			if err := c.kill(p); err != nil {
				return -1, c.runErr(cmd, fmt.Errorf("%w; killing it: %w", ctx.Err(), err))
			}
		}
		return -1, c.runErr(cmd, ctx.Err())
	}
	if ctx.Err() != nil {
		return -1, c.runErr(cmd, ctx.Err())
	}
	return c.exitStatus(ctx, cmd, exec.ID)
}

// exitStatus waits for the exec to be reported as finished (its output can
// end a moment before) and returns its exit code.
func (c *Comm) exitStatus(ctx context.Context, cmd *pluginkit.RemoteCmd, id string) (int, error) {
	delay := time.Millisecond
	for {
		res, err := c.api.ExecInspect(ctx, id, client.ExecInspectOptions{})
		if err != nil {
			return -1, c.runErr(cmd, fmt.Errorf("inspecting exec %s: %w", short(id), err))
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, c.runErr(cmd, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// kill kills the process pid (a pid in the container) and its descendants.
// It runs on its own context: the command's is done.
func (c *Comm) kill(pid int) error {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	exec, err := c.api.ExecCreate(ctx, c.container, client.ExecCreateOptions{
		User:         "0",
		AttachStdout: true,
		AttachStderr: true,
		Cmd:          []string{"/bin/sh", "-c", killScript, "sh", strconv.Itoa(pid)},
	})
	if err != nil {
		return err
	}
	att, err := c.api.ExecAttach(ctx, exec.ID, client.ExecAttachOptions{})
	if err != nil {
		return err
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		return err
	}
	res, err := c.api.ExecInspect(ctx, exec.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("kill script exited %d: %s", res.ExitCode, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func (c *Comm) runErr(cmd *pluginkit.RemoteCmd, err error) error {
	return fmt.Errorf("running %q in container %s: %w", cmd.Command, short(c.container), err)
}

// pidWriter takes the first line written to it (the shell's pid) and
// passes the rest to w, which may be nil.
type pidWriter struct {
	w    io.Writer
	got  chan struct{} // closed when the line has been read
	mu   sync.Mutex
	line []byte
	done bool
	n    int
}

// maxPidLine bounds the line: a pid has at most a few digits.
const maxPidLine = 32

func (p *pidWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	total := len(b)
	if !p.done {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			if len(p.line) > maxPidLine {
				p.mu.Unlock()
				return 0, errors.New("exec: the first line of output is not a pid")
			}
			p.mu.Unlock()
			return total, nil
		}
		p.line = append(p.line, b[:i]...)
		p.done = true
		p.n, _ = strconv.Atoi(string(p.line))
		close(p.got)
		b = b[i+1:]
	}
	p.mu.Unlock()
	if p.w == nil || len(b) == 0 {
		return total, nil
	}
	if _, err := p.w.Write(b); err != nil {
		return 0, err
	}
	return total, nil
}

func (p *pidWriter) pid() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.done && p.n > 0
}
