package pluginkit_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// TestEOFEndsServeConn: closing stdin cancels the running builder and
// ServeConn returns nil once it has returned.
func TestEOFEndsServeConn(t *testing.T) {
	obs := newObserved()
	w := startWire(t, newTestServer(obs))
	w.send(initLine)
	w.recv()
	w.send(req("1", "component/prepare", prepMode("wait")))
	w.recv()
	w.send(req("2", "builder/run", `{"instance":"i1"}`))
	w.recv() // ui/say waiting
	w.in.Close()
	go io.Copy(io.Discard, w.outR)
	if err := <-w.done; err != nil {
		t.Errorf("ServeConn: got %v, want nil after EOF", err)
	}
	w.done <- nil // for the cleanup
	select {
	case <-obs.cancelled:
	default:
		t.Error("the running builder was not cancelled")
	}
}

// TestShutdownCancelsRunningWork: shutdown cancels the running builder,
// whose request is answered cancelled, answers null, refuses what follows,
// and ServeConn returns nil when the host closes its end.
func TestShutdownCancelsRunningWork(t *testing.T) {
	obs := newObserved()
	w := startWire(t, newTestServer(obs))
	w.send(initLine)
	w.recv()
	w.send(req("1", "component/prepare", prepMode("wait")))
	w.recv()
	w.send(req("2", "builder/run", `{"instance":"i1"}`))
	w.recv() // ui/say waiting
	w.send(req("3", "shutdown", "{}"))
	got := map[string]any{}
	for range 2 {
		a := normalize(t, w.recv()).(map[string]any)
		got[a["id"].(interface{ String() string }).String()] = a
	}
	want := map[string]any{
		"2": mustDecode(t, errAns("2", protocol.CodeCancelled, "")),
		"3": mustDecode(t, resAns("3", "null")),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	w.send(req("4", "builder/run", `{"instance":"i1"}`))
	if diff := cmp.Diff(mustDecode(t, errAns("4", protocol.CodeShuttingDown, "")), normalize(t, w.recv())); diff != "" {
		t.Errorf("after shutdown (-want +got):\n%s", diff)
	}
	w.in.Close()
	if err := <-w.done; err != nil {
		t.Errorf("ServeConn: got %v, want nil after shutdown", err)
	}
	w.done <- nil
}

// TestServeConnContext: cancelling ServeConn's context ends it with the
// context's error.
func TestServeConnContext(t *testing.T) {
	srv := newTestServer(newObserved())
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer inW.Close()
	defer outR.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := srv.ServeConn(ctx, inR, outW, pipeCloser{inR, outW}, nil)
	if err != context.Canceled {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestPanicGoesToLog: the panic value and a stack reach the logger.
func TestPanicGoesToLog(t *testing.T) {
	w := startWire(t, newTestServer(newObserved()))
	w.send(initLine)
	w.recv()
	w.send(req("1", "component/prepare", prepMode("panic")))
	w.recv()
	w.send(req("2", "builder/run", `{"instance":"i1"}`))
	w.recv()
	logged := w.log.String()
	if !strings.Contains(logged, "panic: boom\n\ngoroutine ") || !strings.Contains(logged, "testBuilder") {
		t.Errorf("log lacks the panic and its stack:\n%s", logged)
	}
}

func TestRegisterRejects(t *testing.T) {
	tests := []struct {
		name string
		reg  func(s *pluginkit.Server)
	}{
		{"bad name", func(s *pluginkit.Server) { s.RegisterBuilder("Bad Name", &testBuilder{}) }},
		{"twice", func(s *pluginkit.Server) {
			s.RegisterBuilder("x", &testBuilder{})
			s.RegisterBuilder("x", &testBuilder{})
		}},
		{"config not a struct pointer", func(s *pluginkit.Server) { s.RegisterBuilder("x", &badConfig{}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.reg(pluginkit.NewServer(protocol.Peer{}))
		})
	}
}

type badConfig struct{ testBuilder }

func (*badConfig) Config() any { return map[string]any{} }
