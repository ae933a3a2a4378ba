package provisioners_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/protocol"
)

func TestFileUpload(t *testing.T) {
	tests := []struct {
		name   string
		local  map[string]string
		config func(local string) map[string]any
		want   map[string]string // the machine's directory afterwards
		reason string
	}{
		{
			name:   "file to path",
			local:  map[string]string{"a.txt": "A"},
			config: func(l string) map[string]any { return map[string]any{"source": l + "/a.txt", "destination": "x/b.txt"} },
			want:   map[string]string{"x/": "", "x/b.txt": "A"},
		},
		{
			name:   "file into directory",
			local:  map[string]string{"a.txt": "A"},
			config: func(l string) map[string]any { return map[string]any{"source": l + "/a.txt", "destination": "x/"} },
			want:   map[string]string{"x/": "", "x/a.txt": "A"},
			reason: "a destination ending in / keeps the file's name",
		},
		{
			name:  "directory itself",
			local: map[string]string{"d/1.txt": "1", "d/sub/2.txt": "2"},
			config: func(l string) map[string]any {
				return map[string]any{"source": l + "/d", "destination": "x"}
			},
			want:   map[string]string{"x/": "", "x/d/": "", "x/d/1.txt": "1", "x/d/sub/": "", "x/d/sub/2.txt": "2"},
			reason: "a source without a trailing slash uploads the directory into destination",
		},
		{
			name:  "directory contents",
			local: map[string]string{"d/1.txt": "1", "d/sub/2.txt": "2"},
			config: func(l string) map[string]any {
				return map[string]any{"source": l + "/d/", "destination": "x"}
			},
			want:   map[string]string{"x/": "", "x/1.txt": "1", "x/sub/": "", "x/sub/2.txt": "2"},
			reason: "a source with a trailing slash uploads the directory's contents",
		},
		{
			name:  "sources",
			local: map[string]string{"a.txt": "A", "d/1.txt": "1"},
			config: func(l string) map[string]any {
				return map[string]any{"sources": []string{l + "/a.txt", l + "/d"}, "destination": "x/"}
			},
			want: map[string]string{"x/": "", "x/a.txt": "A", "x/d/": "", "x/d/1.txt": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, work := t.TempDir(), t.TempDir()
			bttest.WriteTree(t, local, tt.local)
			ui := bttest.NewUI()
			if err := provision(t, ui, "file", tt.config(local), bttest.LocalComm(work)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, bttest.Tree(t, work)); diff != "" {
				t.Errorf("machine files (-want +got):\n%s\n%s", diff, tt.reason)
			}
			states := ui.ProgressStates()
			if len(states) == 0 || !strings.HasSuffix(states[0], " start") || !strings.HasSuffix(states[len(states)-1], " done") {
				t.Errorf("progress = %q, want start ... done", states)
			}
		})
	}
}

func TestFileUploadProgressAndMode(t *testing.T) {
	local, work := t.TempDir(), t.TempDir()
	src := filepath.Join(local, "run.sh")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	ui := bttest.NewUI()
	if err := provision(t, ui, "file", map[string]any{"source": src, "destination": "run.sh"}, bttest.LocalComm(work)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(work, "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("uploaded mode = %v, want 0750", fi.Mode().Perm())
	}
	if diff := cmp.Diff([]string{"run.sh start", "run.sh done"}, ui.ProgressStates()); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"say: Uploading " + src + " => run.sh"}, ui.Lines("say")); diff != "" {
		t.Errorf("say (-want +got):\n%s", diff)
	}
}

func TestFileDownload(t *testing.T) {
	tests := []struct {
		name    string
		machine map[string]string
		config  func(local string) map[string]any
		want    map[string]string // the local directory afterwards
	}{
		{
			name:    "file to path",
			machine: map[string]string{"a.txt": "A"},
			config: func(l string) map[string]any {
				return map[string]any{"source": "a.txt", "destination": l + "/new/b.txt"}
			},
			want: map[string]string{"new/": "", "new/b.txt": "A"},
		},
		{
			name:    "file into directory",
			machine: map[string]string{"d/a.txt": "A"},
			config:  func(l string) map[string]any { return map[string]any{"source": "d/a.txt", "destination": l + "/new/"} },
			want:    map[string]string{"new/": "", "new/a.txt": "A"},
		},
		{
			name:    "directory contents",
			machine: map[string]string{"d/1.txt": "1", "d/sub/2.txt": "2"},
			config:  func(l string) map[string]any { return map[string]any{"source": "d/", "destination": l + "/out"} },
			want:    map[string]string{"out/": "", "out/1.txt": "1", "out/sub/": "", "out/sub/2.txt": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, work := t.TempDir(), t.TempDir()
			bttest.WriteTree(t, work, tt.machine)
			cfg := tt.config(local)
			cfg["direction"] = "download"
			if err := provision(t, bttest.NewUI(), "file", cfg, bttest.LocalComm(work)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, bttest.Tree(t, local)); diff != "" {
				t.Errorf("local files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFileDownloadFails checks that a failed download leaves neither a
// partial file nor a replaced one.
func TestFileDownloadFails(t *testing.T) {
	local, work := t.TempDir(), t.TempDir()
	bttest.WriteTree(t, local, map[string]string{"b.txt": "old"})
	err := provision(t, bttest.NewUI(), "file", map[string]any{"source": "missing.txt", "destination": local + "/b.txt", "direction": "download"}, bttest.LocalComm(work))
	if err == nil {
		t.Fatal("Provision succeeded")
	}
	if diff := cmp.Diff(map[string]string{"b.txt": "old"}, bttest.Tree(t, local)); diff != "" {
		t.Errorf("local files (-want +got):\n%s", diff)
	}
}

// TestFileContent uploads content, Packer's inline alternative to source.
func TestFileContent(t *testing.T) {
	tests := []struct {
		name, destination, path string
		want                    map[string]string
		reason                  string
	}{
		{"to a file", "etc/app.conf", "etc/app.conf", map[string]string{"etc/": "", "etc/app.conf": "port=8080\n"}, ""},
		{"into a directory", "etc/", "etc/pkr-file-content", map[string]string{"etc/": "", "etc/pkr-file-content": "port=8080\n"}, "Packer's name for content written into a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := t.TempDir()
			ui := bttest.NewUI()
			cfg := map[string]any{"content": "port=8080\n", "destination": tt.destination}
			if err := provision(t, ui, "file", cfg, bttest.LocalComm(work)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, bttest.Tree(t, work)); diff != "" {
				t.Errorf("machine files (-want +got):\n%s\n%s", diff, tt.reason)
			}
			if diff := cmp.Diff([]string{"say: Uploading content (10 bytes) => " + tt.path}, ui.Lines()); diff != "" {
				t.Errorf("ui (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileConfigErrors(t *testing.T) {
	dir := t.TempDir()
	p := bttest.Start(t, register, host.Options{})
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"no destination", map[string]any{"source": dir}, []string{"/destination: missing required key"}},
		{"no source", map[string]any{"destination": "x"}, []string{"/content: one of source, sources or content is required", "/source: one of source, sources or content is required", "/sources: one of source, sources or content is required"}},
		{"both", map[string]any{"source": dir, "sources": []string{dir}, "destination": "x"}, []string{"/source: only one of source, sources and content may be set; source and sources are set", "/sources: only one of source, sources and content may be set; source and sources are set"}},
		{"source and content", map[string]any{"source": dir, "content": "x", "destination": "x"}, []string{"/content: only one of source, sources and content may be set; source and content are set", "/source: only one of source, sources and content may be set; source and content are set"}},
		{"content downloaded", map[string]any{"content": "x", "destination": "x", "direction": "download"}, []string{"/content: content can only be uploaded, not downloaded"}},
		{"missing upload source", map[string]any{"sources": []string{dir, missing}, "destination": "x/"},
			[]string{"/sources/1: bad source: stat " + missing + ": no such file or directory"}},
		{"several sources need a directory", map[string]any{"sources": []string{"a", "b"}, "destination": "x", "direction": "download"},
			[]string{"/destination: must end with / (a directory) when there are several sources"}},
		{"bad direction", map[string]any{"source": dir, "destination": "x", "direction": "sideways"},
			[]string{"/direction: value must be one of 'upload', 'download'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "file", tt.config)
			if diff := cmp.Diff(tt.want, bttest.ConfigErrors(err)); diff != "" {
				t.Errorf("config errors (-want +got):\n%s", diff)
			}
		})
	}
	// generated sources are not checked before the build.
	if _, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "file", map[string]any{"source": missing, "destination": "x", "generated": true}); err != nil {
		t.Errorf("generated source: %v", err)
	}
}

func TestBreakpoint(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		pause  bool
	}{
		{"default", map[string]any{}, true},
		{"disable false", map[string]any{"disable": false}, true},
		{"disable", map[string]any{"disable": true}, false},
		{"disable, in debug mode", map[string]any{"disable": true, "packer_debug": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui := bttest.NewUI()
			tt.config["note"] = "here"
			p := bttest.Start(t, register, host.Options{UI: ui})
			inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "breakpoint", tt.config)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- inst.Provision(context.Background(), nil, nil) }()
			want := []string{`say: Breakpoint provisioner with note "here" disabled; continuing...`}
			if tt.pause {
				select {
				case q := <-ui.Asked:
					if q != "Press enter to continue." {
						t.Errorf("asked %q", q)
					}
				case err := <-errc:
					t.Fatalf("Provision returned %v without asking", err)
				}
				ui.Answers <- ""
				want = []string{`say: Pausing at breakpoint provisioner with note "here".`, "ask: Press enter to continue."}
			}
			select {
			case err := <-errc:
				if err != nil {
					t.Fatal(err)
				}
			case q := <-ui.Asked:
				ui.Answers <- ""
				<-errc
				t.Fatalf("asked %q, want no pause", q)
			}
			if diff := cmp.Diff(want, ui.Lines()); diff != "" {
				t.Errorf("ui (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBreakpointCancel(t *testing.T) {
	ui := bttest.NewUI()
	p := bttest.Start(t, register, host.Options{UI: ui})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "breakpoint", map[string]any{"disable": false})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- inst.Provision(ctx, nil, nil) }()
	select {
	case <-ui.Asked:
	case err := <-errc:
		t.Fatalf("Provision returned %v without asking", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, protocol.ErrCancelled) {
		t.Errorf("Provision error = %v, want ErrCancelled", err)
	}
}

// TestBreakpointCannotAsk checks that a breakpoint that should pause fails
// when the host cannot ask, rather than carrying on silently.
func TestBreakpointCannotAsk(t *testing.T) {
	p := bttest.Start(t, register, host.Options{})
	inst, _, err := p.Prepare(context.Background(), protocol.TypeProvisioner, "breakpoint", map[string]any{"disable": false})
	if err != nil {
		t.Fatal(err)
	}
	// The host's -32011 is kept through the provisioner's error: a
	// protocol error keeps its code (SPEC §4.2).
	if err := inst.Provision(context.Background(), nil, nil); !errors.Is(err, protocol.ErrUnsupported) || !strings.Contains(err.Error(), "cannot ask") {
		t.Errorf("Provision error = %v, want -32011 saying the host cannot ask", err)
	}
}
