package builtin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/packer-stdio/packer/conformance"
	"github.com/packer-stdio/packer/internal/builtin"
	"github.com/packer-stdio/packer/internal/dockertest"
	"github.com/packer-stdio/packer/protocol"
)

// TestConformance runs every conformance check against every builtin, each
// served by this test binary as its own process (as "packer plugin NAME"
// serves it), with a configuration that lets it run for real: no check may
// fail or be skipped.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the full conformance suite against every builtin")
	}
	// The docker components need an engine and a base image: without an
	// engine they are skipped, saying so.
	docker := newDockerFixture(t)
	// The http data source reads a real server on loopback.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "conformance")
	}))
	defer srv.Close()
	// Each component gets its own directory: artifice's artifact is its
	// input files, and destroying it removes them.
	configs := func(dir string) map[string]map[string]any {
		src := filepath.Join(dir, "src.txt")
		if err := os.WriteFile(src, []byte("conformance\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return map[string]map[string]any{
			"builder/file":                 {"target": filepath.Join(dir, "file-builder.txt"), "content": "conformance"},
			"builder/null":                 {"communicator": "none"},
			"provisioner/shell-local":      {"inline": []string{"echo shell-local"}},
			"provisioner/shell":            {"inline": []string{"echo shell"}},
			"provisioner/file":             {"source": src, "destination": "uploaded.txt"},
			"provisioner/breakpoint":       {"disable": true},
			"provisioner/sleep":            {"duration": "10ms"},
			"post-processor/shell-local":   {"inline": []string{"echo post"}},
			"post-processor/manifest":      {"output": filepath.Join(dir, "manifest.json")},
			"post-processor/checksum":      {"output": filepath.Join(dir, "{{.ChecksumType}}.sum")},
			"post-processor/compress":      {"output": filepath.Join(dir, "out.tar.gz")},
			"post-processor/artifice":      {"files": []string{src}},
			"builder/docker":               {"image": docker.image, "pull": false, "commit": true},
			"post-processor/docker-tag":    {"repository": docker.repo, "tags": []string{"conformance"}},
			"post-processor/docker-import": {"repository": docker.repo + "-import"},
			"post-processor/docker-save":   {"path": filepath.Join(dir, "saved.tar")},
			"post-processor/docker-push":   {},
			"datasource/null":              {"input": "conformance"},
			"datasource/http":              {"url": srv.URL},
		}
	}
	// The checks mostly wait on processes, so run every builtin at once
	// rather than at go test's -parallel (GOMAXPROCS) limit.
	comps := builtin.Components()
	reports := make([]*conformance.Report, len(comps))
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i, c := range comps {
		if docker.skip != "" && strings.Contains(c.Name, "docker") {
			continue
		}
		cfg, ok := configs(t.TempDir())[c.Type+"/"+c.Name]
		if !ok {
			t.Fatalf("no conformance configuration for %s %s: add one", c.Type, c.Name)
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		run := func(re *regexp.Regexp, raw json.RawMessage) (*conformance.Report, error) {
			return conformance.Run(context.Background(), conformance.Config{
				Command:  []string{os.Args[0]},
				Env:      []string{envServe + "=" + c.Binary},
				Configs:  map[string]json.RawMessage{c.Name: raw},
				Run:      re,
				Artifact: docker.artifact,
				// The engine's work (containers, commits, pushes) can take
				// more than the default 10s per check on a busy machine.
				Timeout: timeout(c.Name),
			})
		}
		// artifice's artifact is its input files, and run/post-processor
		// destroys it, removing them: cancel/run gets its own files.
		fresh, err := json.Marshal(configs(t.TempDir())["post-processor/artifice"])
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Name != "artifice" {
				reports[i], errs[i] = run(nil, raw)
				return
			}
			rep, err := run(regexp.MustCompile(`^(`+strings.Join(idsExcept("cancel/run"), "|")+`)$`), raw)
			if err == nil {
				var more *conformance.Report
				if more, err = run(regexp.MustCompile(`^cancel/run$`), fresh); err == nil {
					rep.Results = append(rep.Results, more.Results...)
				}
			}
			reports[i], errs[i] = rep, err
		}()
	}
	wg.Wait()
	for i, c := range comps {
		t.Run(c.Binary, func(t *testing.T) {
			if docker.skip != "" && strings.Contains(c.Name, "docker") {
				t.Skip(docker.skip)
			}
			rep, err := reports[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				// A single-component plugin cannot run the other two
				// types: only those run checks may be skipped.
				other := strings.HasPrefix(r.ID, "run/") && r.ID != "run/"+c.Type && r.ID != "run/unknown-handle" ||
					(r.ID == "hook/unsupported" || r.ID == "concurrency/in-flight") && c.Type != "builder" || // builders only
					r.ID == "hook/communicator" && r.Status == conformance.Skip || // builders that offer a communicator only
					// The version 2 stream checks that call a builder's
					// communicator, likewise.
					strings.HasPrefix(r.ID, "streams/") && r.Status == conformance.Skip && strings.Contains(r.Reason, "offered a communicator in hook/run")
				// cancel/run and signal/sigterm interrupt a builder,
				// provisioner or post-processor run; a data source has none.
				other = other || (c.Type == protocol.TypeDatasource && (r.ID == "cancel/run" || r.ID == "signal/sigterm"))
				if r.Failed() || (r.Status == conformance.Skip && !other) {
					t.Errorf("%s: %s: %s", r.ID, r.Status, r.Reason)
				}
			}
			if t.Failed() {
				var buf bytes.Buffer
				rep.WriteTable(&buf, true)
				t.Logf("report:\n%s", buf.String())
			}
		})
	}
}

// timeout returns the per-check time limit for the builtin name.
func timeout(name string) time.Duration {
	if strings.HasPrefix(name, "docker") {
		return time.Minute
	}
	return 0 // the default
}

// idsExcept returns the quoted ids of every conformance check but skip.
func idsExcept(skip string) []string {
	var ids []string
	for _, c := range conformance.Catalogue() {
		if c.ID != skip {
			ids = append(ids, regexp.QuoteMeta(c.ID))
		}
	}
	return ids
}

// dockerFixture is what the docker components' conformance runs need: a
// base image, a repository name for the tags and imports they make, and a
// root file system tar for docker-import. skip says why they cannot run.
type dockerFixture struct {
	skip        string
	image, repo string
	rootfs      string
	pushed      string // a tag of image in a registry, for docker-push
}

func newDockerFixture(t *testing.T) *dockerFixture {
	cli, err := dockertest.Dial()
	if err != nil {
		return &dockerFixture{skip: "skipping: needs a Docker Engine: " + err.Error()}
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := os.Stat(dockertest.BusyboxPath); err != nil {
		return &dockerFixture{skip: "skipping: needs " + dockertest.BusyboxPath + " (apt-get install busybox-static)"}
	}
	f := &dockerFixture{
		image:  dockertest.Image(t, cli),
		repo:   "packer-conformance-" + dockertest.ID(),
		rootfs: filepath.Join(t.TempDir(), "rootfs.tar"),
	}
	dockertest.RootfsTar(t, f.rootfs)
	reg := dockertest.StartRegistry()
	t.Cleanup(reg.Close)
	f.pushed = reg.Host() + "/" + f.repo + ":push"
	if _, err := cli.ImageTag(context.Background(), client.ImageTagOptions{Source: f.image, Target: f.pushed}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ref := range []string{f.repo + ":conformance", f.repo + "-import", f.pushed} {
			dockertest.RemoveImage(t, cli, ref)
		}
	})
	return f
}

// artifact gives the docker post-processors an artifact they accept: the
// base image for docker-tag and docker-save, a root file system tar for
// docker-import, a tag in a test registry for docker-push.
func (f *dockerFixture) artifact(comp protocol.Component) (protocol.Artifact, bool) {
	switch comp.Name {
	case "docker-tag", "docker-save":
		return protocol.Artifact{BuilderID: "packer.post-processor.docker-import", ID: f.image, String: "the conformance base image"}, true
	case "docker-import":
		return protocol.Artifact{BuilderID: "packer.docker", ID: f.rootfs, Files: []string{f.rootfs}, String: "a root file system"}, true
	case "docker-push":
		return protocol.Artifact{BuilderID: "packer.post-processor.docker-tag", ID: f.pushed, String: "the base image, tagged in a test registry"}, true
	}
	return protocol.Artifact{}, false
}
