package pluginkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// testConfig is the configuration of every test component.
type testConfig struct {
	pluginkit.PackerConfig
	Source string            `json:"source" jsonschema:"required"`
	Count  int               `json:"count,omitempty"`
	Mode   string            `json:"mode,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

func (c *testConfig) prepare() ([]string, error) {
	switch {
	case c.Mode == "prepare-panic":
		panic("prepare boom")
	case c.Mode == "prepare-plain-error":
		return nil, errors.New("plain failure")
	case c.Count < 0:
		return []string{"count is odd"}, pluginkit.ConfigErrors{{Path: "/count", Message: "must not be negative"}}
	case c.Count == 0:
		return []string{"count is zero"}, nil
	}
	return nil, nil
}

// observed records what components saw, for the test goroutine to check.
type observed struct {
	mu        sync.Mutex
	cancelled chan struct{} // closed when a waiting method saw its ctx done
	destroyed []string
	provErr   error
}

func newObserved() *observed { return &observed{cancelled: make(chan struct{})} }

type testBuilder struct {
	cfg testConfig
	obs *observed // set before registering: shared by every instance
}

func (b *testBuilder) Config() any                { return &b.cfg }
func (b *testBuilder) Prepare() ([]string, error) { return b.cfg.prepare() }

func (b *testBuilder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	switch b.cfg.Mode {
	case "panic":
		panic("boom")
	case "fail":
		return nil, errors.New("disk full")
	case "protocol-error":
		return nil, protocol.ErrUnsupported.WithMessage("not here")
	case "wait":
		ui.Say("waiting")
		<-ctx.Done()
		close(b.obs.cancelled)
		return nil, errors.New("stopped early") // does not wrap ctx.Err()
	case "ui":
		ui.Say("say")
		ui.Message("message")
		ui.Error("error")
		ui.Machine("artifact-count", "1")
		answer, err := ui.Ask(ctx, "name?")
		if err != nil {
			return nil, err
		}
		ui.Say("answer " + answer)
		r := ui.TrackProgress("copy", 0, 200<<10, io.NopCloser(bytes.NewReader(make([]byte, 200<<10))))
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		r.Close()
		return nil, nil
	case "hook":
		comm := newMemComm()
		if err := hook.Run(ctx, protocol.HookProvision, comm, map[string]any{"ID": b.cfg.Source}); err != nil {
			return nil, err
		}
	case "stray":
		fmt.Println("stray line on stdout")
		fmt.Fprintln(os.Stdout, "another stray line")
	}
	name := b.cfg.Source
	return &pluginkit.BasicArtifact{
		BuilderIDValue: "test.builder", IDValue: name, StringValue: "artifact " + name,
		FilesValue: []string{"/tmp/" + name}, StateValue: map[string]any{"k": "v"},
		DestroyFunc: func(context.Context) error {
			b.obs.mu.Lock()
			b.obs.destroyed = append(b.obs.destroyed, name)
			b.obs.mu.Unlock()
			return nil
		},
	}, nil
}

type testProvisioner struct {
	cfg testConfig
	obs *observed
}

func (p *testProvisioner) Config() any                { return &p.cfg }
func (p *testProvisioner) Prepare() ([]string, error) { return p.cfg.prepare() }

// Provision runs "cat" with stdin "to stdin", shows the output, then
// uploads and downloads a file through comm.
func (p *testProvisioner) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, data map[string]any) error {
	var out, errOut bytes.Buffer
	status, err := comm.Start(ctx, &pluginkit.RemoteCmd{Command: "cat", Stdin: strings.NewReader("to stdin"), Stdout: &out, Stderr: &errOut})
	if err != nil {
		p.obs.mu.Lock()
		p.obs.provErr = err
		p.obs.mu.Unlock()
		return err
	}
	ui.Message(fmt.Sprintf("status=%d stdout=%q stderr=%q id=%v", status, out.String(), errOut.String(), data["ID"]))
	payload := bytes.Repeat([]byte("x"), 300<<10)
	if err := comm.Upload(ctx, "/up", bytes.NewReader(payload), 0o600, int64(len(payload))); err != nil {
		return err
	}
	var back bytes.Buffer
	if err := comm.Download(ctx, "/up", &back); err != nil {
		return err
	}
	ui.Message(fmt.Sprintf("round trip %v", bytes.Equal(payload, back.Bytes())))
	return nil
}

type testPostProcessor struct {
	cfg testConfig
}

func (p *testPostProcessor) Config() any                { return &p.cfg }
func (p *testPostProcessor) Prepare() ([]string, error) { return p.cfg.prepare() }

func (p *testPostProcessor) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	if p.cfg.Mode == "pass" {
		return in, true, true, nil
	}
	if err := in.Destroy(ctx); !errors.Is(err, protocol.ErrUnsupported) {
		return nil, false, false, fmt.Errorf("destroying the input: got %v, want ErrUnsupported", err)
	}
	return &pluginkit.BasicArtifact{BuilderIDValue: "test.pp", IDValue: in.ID() + ".pp", FilesValue: in.Files()}, true, false, nil
}

// newTestServer registers one component of each type named "test".
func newTestServer(obs *observed) *pluginkit.Server {
	srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-test", Version: "1.2.3"})
	srv.RegisterBuilder("test", &testBuilder{obs: obs})
	srv.RegisterProvisioner("test", &testProvisioner{obs: obs})
	srv.RegisterPostProcessor("test", &testPostProcessor{})
	return srv
}

// memComm is an in-memory Communicator: Start echoes stdin to stdout
// prefixed with the command, writes "e" to stderr and exits 3; files live
// in a map.
type memComm struct {
	mu    sync.Mutex
	files map[string][]byte
	modes map[string]fs.FileMode
}

func newMemComm() *memComm {
	return &memComm{files: map[string][]byte{}, modes: map[string]fs.FileMode{}}
}

func (c *memComm) Start(ctx context.Context, cmd *pluginkit.RemoteCmd) (int, error) {
	in, err := io.ReadAll(cmd.Stdin)
	if err != nil {
		return -1, err
	}
	fmt.Fprintf(cmd.Stdout, "%s:%s", cmd.Command, in)
	fmt.Fprint(cmd.Stderr, "e")
	return 3, nil
}

func (c *memComm) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error {
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[dst] = b
	c.modes[dst] = mode
	return nil
}

func (c *memComm) Download(ctx context.Context, src string, dst io.Writer) error {
	c.mu.Lock()
	b, ok := c.files[src]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s: %w", src, fs.ErrNotExist)
	}
	_, err := dst.Write(b)
	return err
}

func (c *memComm) UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error {
	dir, err := os.MkdirTemp("", "memcomm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := pluginkit.ExtractArchive(archive, dir); err != nil {
		return err
	}
	b, err := os.ReadFile(dir + "/a.txt")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[dst+"/a.txt"] = b
	return nil
}

func (c *memComm) DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error {
	dir, err := os.MkdirTemp("", "memcomm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c.mu.Lock()
	b := c.files[src+"/a.txt"]
	c.mu.Unlock()
	if err := os.WriteFile(dir+"/a.txt", b, 0o644); err != nil {
		return err
	}
	r := pluginkit.ArchiveDir(dir, exclude)
	defer r.Close()
	_, err = io.Copy(archive, r)
	return err
}
