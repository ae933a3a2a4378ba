// Command docker-bench times a large upload into a container two ways: with
// the file provisioner in a packer build with the docker builder (file
// provisioner process → packer → docker builder process → Engine archive
// API), and with `docker cp` of the same file into a container of the same
// image (the reference; the CLI is used here only as that reference). It
// prints the median of -runs runs of each and their ratio:
//
//	go run ./bench/cmd/docker-bench [-mb 1024] [-runs 3]
//
// It needs a Docker Engine (DOCKER_HOST is honoured), the docker CLI and
// Debian's busybox-static for the base image, which it imports and removes.
// The provisioner's time is taken between two shell-local provisioners that
// run just before and just after it.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/internal/dockertest"
	"github.com/packer-stdio/packer/pluginkit/dockercomm"
)

func main() {
	mb := flag.Int("mb", 1024, "MiB to upload")
	runs := flag.Int("runs", 3, "runs of each method")
	flag.Parse()
	if err := run(*mb, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "docker-bench:", err)
		os.Exit(1)
	}
}

func run(mb, runs int) error {
	ctx := context.Background()
	cli, err := dockertest.Dial()
	if err != nil {
		return err
	}
	defer cli.Close()
	dir, err := os.MkdirTemp("", "docker-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	id := dockertest.ID()
	image := "packer-bench-busybox:" + id
	if err := dockertest.ImportRootfs(ctx, cli, image, id); err != nil {
		return err
	}
	defer cli.ImageRemove(context.Background(), image, client.ImageRemoveOptions{Force: true, PruneChildren: true})

	big := filepath.Join(dir, "big.bin")
	if err := writeFile(big, mb); err != nil {
		return err
	}
	packer := filepath.Join(dir, "packer")
	if out, err := exec.Command("go", "build", "-o", packer, "./cmd/packer").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/packer (run from the repository root): %v\n%s", err, out)
	}

	var cp, comm, prov []time.Duration
	for range runs {
		d, err := dockerCp(ctx, cli, image, big)
		if err != nil {
			return err
		}
		cp = append(cp, d)
		d, err = commUpload(ctx, cli, image, big)
		if err != nil {
			return err
		}
		comm = append(comm, d)
		d, err = fileProvisioner(packer, dir, image, big)
		if err != nil {
			return err
		}
		prov = append(prov, d)
	}
	fmt.Printf("docker-bench: %d MiB into a container, %d runs each, median\n", mb, runs)
	fmt.Printf("%-40s %10s %10s\n", "method", "time", "MiB/s")
	mcp, mcomm, mprov := median(cp), median(comm), median(prov)
	fmt.Printf("%-40s %10s %10.0f\n", "docker cp", mcp.Round(time.Millisecond), float64(mb)/mcp.Seconds())
	fmt.Printf("%-40s %10s %10.0f\n", "dockercomm.Upload (in process)", mcomm.Round(time.Millisecond), float64(mb)/mcomm.Seconds())
	fmt.Printf("%-40s %10s %10.0f\n", "file provisioner (docker builder)", mprov.Round(time.Millisecond), float64(mb)/mprov.Seconds())
	fmt.Printf("ratio file provisioner / docker cp: %.2f\n", mprov.Seconds()/mcp.Seconds())
	return nil
}

// writeFile writes mb MiB of incompressible bytes to path.
func writeFile(path string, mb int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for i := range mb {
		buf[0] = byte(i)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// startContainer creates and starts a container of image that stays up;
// remove removes it.
func startContainer(ctx context.Context, cli *client.Client, image string) (id string, remove func(), err error) {
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Entrypoint: []string{"/bin/sh"}, Tty: true, OpenStdin: true},
		HostConfig: &container.HostConfig{},
	})
	if err != nil {
		return "", nil, err
	}
	remove = func() {
		cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		remove()
		return "", nil, err
	}
	return res.ID, remove, nil
}

// commUpload times pluginkit/dockercomm's Upload of file, in this process:
// the communicator without the plugin processes and the relay.
func commUpload(ctx context.Context, cli *client.Client, image, file string) (time.Duration, error) {
	id, remove, err := startContainer(ctx, cli, image)
	if err != nil {
		return 0, err
	}
	defer remove()
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := dockercomm.New(cli, id, dockercomm.Options{}).Upload(ctx, "/tmp/big.bin", f, 0o644, fi.Size()); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// dockerCp times `docker cp FILE CONTAINER:/tmp/big.bin` into a fresh
// container of image.
func dockerCp(ctx context.Context, cli *client.Client, image, file string) (time.Duration, error) {
	id, remove, err := startContainer(ctx, cli, image)
	if err != nil {
		return 0, err
	}
	defer remove()
	start := time.Now()
	if out, err := exec.Command("docker", "cp", file, id+":/tmp/big.bin").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker cp: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

// fileProvisioner runs a packer build whose file provisioner uploads file,
// between two shell-local provisioners that record the time, and returns
// the time between them.
func fileProvisioner(packer, dir, image, file string) (time.Duration, error) {
	t0, t1 := filepath.Join(dir, "t0"), filepath.Join(dir, "t1")
	tmpl := fmt.Sprintf(`{
  "builders": [{"type": "docker", "image": %q, "pull": false, "discard": true}],
  "provisioners": [
    {"type": "shell-local", "inline": ["date +%%s%%N > %s"]},
    {"type": "file", "source": %q, "destination": "/tmp/big.bin"},
    {"type": "shell-local", "inline": ["date +%%s%%N > %s"]}
  ]
}`, image, t0, file, t1)
	path := filepath.Join(dir, "bench.json")
	if err := os.WriteFile(path, []byte(tmpl), 0o644); err != nil {
		return 0, err
	}
	cmd := exec.Command(packer, "build", path)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("packer build: %v\n%s", err, out.String())
	}
	a, err := readNanos(t0)
	if err != nil {
		return 0, err
	}
	b, err := readNanos(t1)
	if err != nil {
		return 0, err
	}
	return time.Duration(b - a), nil
}

func readNanos(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
