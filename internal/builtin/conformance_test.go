package builtin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/packer-stdio/packer/conformance"
	"github.com/packer-stdio/packer/internal/builtin"
)

// TestConformance runs every conformance check against every builtin, each
// served by this test binary as its own process (as "packer plugin NAME"
// serves it), with a configuration that lets it run for real: no check may
// fail or be skipped.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the full conformance suite against every builtin")
	}
	// Each component gets its own directory: artifice's artifact is its
	// input files, and destroying it removes them.
	configs := func(dir string) map[string]map[string]any {
		src := filepath.Join(dir, "src.txt")
		if err := os.WriteFile(src, []byte("conformance\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return map[string]map[string]any{
			"builder/file":               {"target": filepath.Join(dir, "file-builder.txt"), "content": "conformance"},
			"builder/null":               {"communicator": "none"},
			"provisioner/shell-local":    {"inline": []string{"echo shell-local"}},
			"provisioner/shell":          {"inline": []string{"echo shell"}},
			"provisioner/file":           {"source": src, "destination": "uploaded.txt"},
			"provisioner/breakpoint":     {"disable": true},
			"post-processor/shell-local": {"inline": []string{"echo post"}},
			"post-processor/manifest":    {"output": filepath.Join(dir, "manifest.json")},
			"post-processor/checksum":    {"output": filepath.Join(dir, "{{.ChecksumType}}.sum")},
			"post-processor/compress":    {"output": filepath.Join(dir, "out.tar.gz")},
			"post-processor/artifice":    {"files": []string{src}},
		}
	}
	// The checks mostly wait on processes, so run every builtin at once
	// rather than at go test's -parallel (GOMAXPROCS) limit.
	comps := builtin.Components()
	reports := make([]*conformance.Report, len(comps))
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i, c := range comps {
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
				Command: []string{os.Args[0]},
				Env:     []string{envServe + "=" + c.Binary},
				Configs: map[string]json.RawMessage{c.Name: raw},
				Run:     re,
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
			rep, err := reports[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				// A single-component plugin cannot run the other two
				// types: only those run checks may be skipped.
				other := strings.HasPrefix(r.ID, "run/") && r.ID != "run/"+c.Type && r.ID != "run/unknown-handle" ||
					(r.ID == "hook/unsupported" || r.ID == "concurrency/in-flight") && c.Type != "builder" || // builders only
					r.ID == "hook/communicator" && r.Status == conformance.Skip // builders that offer a communicator only
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
