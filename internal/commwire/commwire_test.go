package commwire_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/internal/commwire"
	"github.com/packer-stdio/packer/protocol"
)

// payload is text of several stream chunks, in lines so that a diff stays
// readable.
func payload(tag string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s line %07d\n", tag, i)
	}
	return b.String()
}

var big = payload("big", 2*protocol.MaxChunkSize+1234)

type memFile struct {
	Data string
	Mode fs.FileMode
	Size int64
}

type memDir struct {
	Archive string
	Exclude []string
}

// memComm is a Communicator on an in-memory machine. Start echoes stdin to
// stdout, writes "stderr of CMD" to stderr and exits 3. A non-nil err makes
// every method fail after it has moved "partial" bytes; started, if not nil,
// is closed when Start begins, which then waits for ctx.
type memComm struct {
	mu      sync.Mutex
	cmds    []string
	files   map[string]memFile
	dirs    map[string]memDir
	err     error
	readMax int // Upload reads at most this many bytes when > 0
	started chan struct{}
}

func newMemComm() *memComm {
	return &memComm{files: map[string]memFile{}, dirs: map[string]memDir{}}
}

func (c *memComm) Start(ctx context.Context, cmd *commwire.RemoteCmd) (int, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd.Command)
	c.mu.Unlock()
	if c.started != nil {
		close(c.started)
		<-ctx.Done()
		return -1, ctx.Err()
	}
	if c.err != nil {
		if cmd.Stdout != nil {
			io.WriteString(cmd.Stdout, "partial")
		}
		return -1, c.err
	}
	if cmd.Stdin != nil && cmd.Stdout != nil {
		if _, err := io.Copy(cmd.Stdout, cmd.Stdin); err != nil {
			return -1, err
		}
	}
	if cmd.Stderr != nil {
		if _, err := io.WriteString(cmd.Stderr, "stderr of "+cmd.Command); err != nil {
			return -1, err
		}
	}
	return 3, nil
}

func (c *memComm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	if c.readMax > 0 {
		src = io.LimitReader(src, int64(c.readMax))
	}
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	if c.err != nil {
		return c.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[dst] = memFile{Data: string(b), Mode: mode, Size: size}
	return nil
}

func (c *memComm) Download(ctx context.Context, src string, dst io.Writer) error {
	if c.err != nil {
		io.WriteString(dst, "partial")
		return c.err
	}
	c.mu.Lock()
	f, ok := c.files[src]
	c.mu.Unlock()
	if !ok {
		return protocol.ErrComponentFailed.WithMessage("%s: no such file", src)
	}
	_, err := io.WriteString(dst, f.Data)
	return err
}

func (c *memComm) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	b, err := io.ReadAll(archive)
	if err != nil {
		return err
	}
	if c.err != nil {
		return c.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirs[dst] = memDir{Archive: string(b), Exclude: exclude}
	return nil
}

func (c *memComm) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error {
	if c.err != nil {
		io.WriteString(archive, "partial")
		return c.err
	}
	c.mu.Lock()
	d, ok := c.dirs[src]
	c.dirs[src] = memDir{Archive: d.Archive, Exclude: exclude}
	c.mu.Unlock()
	if !ok {
		return protocol.ErrComponentFailed.WithMessage("%s: no such directory", src)
	}
	_, err := io.WriteString(archive, d.Archive)
	return err
}

type pipeCloser struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipeCloser) Close() error {
	p.r.Close()
	return p.w.Close()
}

// served is one request the server side saw and what Serve returned.
type served struct {
	method string
	params map[string]any
	err    error
}

// fixture connects a client Conn to a server Conn whose handler answers
// with commwire.Serve, holding comm under handle "c1".
type fixture struct {
	client, server *protocol.Conn
	comm           *memComm

	mu   sync.Mutex
	seen []served
}

func newFixture(t *testing.T, comm *memComm) *fixture {
	t.Helper()
	f := &fixture{comm: comm}
	lookup := func(h string) (commwire.Communicator, error) {
		if h == "c1" {
			return comm, nil
		}
		return nil, protocol.ErrUnknownHandle.WithMessage("no communicator %q", h)
	}
	handler := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		res, err := commwire.Serve(ctx, req, lookup)
		var params map[string]any
		json.Unmarshal(req.Params, &params)
		f.mu.Lock()
		f.seen = append(f.seen, served{req.Method, params, err})
		f.mu.Unlock()
		return res, err
	})
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	f.client = protocol.NewConn(cr, cw, pipeCloser{cr, cw}, nil, protocol.Options{Strict: true, CancelGrace: 10 * time.Second})
	f.server = protocol.NewConn(sr, sw, pipeCloser{sr, sw}, handler, protocol.Options{})
	t.Cleanup(func() {
		f.client.Close()
		f.server.Close()
		f.client.Wait()
		f.server.Wait()
	})
	return f
}

// last returns the last communicator/* request the server saw.
func (f *fixture) last(t *testing.T) served {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		t.Fatal("the server saw no request")
	}
	return f.seen[len(f.seen)-1]
}

// streamHandles returns the stream handles a communicator/* request named.
func streamHandles(params map[string]any) []string {
	var hs []string
	for _, k := range []string{"stdin", "stdout", "stderr", "source", "sink"} {
		if h, _ := params[k].(string); h != "" {
			hs = append(hs, h)
		}
	}
	return hs
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		// setup fills the machine before the call.
		setup func(c *memComm)
		// call runs the method through the Remote and returns what the
		// caller observed.
		call func(ctx context.Context, c commwire.Communicator) (any, error)
		want any
		// wantMachine is the machine's state after the call.
		wantMachine func(c *memComm) any
		wantState   any
		// wantParams are the params on the wire, stream handles excepted.
		wantParams map[string]any
		// streams is how many stream handles the request offered.
		streams int
	}{
		{
			name: "start with all streams",
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				var out, errOut bytes.Buffer
				status, err := c.Start(ctx, &commwire.RemoteCmd{Command: "cat", Stdin: strings.NewReader(big), Stdout: &out, Stderr: &errOut})
				return []any{status, out.String(), errOut.String()}, err
			},
			want:        []any{3, big, "stderr of cat"},
			wantMachine: func(c *memComm) any { return c.cmds },
			wantState:   []string{"cat"},
			wantParams:  map[string]any{"communicator": "c1", "command": "cat"},
			streams:     3,
		},
		{
			name: "start without streams",
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				return c.Start(ctx, &commwire.RemoteCmd{Command: "true"})
			},
			want:        3,
			wantMachine: func(c *memComm) any { return c.cmds },
			wantState:   []string{"true"},
			wantParams:  map[string]any{"communicator": "c1", "command": "true"},
		},
		{
			name: "upload",
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				return nil, c.Upload(ctx, "/etc/motd", strings.NewReader(big), 0o640, int64(len(big)))
			},
			wantMachine: func(c *memComm) any { return c.files },
			wantState:   map[string]memFile{"/etc/motd": {Data: big, Mode: 0o640, Size: int64(len(big))}},
			wantParams:  map[string]any{"communicator": "c1", "path": "/etc/motd", "mode": float64(0o640), "size": float64(len(big))},
			streams:     1,
		},
		{
			name: "upload keeps setuid and sticky, drops the file type",
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				return nil, c.Upload(ctx, "/bin/x", strings.NewReader("x"), fs.ModeSetuid|fs.ModeSticky|fs.ModeDir|0o755, -1)
			},
			wantMachine: func(c *memComm) any { return c.files },
			wantState:   map[string]memFile{"/bin/x": {Data: "x", Mode: fs.ModeSetuid | fs.ModeSticky | 0o755, Size: -1}},
			wantParams:  map[string]any{"communicator": "c1", "path": "/bin/x", "mode": float64(0o5755), "size": float64(-1)},
			streams:     1,
		},
		{
			name: "upload of an empty file with the default mode",
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				return nil, c.Upload(ctx, "/e", strings.NewReader(""), 0, 0)
			},
			wantParams: map[string]any{"communicator": "c1", "path": "/e", "size": float64(0)},
			wantMachine: func(c *memComm) any {
				return c.files
			},
			wantState: map[string]memFile{"/e": {}},
			streams:   1,
		},
		{
			name:  "download",
			setup: func(c *memComm) { c.files["/var/log/app"] = memFile{Data: big} },
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				var out bytes.Buffer
				err := c.Download(ctx, "/var/log/app", &out)
				return out.String(), err
			},
			want:       big,
			wantParams: map[string]any{"communicator": "c1", "path": "/var/log/app"},
			streams:    1,
		},
		{
			name: "uploadDir",
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				return nil, c.UploadDir(ctx, "/srv", strings.NewReader(big), []string{"*.log", ".git"})
			},
			wantMachine: func(c *memComm) any { return c.dirs },
			wantState:   map[string]memDir{"/srv": {Archive: big, Exclude: []string{"*.log", ".git"}}},
			wantParams:  map[string]any{"communicator": "c1", "path": "/srv", "exclude": []any{"*.log", ".git"}},
			streams:     1,
		},
		{
			name:  "downloadDir",
			setup: func(c *memComm) { c.dirs["/srv"] = memDir{Archive: big} },
			call: func(ctx context.Context, c commwire.Communicator) (any, error) {
				var out bytes.Buffer
				err := c.DownloadDir(ctx, "/srv", &out, []string{"cache"})
				return out.String(), err
			},
			want:        big,
			wantMachine: func(c *memComm) any { return c.dirs["/srv"].Exclude },
			wantState:   []string{"cache"},
			wantParams:  map[string]any{"communicator": "c1", "path": "/srv", "exclude": []any{"cache"}},
			streams:     1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm := newMemComm()
			if tt.setup != nil {
				tt.setup(comm)
			}
			f := newFixture(t, comm)
			got, err := tt.call(t.Context(), commwire.NewRemote(f.client, "c1", nil))
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if tt.wantMachine != nil {
				if diff := cmp.Diff(tt.wantState, tt.wantMachine(comm)); diff != "" {
					t.Errorf("machine (-want +got):\n%s", diff)
				}
			}
			req := f.last(t)
			handles := streamHandles(req.params)
			if len(handles) != tt.streams {
				t.Errorf("request offered streams %v, want %d", handles, tt.streams)
			}
			params := map[string]any{}
			for k, v := range req.params {
				switch k {
				case "stdin", "stdout", "stderr", "source", "sink":
				default:
					params[k] = v
				}
			}
			if diff := cmp.Diff(tt.wantParams, params); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			// The Remote releases its stream handles once answered.
			for _, h := range handles {
				err := f.server.Call(t.Context(), protocol.MethodStreamClose, protocol.StreamCloseParams{Stream: h}, nil)
				if !errors.Is(err, protocol.ErrUnknownHandle) {
					t.Errorf("stream/close %s after the answer: got %v, want ErrUnknownHandle", h, err)
				}
			}
		})
	}
}

// calls runs each Communicator method once, with small streams.
var calls = []struct {
	method string
	call   func(ctx context.Context, c commwire.Communicator) error
}{
	{protocol.MethodCommStart, func(ctx context.Context, c commwire.Communicator) error {
		status, err := c.Start(ctx, &commwire.RemoteCmd{Command: "x", Stdin: strings.NewReader("in"), Stdout: io.Discard})
		if err != nil && status != -1 {
			return fmt.Errorf("status %d with error %w, want -1", status, err)
		}
		return err
	}},
	{protocol.MethodCommUpload, func(ctx context.Context, c commwire.Communicator) error {
		return c.Upload(ctx, "/f", strings.NewReader("data"), 0o644, 4)
	}},
	{protocol.MethodCommDownload, func(ctx context.Context, c commwire.Communicator) error {
		return c.Download(ctx, "/f", io.Discard)
	}},
	{protocol.MethodCommUploadDir, func(ctx context.Context, c commwire.Communicator) error {
		return c.UploadDir(ctx, "/d", strings.NewReader("tar"), nil)
	}},
	{protocol.MethodCommDownloadDir, func(ctx context.Context, c commwire.Communicator) error {
		return c.DownloadDir(ctx, "/d", io.Discard, nil)
	}},
}

func TestErrors(t *testing.T) {
	plain := errors.New("disk full")
	refused := errors.New("refused by the caller's policy")
	tests := []struct {
		name   string
		handle string
		err    error // the machine's failure
		send   commwire.SendFunc
		// wantClient is what the caller gets; wantServed what Serve
		// returned (nil: not checked); wantRequests whether any request
		// reached the server.
		wantClient   error
		wantServed   error
		wantRequests bool
		reason       string
	}{
		{name: "unknown handle", handle: "c9", wantClient: protocol.ErrUnknownHandle, wantServed: protocol.ErrUnknownHandle, wantRequests: true},
		{name: "protocol error keeps its code", handle: "c1", err: protocol.ErrUnsupported.WithMessage("no scp here"),
			wantClient: protocol.ErrUnsupported, wantServed: protocol.ErrUnsupported, wantRequests: true},
		{name: "plain error is returned unchanged", handle: "c1", err: plain,
			wantClient: protocol.ErrInternal, wantServed: plain, wantRequests: true,
			reason: "Serve leaves mapping to its caller; this test's handler does none, so the conn answers -32603"},
		{name: "send refuses", handle: "c1", send: func(context.Context, string, any, any) error { return refused },
			wantClient: refused, wantRequests: false},
	}
	for _, tt := range tests {
		for _, c := range calls {
			t.Run(tt.name+"/"+c.method, func(t *testing.T) {
				comm := newMemComm()
				comm.files["/f"] = memFile{Data: "data"}
				comm.dirs["/d"] = memDir{Archive: "tar"}
				comm.err = tt.err
				f := newFixture(t, comm)
				err := c.call(t.Context(), commwire.NewRemote(f.client, tt.handle, tt.send))
				if !errors.Is(err, tt.wantClient) {
					t.Errorf("caller got %v, want %v (%s)", err, tt.wantClient, tt.reason)
				}
				f.mu.Lock()
				seen := f.seen
				f.mu.Unlock()
				if got := len(seen) > 0; got != tt.wantRequests {
					t.Fatalf("server saw requests: %v, want %v", got, tt.wantRequests)
				}
				if tt.wantServed != nil && !errors.Is(seen[0].err, tt.wantServed) {
					t.Errorf("Serve returned %v, want %v (%s)", seen[0].err, tt.wantServed, tt.reason)
				}
			})
		}
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		method string
		params any
		want   error
	}{
		{"params of the wrong type", protocol.MethodCommUpload, map[string]any{"communicator": 5}, protocol.ErrInvalidParams},
		{"params not an object", protocol.MethodCommStart, []int{1}, protocol.ErrInvalidParams},
		{"not a communicator method", "communicator/format", map[string]any{"communicator": "c1"}, protocol.ErrMethodNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newMemComm())
			err := f.client.Call(t.Context(), tt.method, tt.params, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// closeCounter counts stream/close of a stream the requester offered.
type closeCounter struct {
	mu sync.Mutex
	n  int
}

func (c *closeCounter) onClose() error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return nil
}

func (c *closeCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Sinks are closed (the data is complete) after a success only; a source
// the communicator stops reading early is closed so the requester can stop.
func TestStreamEnds(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		readMax int
		method  string
		// source offers a reader, else a writer.
		source     bool
		wantData   string
		wantCloses int
		reason     string
	}{
		{name: "download succeeds", method: protocol.MethodCommDownload, wantData: big, wantCloses: 1},
		{name: "download fails", method: protocol.MethodCommDownload, err: protocol.ErrComponentFailed, wantData: "partial", wantCloses: 0,
			reason: "a sink that was never closed has incomplete data"},
		{name: "downloadDir succeeds", method: protocol.MethodCommDownloadDir, wantData: big, wantCloses: 1},
		{name: "downloadDir fails", method: protocol.MethodCommDownloadDir, err: protocol.ErrComponentFailed, wantData: "partial", wantCloses: 0},
		{name: "upload read to the end", method: protocol.MethodCommUpload, source: true, wantCloses: 0,
			reason: "a source read to EOF needs no stream/close"},
		{name: "upload read in part", method: protocol.MethodCommUpload, source: true, readMax: 10, wantCloses: 1,
			reason: "the requester must learn that the rest is not wanted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm := newMemComm()
			comm.files["/f"] = memFile{Data: big}
			comm.dirs["/d"] = memDir{Archive: big}
			comm.err = tt.err
			comm.readMax = tt.readMax
			f := newFixture(t, comm)
			var closes closeCounter
			var sink bytes.Buffer
			var params any
			if tt.source {
				h, release := f.client.OfferReader(strings.NewReader(big), closes.onClose)
				defer release()
				params = protocol.CommUploadParams{Communicator: "c1", Path: "/f", Source: h, Size: -1}
			} else {
				h, release := f.client.OfferWriter(&sink, closes.onClose)
				defer release()
				if tt.method == protocol.MethodCommDownload {
					params = protocol.CommDownloadParams{Communicator: "c1", Path: "/f", Sink: h}
				} else {
					params = protocol.CommDownloadDirParams{Communicator: "c1", Path: "/d", Sink: h}
				}
			}
			err := f.client.Call(t.Context(), tt.method, params, nil)
			if tt.err == nil && err != nil {
				t.Fatalf("call: %v", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("call: got %v, want %v", err, tt.err)
			}
			if got := closes.count(); got != tt.wantCloses {
				t.Errorf("stream closed %d times, want %d (%s)", got, tt.wantCloses, tt.reason)
			}
			if diff := cmp.Diff(tt.wantData, sink.String()); !tt.source && diff != "" {
				t.Errorf("sink (-want +got):\n%s", diff)
			}
		})
	}
}

// Cancelling the caller's ctx cancels the request and with it the ctx the
// Communicator runs under.
func TestCancel(t *testing.T) {
	comm := newMemComm()
	comm.started = make(chan struct{})
	f := newFixture(t, comm)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-comm.started
		cancel()
	}()
	status, err := commwire.NewRemote(f.client, "c1", nil).Start(ctx, &commwire.RemoteCmd{Command: "sleep 1000"})
	if !errors.Is(err, protocol.ErrCancelled) || status != -1 {
		t.Errorf("got status %d, error %v; want -1, ErrCancelled", status, err)
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		wire uint32
		mode fs.FileMode
	}{
		{0, 0},
		{0o644, 0o644},
		{0o4755, fs.ModeSetuid | 0o755},
		{0o2750, fs.ModeSetgid | 0o750},
		{0o1777, fs.ModeSticky | 0o777},
		{0o7000, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#o", tt.wire), func(t *testing.T) {
			if got := commwire.FileMode(tt.wire); got != tt.mode {
				t.Errorf("FileMode(%#o) = %v, want %v", tt.wire, got, tt.mode)
			}
			if got := commwire.WireMode(tt.mode); got != tt.wire {
				t.Errorf("WireMode(%v) = %#o, want %#o", tt.mode, got, tt.wire)
			}
		})
	}
	// Bits that are not permissions are dropped both ways.
	if got := commwire.FileMode(0o100644); got != 0o644 {
		t.Errorf("FileMode(0o100644) = %v, want 0o644 (the file type bits dropped)", got)
	}
	if got := commwire.WireMode(fs.ModeDir | fs.ModeSymlink | 0o700); got != 0o700 {
		t.Errorf("WireMode(dir|symlink|0o700) = %#o, want 0o700", got)
	}
}
