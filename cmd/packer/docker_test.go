package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/packer-stdio/packer/internal/dockertest"
)

// TestDockerScripts runs the scripts in testdata/docker: builds with the
// docker builder and post-processors against the Docker Engine, from a
// busybox base image each script imports. It skips, saying why, without an
// engine or without busybox-static.
func TestDockerScripts(t *testing.T) {
	cli := dockertest.Client(t)
	if _, err := os.Stat(dockertest.BusyboxPath); err != nil {
		t.Skipf("skipping: needs %s (apt-get install busybox-static): %v", dockertest.BusyboxPath, err)
	}
	examples, err := filepath.Abs("../../examples/templates")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerCmds{cli: cli}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/docker",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			home := filepath.Join(e.WorkDir, "home")
			e.Setenv("HOME", home)
			e.Setenv("EXAMPLES", examples)
			e.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
			for _, k := range []string{"PACKER_LOG", "PACKER_LOG_PATH", "PACKER_RPC_TRACE", "PACKER_PLUGIN_PATH", "PACKER_CONFIG"} {
				e.Setenv(k, "")
			}
			// Every image and container the script makes carries this
			// id (a label inherited from the base image, or the name of
			// the repositories it tags): removed when the script ends.
			id := dockertest.ID()
			e.Setenv("DOCKER_TEST_ID", id)
			e.Setenv("REPO", "packer-test-out-"+id)
			e.Defer(func() { d.cleanup(t, id) })
			return os.MkdirAll(home, 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"docker-image":      d.image,
			"docker-run":        d.run,
			"docker-containers": d.containers,
			"docker-waitfile":   d.waitFile,
			"docker-rmi":        d.rmi,
			"docker-load":       d.load,
			"docker-registry":   d.registry,
			"docker-pull":       d.pull,
			"waitfile":          waitFile,
			"noprocs":           noProcs,
			"sigpacker":         sigPacker,
		},
	})
}

// dockerCmds are the script commands that talk to the engine.
type dockerCmds struct {
	cli *client.Client
	mu  sync.Mutex
}

// image: docker-image VAR imports the busybox base image as
// packer-test-busybox:$DOCKER_TEST_ID and sets $VAR to its reference.
func (d *dockerCmds) image(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: docker-image VAR")
	}
	id := ts.Getenv("DOCKER_TEST_ID")
	ref := "packer-test-busybox:" + id
	ts.Check(dockertest.ImportRootfs(context.Background(), d.cli, ref, id))
	ts.Setenv(args[0], ref)
}

// run: docker-run IMAGE [COMMAND...] runs a container of IMAGE (with its
// own command when none is given), waits for it, writes its stdout and
// stderr to the script's and removes it. It fails if the container cannot
// be created or exits non-zero.
func (d *dockerCmds) run(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: docker-run IMAGE [COMMAND...]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	cfg := &container.Config{Image: args[0], Labels: map[string]string{dockertest.Label: ts.Getenv("DOCKER_TEST_ID")}}
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	res, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: &container.HostConfig{}})
	if err != nil && neg {
		fmt.Fprintln(ts.Stderr(), err)
		return
	}
	ts.Check(err)
	defer d.cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	wait := d.cli.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	_, err = d.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
	ts.Check(err)
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		ts.Fatalf("waiting for the container: %v", err)
	}
	logs, err := d.cli.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	ts.Check(err)
	defer logs.Close()
	_, err = stdcopy.StdCopy(ts.Stdout(), ts.Stderr(), logs)
	ts.Check(err)
	if (code != 0) != neg {
		ts.Fatalf("the container exited with status %d", code)
	}
}

// containers: docker-containers IMAGE N checks that N containers (running
// or not) were made from IMAGE, and prints their ids.
func (d *dockerCmds) containers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: docker-containers IMAGE N")
	}
	res, err := d.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("ancestor", args[0])})
	ts.Check(err)
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	fmt.Fprintln(ts.Stdout(), strings.Join(ids, "\n"))
	if got := fmt.Sprint(len(ids)); got != args[1] {
		ts.Fatalf("%s containers of %s, want %s: %v", got, args[0], args[1], ids)
	}
}

// waitFile: docker-waitfile IMAGE PATH waits until a container of IMAGE
// has the file PATH.
func (d *dockerCmds) waitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: docker-waitfile IMAGE PATH")
	}
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		res, err := d.cli.ContainerList(context.Background(), client.ContainerListOptions{Filters: make(client.Filters).Add("ancestor", args[0])})
		ts.Check(err)
		for _, c := range res.Items {
			if _, err := d.cli.ContainerStatPath(context.Background(), c.ID, client.ContainerStatPathOptions{Path: args[1]}); err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("docker-waitfile: no container of %s has %s after %v", args[0], args[1], patience)
}

// rmi: docker-rmi REF removes the image or tag REF.
func (d *dockerCmds) rmi(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: docker-rmi REF")
	}
	_, err := d.cli.ImageRemove(context.Background(), args[0], client.ImageRemoveOptions{})
	ts.Check(err)
}

// load: docker-load FILE loads a docker save archive and prints the
// engine's messages.
func (d *dockerCmds) load(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: docker-load FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	res, err := d.cli.ImageLoad(context.Background(), f, client.ImageLoadWithQuiet(true))
	ts.Check(err)
	defer res.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, res)
	ts.Check(err)
	fmt.Fprintln(ts.Stdout(), out.String())
}

// registry: docker-registry VAR starts an in-memory registry
// (dockertest.Registry) for the rest of the script and sets $VAR to its
// host:port.
func (d *dockerCmds) registry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: docker-registry VAR")
	}
	r := dockertest.StartRegistry()
	ts.Defer(r.Close)
	ts.Setenv(args[0], r.Host())
}

// pull: docker-pull REF pulls REF through the engine.
func (d *dockerCmds) pull(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: docker-pull REF")
	}
	resp, err := d.cli.ImagePull(context.Background(), args[0], client.ImagePullOptions{})
	ts.Check(err)
	ts.Check(resp.Wait(context.Background()))
}

// cleanup removes the containers and images of the script id: those
// labelled with it (made from the base image) and those in its
// repositories.
func (d *dockerCmds) cleanup(t *testing.T, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx := context.Background()
	cs, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", dockertest.Label+"="+id)})
	if err != nil {
		t.Errorf("listing the containers of %s: %v", id, err)
	}
	for _, c := range cs.Items {
		if _, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing container %s: %v", c.ID, err)
		}
	}
	var refs []string
	for _, f := range []client.Filters{
		make(client.Filters).Add("label", dockertest.Label+"="+id),
		make(client.Filters).Add("reference", "packer-test-out-"+id+"*"),
		make(client.Filters).Add("reference", "*/packer-test-out-"+id+"*"),
	} {
		imgs, err := d.cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: f})
		if err != nil {
			t.Errorf("listing the images of %s: %v", id, err)
		}
		for _, img := range imgs.Items {
			refs = append(refs, img.ID)
		}
	}
	for _, ref := range refs {
		if _, err := d.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing image %s: %v", ref, err)
		}
	}
}
