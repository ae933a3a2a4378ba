package pluginkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// testHost is the host end of a connection to a Server, over in-memory
// pipes: a strict protocol.Conn whose handler records ui/* and answers
// hook/run and communicator/* with the functions set on it.
type testHost struct {
	conn *protocol.Conn

	mu     sync.Mutex
	events []string

	hook func(ctx context.Context, req *protocol.Request) error
	comm func(ctx context.Context, req *protocol.Request) (any, error)
}

func startHost(t *testing.T, srv *pluginkit.Server, h *testHost) *testHost {
	t.Helper()
	inR, inW := io.Pipe()   // host → plugin
	outR, outW := io.Pipe() // plugin → host
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), inR, outW, pipeCloser{inR, outW}, nil) }()
	h.conn = protocol.NewConn(outR, inW, pipeCloser{outR, inW}, protocol.HandlerFunc(h.handle), protocol.Options{Strict: true})
	t.Cleanup(func() {
		h.conn.Close()
		h.conn.Wait()
		if err := <-done; err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	})
	var res protocol.InitializeResult
	err := h.conn.Call(context.Background(), protocol.MethodInitialize, protocol.InitializeParams{
		ProtocolVersions: []int{1}, Host: protocol.Peer{Name: "test-host"},
		Limits:       protocol.Limits{MaxMessageSize: protocol.DefaultMaxMessageSize},
		Capabilities: protocol.HostCapabilities{Ask: true, Progress: true},
	}, &res)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return h
}

func (h *testHost) record(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

func (h *testHost) recorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func (h *testHost) handle(ctx context.Context, req *protocol.Request) (any, error) {
	switch req.Method {
	case protocol.MethodUISay, protocol.MethodUIMessage, protocol.MethodUIError:
		var p protocol.UIMessageParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		h.record(req.Method + " " + p.Message)
	case protocol.MethodUIMachine:
		var p protocol.UIMachineParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		h.record(fmt.Sprintf("%s %s %v", req.Method, p.Type, p.Data))
	case protocol.MethodUIProgress:
		var p protocol.UIProgressParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		h.record(fmt.Sprintf("%s %s %s %s %d/%d", req.Method, p.ID, p.State, p.Label, p.Current, p.Total))
	case protocol.MethodUIAsk:
		var p protocol.UIAskParams
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		h.record(req.Method + " " + p.Query)
		return protocol.UIAskResult{Answer: "alice"}, nil
	case protocol.MethodHookRun:
		if h.hook == nil {
			return nil, protocol.ErrUnsupported
		}
		return nil, h.hook(ctx, req)
	case protocol.MethodCommStart, protocol.MethodCommUpload, protocol.MethodCommDownload:
		if h.comm == nil {
			return nil, protocol.ErrUnsupported
		}
		return h.comm(ctx, req)
	default:
		return nil, protocol.ErrMethodNotFound
	}
	return nil, nil
}

func (h *testHost) prepare(t *testing.T, typ, mode string) string {
	t.Helper()
	var res protocol.PrepareResult
	cfg := map[string]any{"source": "a", "count": 1, "mode": mode}
	if err := h.conn.Call(context.Background(), protocol.MethodPrepare, protocol.PrepareParams{
		Type: typ, Name: "test", Configs: []json.RawMessage{mustJSON(cfg)},
	}, &res); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return res.Instance
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestUICallbacks: every UI method reaches the host, in order; a tracked
// reader sends an update every 64 KiB, but never two within 250 ms.
func TestUICallbacks(t *testing.T) {
	head := []string{
		"ui/say say", "ui/message message", "ui/error error", "ui/machine artifact-count [1]",
		"ui/ask name?", "ui/say answer alice",
		"ui/progress p1 start copy 0/204800",
	}
	tests := []struct {
		name string
		tick time.Duration // how far the clock moves at each reading
		want []string
	}{
		{name: "slow copy", tick: time.Second, want: append(head[:len(head):len(head)],
			"ui/progress p1 update copy 65536/204800",
			"ui/progress p1 update copy 131072/204800",
			"ui/progress p1 update copy 196608/204800",
			"ui/progress p1 done copy 204800/204800",
		)},
		{name: "fast copy", tick: time.Millisecond, want: append(head[:len(head):len(head)],
			"ui/progress p1 done copy 204800/204800",
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(0, 0)
			defer pluginkit.SetProgressClock(func() time.Time { now = now.Add(tt.tick); return now })()
			h := startHost(t, newTestServer(newObserved()), &testHost{})
			inst := h.prepare(t, protocol.TypeBuilder, "ui")
			if err := h.conn.Call(context.Background(), protocol.MethodBuilderRun, protocol.InstanceParams{Instance: inst}, nil); err != nil {
				t.Fatalf("run: %v", err)
			}
			if diff := cmp.Diff(tt.want, h.recorded()); diff != "" {
				t.Errorf("ui events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHookOffersCommunicator: during hook/run the host drives the builder's
// communicator through the handle it was given, bytes in several chunks both
// ways; the handle dies when hook/run is answered.
func TestHookOffersCommunicator(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 70000) // 700 kB: three chunks
	var (
		handle               string
		stdout, stderr, back bytes.Buffer
		status               protocol.CommStartResult
		hookData             map[string]any
	)
	h := &testHost{}
	h.hook = func(ctx context.Context, req *protocol.Request) error {
		var p protocol.HookRunParams
		if err := req.DecodeParams(&p); err != nil {
			return err
		}
		handle, hookData = p.Communicator, p.Data
		c := req.Conn
		in, rel1 := c.OfferReader(strings.NewReader("hello"), nil)
		defer rel1()
		out, rel2 := c.OfferWriter(&stdout, nil)
		defer rel2()
		errw, rel3 := c.OfferWriter(&stderr, nil)
		defer rel3()
		if err := c.Call(ctx, protocol.MethodCommStart, protocol.CommStartParams{
			Communicator: p.Communicator, Command: "echo", Stdin: in, Stdout: out, Stderr: errw,
		}, &status); err != nil {
			return err
		}
		src, rel4 := c.OfferReader(bytes.NewReader(payload), nil)
		defer rel4()
		if err := c.Call(ctx, protocol.MethodCommUpload, protocol.CommUploadParams{
			Communicator: p.Communicator, Path: "/f", Source: src, Mode: 0o640, Size: int64(len(payload)),
		}, nil); err != nil {
			return err
		}
		sink, rel5 := c.OfferWriter(&back, nil)
		defer rel5()
		return c.Call(ctx, protocol.MethodCommDownload, protocol.CommDownloadParams{Communicator: p.Communicator, Path: "/f", Sink: sink}, nil)
	}
	h = startHost(t, newTestServer(newObserved()), h)
	inst := h.prepare(t, protocol.TypeBuilder, "hook")
	var res protocol.BuilderRunResult
	if err := h.conn.Call(context.Background(), protocol.MethodBuilderRun, protocol.InstanceParams{Instance: inst}, &res); err != nil {
		t.Fatalf("run: %v", err)
	}
	if handle != "c1" || status.ExitStatus != 3 || stdout.String() != "echo:hello" || stderr.String() != "e" {
		t.Errorf("got handle %q, status %d, stdout %q, stderr %q; want c1, 3, \"echo:hello\", \"e\"", handle, status.ExitStatus, stdout.String(), stderr.String())
	}
	if !bytes.Equal(payload, back.Bytes()) {
		t.Errorf("download returned %d bytes, want the %d uploaded", back.Len(), len(payload))
	}
	if diff := cmp.Diff(map[string]any{"ID": "a"}, hookData); diff != "" {
		t.Errorf("hook data (-want +got):\n%s", diff)
	}
	err := h.conn.Call(context.Background(), protocol.MethodCommStart, protocol.CommStartParams{Communicator: "c1", Command: "x"}, nil)
	if !errors.Is(err, protocol.ErrUnknownHandle) {
		t.Errorf("communicator after hook/run: got %v, want ErrUnknownHandle", err)
	}
}

// TestProvisionUsesHostCommunicator: a provisioner's Communicator calls the
// host with the handle it was given and offers stream handles for the bytes.
func TestProvisionUsesHostCommunicator(t *testing.T) {
	var mu sync.Mutex
	files := map[string][]byte{}
	h := &testHost{}
	h.comm = func(ctx context.Context, req *protocol.Request) (any, error) {
		c := req.Conn
		switch req.Method {
		case protocol.MethodCommStart:
			var p protocol.CommStartParams
			if err := req.DecodeParams(&p); err != nil {
				return nil, err
			}
			if p.Communicator != "c9" {
				return nil, protocol.ErrUnknownHandle
			}
			in, err := io.ReadAll(c.RemoteReader(ctx, p.Stdin))
			if err != nil {
				return nil, err
			}
			w := c.RemoteWriter(ctx, p.Stdout)
			fmt.Fprintf(w, "%s got %s", p.Command, in)
			if err := w.Close(); err != nil {
				return nil, err
			}
			return protocol.CommStartResult{ExitStatus: 0}, c.RemoteWriter(ctx, p.Stderr).Close()
		case protocol.MethodCommUpload:
			var p protocol.CommUploadParams
			if err := req.DecodeParams(&p); err != nil {
				return nil, err
			}
			b, err := io.ReadAll(c.RemoteReader(ctx, p.Source))
			mu.Lock()
			files[p.Path] = b
			mu.Unlock()
			if p.Mode != 0o600 || p.Size != int64(len(b)) {
				return nil, fmt.Errorf("mode %o size %d for %d bytes", p.Mode, p.Size, len(b))
			}
			return nil, err
		default:
			var p protocol.CommDownloadParams
			if err := req.DecodeParams(&p); err != nil {
				return nil, err
			}
			w := c.RemoteWriter(ctx, p.Sink)
			mu.Lock()
			b := files[p.Path]
			mu.Unlock()
			if _, err := w.Write(b); err != nil {
				return nil, err
			}
			return nil, w.Close()
		}
	}
	obs := newObserved()
	h = startHost(t, newTestServer(obs), h)
	inst := h.prepare(t, protocol.TypeProvisioner, "")
	err := h.conn.Call(context.Background(), protocol.MethodProvision,
		protocol.ProvisionParams{Instance: inst, Communicator: "c9", Data: map[string]any{"ID": "m1"}}, nil)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	want := []string{`ui/message status=0 stdout="cat got to stdin" stderr="" id=m1`, "ui/message round trip true"}
	if diff := cmp.Diff(want, h.recorded()); diff != "" {
		t.Errorf("ui events (-want +got):\n%s", diff)
	}

	// Without a communicator, the provisioner's calls fail with
	// ErrUnsupported, and its answer keeps that code (SPEC §7.3).
	err = h.conn.Call(context.Background(), protocol.MethodProvision, protocol.ProvisionParams{Instance: inst, Data: map[string]any{}}, nil)
	if !errors.Is(err, protocol.ErrUnsupported) {
		t.Errorf("provision without communicator: got %v, want ErrUnsupported", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !errors.Is(obs.provErr, protocol.ErrUnsupported) {
		t.Errorf("provisioner saw %v, want ErrUnsupported", obs.provErr)
	}
}
