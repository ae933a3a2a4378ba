package sshcomm

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Tunnel is a TCP port forwarded over the connection, as ssh -L and -R
// forward them.
type Tunnel struct {
	// Remote is false for a local tunnel (listen here, connect from the
	// machine: ssh -L) and true for a remote one (listen on the machine,
	// connect from here: ssh -R).
	Remote bool
	// Listen is the address listened on, "host:port".
	Listen string
	// Target is the address connected to for each connection, "host:port".
	Target string
}

// ParseTunnel parses a tunnel as ssh_local_tunnels and ssh_remote_tunnels
// write it, like ssh's -L and -R: "[bind_address:]port:host:hostport". The
// bind address defaults to localhost.
func ParseTunnel(spec string, remote bool) (Tunnel, error) {
	parts := strings.Split(spec, ":")
	bind := "localhost"
	switch len(parts) {
	case 3:
	case 4:
		bind, parts = parts[0], parts[1:]
	default:
		return Tunnel{}, fmt.Errorf("tunnel %q: want [bind_address:]port:host:hostport", spec)
	}
	for _, p := range []string{parts[0], parts[2]} {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Tunnel{}, fmt.Errorf("tunnel %q: %q is not a port", spec, p)
		}
	}
	if parts[1] == "" {
		return Tunnel{}, fmt.Errorf("tunnel %q: no host", spec)
	}
	return Tunnel{Remote: remote, Listen: net.JoinHostPort(bind, parts[0]), Target: net.JoinHostPort(parts[1], parts[2])}, nil
}

// openTunnels starts the tunnels; they stop when the Comm is closed.
func (c *Comm) openTunnels(tunnels []Tunnel) error {
	for _, t := range tunnels {
		var l net.Listener
		var err error
		var dial func() (net.Conn, error)
		if t.Remote {
			l, err = c.client.Listen("tcp", t.Listen)
			dial = func() (net.Conn, error) { return net.Dial("tcp", t.Target) }
		} else {
			l, err = net.Listen("tcp", t.Listen)
			dial = func() (net.Conn, error) { return c.client.Dial("tcp", t.Target) }
		}
		if err != nil {
			return fmt.Errorf("tunnel %s to %s: %w", t.Listen, t.Target, err)
		}
		c.listeners = append(c.listeners, l)
		c.wg.Add(1)
		go c.serveTunnel(l, dial)
	}
	return nil
}

// serveTunnel forwards each connection l accepts to a connection dial
// opens, until l is closed.
func (c *Comm) serveTunnel(l net.Listener, dial func() (net.Conn, error)) {
	defer c.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer in.Close()
			out, err := dial()
			if err != nil {
				c.cfg.logf("ssh: tunnel %s: %v", l.Addr(), err)
				return
			}
			defer out.Close()
			stop := make(chan struct{})
			go func() {
				select {
				case <-c.done:
					in.Close()
					out.Close()
				case <-stop:
				}
			}()
			defer close(stop)
			done := make(chan struct{})
			go func() {
				io.Copy(out, in)
				closeWrite(out)
				close(done)
			}()
			io.Copy(in, out)
			closeWrite(in)
			<-done
		}()
	}
}

// closeWrite half-closes conn when it can, so the far side sees the end
// of what this side sent.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
