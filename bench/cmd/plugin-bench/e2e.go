package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/packer-stdio/packer/bench/internal/report"
)

// e2eSetup is scenario 8: packer, built from this module, runs a template
// whose null builder hands the file provisioner a local communicator, and
// the provisioner uploads one file of mb MiB; cp copies the same file.
type e2eSetup struct {
	dir, packer, template, source string
	mb                            int
}

func setupE2E(dir string, mb int) (*e2eSetup, error) {
	e := &e2eSetup{dir: dir, mb: mb, packer: filepath.Join(dir, "packer"), source: filepath.Join(dir, "e2e-source.bin")}
	c := exec.Command("go", "build", "-o", e.packer, "github.com/packer-stdio/packer/cmd/packer")
	if out, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building packer (run plugin-bench from inside the repository): %w\n%s", err, out)
	}
	f, err := os.Create(e.source)
	if err != nil {
		return nil, err
	}
	// Not zeros, so that no layer can skip the data.
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + i>>8)
	}
	for range mb {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	tmpl := map[string]any{
		"builders": []any{map[string]any{"type": "null", "communicator": "local", "local_dir": filepath.Join(dir, "e2e-machine")}},
		"provisioners": []any{map[string]any{
			"type": "file", "source": e.source, "destination": "upload.bin",
		}},
	}
	b, err := json.Marshal(tmpl)
	if err != nil {
		return nil, err
	}
	e.template = filepath.Join(dir, "e2e.json")
	return e, os.WriteFile(e.template, b, 0o644)
}

func (e *e2eSetup) scenario() string {
	return fmt.Sprintf("8 packer build, %s upload", size(e.mb))
}

func (e *e2eSetup) cp() report.Row {
	dst := filepath.Join(e.dir, "e2e-cp.bin")
	t := time.Now()
	out, err := exec.Command("cp", e.source, dst).CombinedOutput()
	el := time.Since(t)
	if err != nil {
		check(fmt.Errorf("cp: %w: %s", err, out))
	}
	check(os.Remove(dst))
	return report.Row{Scenario: e.scenario(), System: "floor: cp", Median: float64(el.Microseconds()) / 1e3, Unit: "ms", Floor: true, Note: "cp of the same file, same file system"}
}

func (e *e2eSetup) build() report.Row {
	machine := filepath.Join(e.dir, "e2e-machine")
	check(os.RemoveAll(machine))
	var stderr bytes.Buffer
	c := exec.Command(e.packer, "build", e.template)
	c.Dir = e.dir
	c.Stdout = io.Discard
	c.Stderr = &stderr
	t := time.Now()
	err := c.Run()
	el := time.Since(t)
	if err != nil {
		check(fmt.Errorf("packer build: %w\n%s", err, stderr.Bytes()))
	}
	fi, err := os.Stat(filepath.Join(machine, "upload.bin"))
	check(err)
	if fi.Size() != int64(e.mb)<<20 {
		check(fmt.Errorf("packer build uploaded %d bytes, want %d", fi.Size(), int64(e.mb)<<20))
	}
	check(os.RemoveAll(machine))
	return report.Row{Scenario: e.scenario(), System: "packer-stdio", Median: float64(el.Microseconds()) / 1e3, Unit: "ms",
		Note: "packer build: null builder, local communicator, file provisioner; whole command"}
}

func size(mb int) string {
	if mb >= 1024 && mb%1024 == 0 {
		return fmt.Sprintf("%d GiB", mb/1024)
	}
	return fmt.Sprintf("%d MiB", mb)
}
