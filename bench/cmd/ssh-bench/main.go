// Command ssh-bench measures uploads over SSH to a throwaway OpenSSH sshd on
// loopback (internal/sshdtest), side by side in one run: OpenSSH's own scp
// (SFTP protocol, and the legacy scp protocol with -O), pluginkit/sshcomm
// called directly, and `packer build` of a template whose file provisioner
// uploads the file through the null builder's SSH communicator (provisioner
// process → packer → builder process → SSH), in scp and sftp modes.
//
//	go run ./bench/cmd/ssh-bench            # 1 GiB
//	go run ./bench/cmd/ssh-bench -size 256  # MiB
//
// Every upload is checked by size and SHA-256 on the server side (the
// server is this machine). Needs /usr/sbin/sshd and /usr/bin/scp.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/internal/sshdtest"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

func main() {
	sizeMiB := flag.Int("size", 1024, "file size in MiB")
	packerBin := flag.String("packer", "", "packer binary (default: go build ./cmd/packer into a temporary directory)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("ssh-bench: ")

	tmp, err := os.MkdirTemp("", "ssh-bench-")
	check(err)
	bt.Cleanup(func() { os.RemoveAll(tmp) })
	defer bt.cleanup()
	srv := sshdtest.Start(bt)

	size := int64(*sizeMiB) << 20
	src := filepath.Join(tmp, "payload.bin")
	want := writePayload(src, size)
	if *packerBin == "" {
		*packerBin = filepath.Join(tmp, "packer")
		build := exec.Command("go", "build", "-o", *packerBin, "./cmd/packer")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		check(build.Run())
	}

	fmt.Printf("ssh-bench: %s/%s, %d CPUs, %s, %d MiB upload to OpenSSH sshd on 127.0.0.1\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *sizeMiB)
	fmt.Printf("%-44s %10s %10s %10s\n", "system", "seconds", "MiB/s", "vs scp")
	var base float64
	row := func(name string, d time.Duration) {
		secs := d.Seconds()
		if base == 0 {
			base = secs
		}
		fmt.Printf("%-44s %10.2f %10.1f %9.2fx\n", name, secs, float64(size)/(1<<20)/secs, secs/base)
	}
	dst := func(name string) string { return filepath.Join(tmp, "dst-"+name) }
	verify := func(path string) {
		if got := fileSum(path); got != want {
			bt.Fatalf("%s: checksum %s, want %s", path, got, want)
		}
		os.Remove(path)
	}

	scpArgs := []string{"-q", "-i", srv.KeyFile, "-P", strconv.Itoa(srv.Port),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"}
	for _, mode := range []struct{ name, flag string }{{"OpenSSH scp (SFTP protocol, its default)", ""}, {"OpenSSH scp -O (scp protocol)", "-O"}} {
		args := append([]string{}, scpArgs...)
		if mode.flag != "" {
			args = append(args, mode.flag)
		}
		target := dst("openssh")
		args = append(args, src, srv.User+"@127.0.0.1:"+target)
		start := time.Now()
		cmd := exec.Command("scp", args...)
		cmd.Stderr = os.Stderr
		check(cmd.Run())
		row(mode.name, time.Since(start))
		verify(target)
	}

	for _, m := range []sshcomm.TransferMethod{sshcomm.SCP, sshcomm.SFTP} {
		c, err := sshcomm.Connect(context.Background(), sshcomm.Config{
			Host: "127.0.0.1", Port: srv.Port, User: srv.User,
			Auth:               sshcomm.Auth{Signers: []ssh.Signer{srv.Signer}},
			HostKeyFingerprint: ssh.FingerprintSHA256(srv.HostKey),
			FileTransfer:       m,
		})
		check(err)
		f, err := os.Open(src)
		check(err)
		target := dst("sshcomm")
		start := time.Now()
		check(c.Upload(context.Background(), target, f, 0o644, size))
		row("pluginkit/sshcomm Upload, "+string(m), time.Since(start))
		f.Close()
		c.Close()
		verify(target)
	}

	for _, m := range []string{"scp", "sftp"} {
		target := dst("packer")
		tmpl := map[string]any{
			"builders": []any{map[string]any{
				"type": "null", "ssh_host": "127.0.0.1", "ssh_port": srv.Port, "ssh_username": srv.User,
				"ssh_private_key_file": srv.KeyFile, "ssh_host_key_fingerprint": ssh.FingerprintSHA256(srv.HostKey),
				"ssh_file_transfer_method": m,
			}},
			"provisioners": []any{map[string]any{"type": "file", "source": src, "destination": target}},
		}
		b, err := json.Marshal(tmpl)
		check(err)
		path := filepath.Join(tmp, "upload-"+m+".json")
		check(os.WriteFile(path, b, 0o644))
		cmd := exec.Command(*packerBin, "build", "-machine-readable", path)
		cmd.Dir = tmp
		out, err := os.Create(filepath.Join(tmp, "packer-"+m+".log"))
		check(err)
		cmd.Stdout, cmd.Stderr = out, out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b, _ := os.ReadFile(out.Name())
			bt.Fatalf("packer build (%s): %v\n%s", m, err, b)
		}
		row("packer build, file provisioner, "+m, time.Since(start))
		out.Close()
		verify(target)
	}
}

// writePayload writes size pseudo-random bytes to path and returns their
// SHA-256.
func writePayload(path string, size int64) string {
	f, err := os.Create(path)
	check(err)
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.NewChaCha8([32]byte{42}), size))
	check(err)
	check(f.Close())
	return hex.EncodeToString(h.Sum(nil))
}

func fileSum(path string) string {
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	check(err)
	return hex.EncodeToString(h.Sum(nil))
}

func check(err error) {
	if err != nil {
		bt.Fatalf("%v", err)
	}
}

// bt is the sshdtest.T of this command: a failure stops sshd, removes the
// temporary files and exits.
var bt = new(benchT)

type benchT struct{ cleanups []func() }

func (*benchT) Helper() {}
func (t *benchT) Fatalf(format string, args ...any) {
	log.Printf(format, args...)
	t.cleanup()
	os.Exit(1)
}
func (*benchT) Logf(format string, args ...any) { log.Printf(format, args...) }
func (t *benchT) Skip(args ...any)              { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *benchT) Cleanup(f func())              { t.cleanups = append(t.cleanups, f) }
func (*benchT) Failed() bool                    { return false }

// cleanup runs the cleanups once, last first.
func (t *benchT) cleanup() {
	fs := t.cleanups
	t.cleanups = nil
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
