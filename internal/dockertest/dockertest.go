// Package dockertest gives tests a Docker Engine and base images made
// offline: no registry is reachable from this project's machines, so a base
// image is imported (the engine's image import API) from a root file system
// built from Debian's static busybox and its applet links.
//
// Every test that needs the engine calls [Client] first: it skips the test,
// saying why, when no daemon answers. Images and containers a test makes
// carry [Label] and are removed by the test's Cleanup.
package dockertest

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// BusyboxPath is where Debian's busybox-static installs the static busybox.
const BusyboxPath = "/bin/busybox"

// Label is the label key every image and container made by tests carries;
// its value is the test's unique id.
const Label = "packer-stdio.test"

// Client returns a client for the engine the environment names (DOCKER_HOST
// and friends, as the docker CLI reads them) after checking that it answers,
// and closes it when the test ends. It skips the test when no daemon answers.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := Dial()
	if err != nil {
		t.Skipf("skipping: needs a Docker Engine: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Dial connects to the engine and pings it, within 10 seconds. It is for
// callers without a testing.TB (TestMain, benchmarks' setup).
func Dial() (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker Engine answers at %s: %w", cli.DaemonHost(), err)
	}
	return cli, nil
}

// ID returns a fresh lower-case id for names of test images and containers.
func ID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WriteRootfs writes to w a tar stream of a minimal root file system: the
// static busybox at /bin/busybox, a symbolic link to it for each applet it
// lists, /etc/passwd and /etc/group with root and nobody, and empty /tmp
// (mode 1777), /root and /home directories.
func WriteRootfs(w io.Writer) error {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return fmt.Errorf("%w (install Debian's busybox-static)", err)
	}
	out, err := exec.Command(BusyboxPath, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", BusyboxPath, err)
	}
	tw := tar.NewWriter(w)
	now := time.Now()
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: now})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return err
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")); err != nil {
		return err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: "/bin/busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	return tw.Close()
}

// RootfsTar writes [WriteRootfs]'s tar stream to path. It skips the test
// when busybox-static is not installed.
func RootfsTar(t testing.TB, path string) {
	t.Helper()
	requireBusybox(t)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteRootfs(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func requireBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("skipping: needs %s from Debian's busybox-static (apt-get install busybox-static): %v", BusyboxPath, err)
	}
}

// Image imports the busybox root file system as the image
// "packer-test-busybox:ID", labelled [Label]=ID, with /bin/sh as its
// command, and removes it (and any container left from it) when the test
// ends. It returns the reference.
func Image(t testing.TB, cli *client.Client) string {
	t.Helper()
	requireBusybox(t)
	id := ID()
	ref := "packer-test-busybox:" + id
	if err := ImportRootfs(context.Background(), cli, ref, id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveImage(t, cli, ref) })
	return ref
}

// ImportRootfs imports [WriteRootfs]'s root file system as the image ref,
// labelled [Label]=id, with /bin/sh as its command.
func ImportRootfs(ctx context.Context, cli *client.Client, ref, id string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteRootfs(pw)) }()
	defer pr.Close()
	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: []string{`CMD ["/bin/sh"]`, "LABEL " + Label + "=" + id},
	})
	if err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	return nil
}

// RemoveImage removes every container made from ref, then ref itself,
// reporting failures other than "not found" as test errors.
func RemoveImage(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range Containers(t, cli, ref) {
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing container %s: %v", id, err)
		}
	}
	if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("removing image %s: %v", ref, err)
	}
}

// Containers lists the ids of every container, running or not, made from
// the image ref.
func Containers(t testing.TB, cli *client.Client, ref string) []string {
	t.Helper()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("ancestor", ref),
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		t.Fatalf("listing containers of %s: %v", ref, err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// Container creates and starts a container from image that stays up (the
// builder's default: /bin/sh reading an open terminal), as user (empty: the
// image's), labelled [Label], and removes it when the test ends. It returns
// the container's id.
func Container(t testing.TB, cli *client.Client, image, user string) string {
	t.Helper()
	ctx := context.Background()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:      image,
			User:       user,
			Entrypoint: []string{"/bin/sh"},
			Tty:        true,
			OpenStdin:  true,
			Labels:     map[string]string{Label: ID()},
		},
		HostConfig: &container.HostConfig{},
	})
	if err != nil {
		t.Fatalf("creating a container from %s: %v", image, err)
	}
	t.Cleanup(func() {
		if _, err := cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing container %s: %v", res.ID, err)
		}
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting container %s: %v", res.ID, err)
	}
	return res.ID
}
