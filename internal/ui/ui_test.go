package ui_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/ui"
	"github.com/packer-stdio/packer/protocol"
)

func TestLines(t *testing.T) {
	now := func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) }
	mask := func(s string) string { return strings.ReplaceAll(s, "hunter2", "<sensitive>") }
	tests := []struct {
		name       string
		o          ui.Options
		build      string
		do         func(u *ui.BuildUI)
		wantStdout string
		wantStderr string
		reason     string
	}{{
		name:       "plain",
		build:      "web",
		do:         func(u *ui.BuildUI) { u.Say("starting"); u.Message("detail\nsecond"); u.Error("broken") },
		wantStdout: "==> web: starting\n    web: detail\n    web: second\n",
		wantStderr: "==> web: broken\n",
		reason:     "each line of a multi-line message gets the prefix",
	}, {
		name:       "packer's own lines",
		build:      "",
		do:         func(u *ui.BuildUI) { u.Say("Wait completed"); u.Message("--> a: b") },
		wantStdout: "==> Wait completed\n    --> a: b\n",
	}, {
		name:       "colour",
		o:          ui.Options{Color: true},
		build:      "web",
		do:         func(u *ui.BuildUI) { u.Say("s"); u.Message("m"); u.Error("e") },
		wantStdout: "\x1b[1;32m==> web: s\x1b[0m\n\x1b[1;32m    web:\x1b[0m m\n",
		wantStderr: "\x1b[1;31m==> web: e\x1b[0m\n",
	}, {
		name:       "timestamps",
		o:          ui.Options{Timestamps: true},
		build:      "web",
		do:         func(u *ui.BuildUI) { u.Say("s") },
		wantStdout: "2024-05-06T07:08:09Z: ==> web: s\n",
	}, {
		name:       "masked",
		build:      "web",
		do:         func(u *ui.BuildUI) { u.Say("password hunter2"); u.Error("hunter2!") },
		wantStdout: "==> web: password <sensitive>\n",
		wantStderr: "==> web: <sensitive>!\n",
	}, {
		name:       "machine-readable",
		o:          ui.Options{MachineReadable: true},
		build:      "web",
		do:         func(u *ui.BuildUI) { u.Say("a,b"); u.Error("x\ny"); u.Machine("artifact", "0", "id", "hunter2") },
		wantStdout: "1714979289,web,ui,say,a%!(PACKER_COMMA)b\n1714979289,web,ui,error,x\\ny\n1714979289,web,artifact,0,id,<sensitive>\n",
		reason:     "Packer escapes commas and newlines; errors go to stdout too",
	}, {
		name:   "machine lines only in machine mode",
		build:  "web",
		do:     func(u *ui.BuildUI) { u.Machine("artifact-count", "1") },
		reason: "as Packer, Machine prints nothing for people",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			o := tt.o
			o.Stdout, o.Stderr, o.Now, o.Mask = &stdout, &stderr, now, mask
			tt.do(ui.New(o).Build(tt.build))
			if diff := cmp.Diff(tt.wantStdout, stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s\n%s", diff, tt.reason)
			}
			if diff := cmp.Diff(tt.wantStderr, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s\n%s", diff, tt.reason)
			}
		})
	}
}

func TestAsk(t *testing.T) {
	var stdout strings.Builder
	c := ui.New(ui.Options{Stdout: &stdout, Stderr: &stdout, Stdin: strings.NewReader("yes\r\nno\n")})
	u := c.Build("web")
	for _, want := range []string{"yes", "no"} {
		got, err := u.Ask(context.Background(), "Continue?")
		if err != nil || got != want {
			t.Errorf("Ask = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := u.Ask(context.Background(), "Again?"); err == nil {
		t.Error("Ask at end of input succeeded")
	}
	if diff := cmp.Diff("==> web: Continue?\n==> web: Continue?\n==> web: Again?\n", stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}

	noInput := ui.New(ui.Options{Stdout: &stdout, Stderr: &stdout}).Build("web")
	if _, err := noInput.Ask(context.Background(), "?"); !errors.Is(err, protocol.ErrUnsupported) {
		t.Errorf("Ask without input: %v; want ErrUnsupported", err)
	}
}

// TestColourPerBuild: a build keeps its colour in every UI made for it, and
// builds are dealt the palette in the order they were assigned.
func TestColourPerBuild(t *testing.T) {
	var stdout strings.Builder
	c := ui.New(ui.Options{Stdout: &stdout, Stderr: io.Discard, Color: true})
	c.Assign("alpha", "beta")
	c.Build("beta").Say("1")
	c.Build("").Say("own")
	c.Build("alpha").Say("2")
	c.Build("beta").Plain("Build 'beta' finished.", false)
	c.Build("alpha").Plain("--> alpha: artifact", false)
	c.Build("").Plain("", false)
	want := "\x1b[1;36m==> beta: 1\x1b[0m\n" +
		"\x1b[1m==> own\x1b[0m\n" +
		"\x1b[1;32m==> alpha: 2\x1b[0m\n" +
		"\x1b[1;36mBuild 'beta' finished.\x1b[0m\n" +
		"\x1b[1;32m--> alpha: artifact\x1b[0m\n" +
		"\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
}
