package sshcomm_test

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

func TestParseTunnel(t *testing.T) {
	tests := []struct {
		spec    string
		want    sshcomm.Tunnel
		wantErr bool
	}{
		{spec: "8080:db:5432", want: sshcomm.Tunnel{Listen: "localhost:8080", Target: "db:5432"}},
		{spec: "0.0.0.0:8080:db:5432", want: sshcomm.Tunnel{Listen: "0.0.0.0:8080", Target: "db:5432"}},
		{spec: "8080:db", wantErr: true},
		{spec: "http:db:5432", wantErr: true},
		{spec: "8080::5432", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := sshcomm.ParseTunnel(tt.spec, false)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" && !tt.wantErr {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// echoServer answers each connection with what it reads.
func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

// TestTunnels forwards a port each way to an echo server; the machine is
// this one, so both ends are reachable from the test.
func TestTunnels(t *testing.T) {
	srv := sshdtest.Start(t)
	echo := echoServer(t)
	for _, remote := range []bool{false, true} {
		t.Run("remote "+strconv.FormatBool(remote), func(t *testing.T) {
			listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(sshdtest.FreePort(t)))
			cfg := config(srv, sshcomm.SCP)
			cfg.Tunnels = []sshcomm.Tunnel{{Remote: remote, Listen: listen, Target: echo}}
			c := connect(t, cfg)
			conn, err := net.Dial("tcp", listen)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			conn.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(conn)
			conn.Close()
			if string(got) != "ping" || err != nil {
				t.Errorf("through the tunnel: %q, %v; want %q", got, err, "ping")
			}
			c.Close()
			if conn, err := net.Dial("tcp", listen); err == nil {
				conn.Close()
				if !remote {
					t.Errorf("the local tunnel still listens after Close")
				}
			}
		})
	}
}
