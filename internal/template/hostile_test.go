package template_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/template"
)

// doubling returns a template whose variable vN is v(N-1) twice, n times:
// v40 would weigh a terabyte.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString(`{"builders":[{"type":"null"}], "variables": {"v0": "ab"`)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ",\n\"v%d\": \"{{user `v%d`}}{{user `v%d`}}\"", i, i-1, i-1)
	}
	b.WriteString("}}")
	return b.String()
}

// TestResourceBombs: interpolation that would take all the memory there is
// fails instead, naming the variable or key, with an error wrapping
// ErrTooLarge; the heap stays within a few times the bound.
func TestResourceBombs(t *testing.T) {
	// 40 variables of 1 MiB each: 40 MiB, under MaxRenderedTotal, then one
	// more set of them passes it.
	var wide strings.Builder
	wide.WriteString(`{"builders":[{"type":"null"}], "variables": {"big": "{{replace_all ` + "`.`" + ` ` + "`xxxxxxxxxxxxxxxx`" + ` ` + "`" + strings.Repeat(".", 1<<16) + "`" + `}}"`)
	for i := range 80 {
		fmt.Fprintf(&wide, ",\n\"w%02d\": \"{{user `big`}}\"", i)
	}
	wide.WriteString("}}")
	tests := []struct {
		name    string
		tmpl    string
		wantMsg string
		reason  string
	}{{
		name:    "doubling",
		tmpl:    doubling(40),
		wantMsg: "variables.v24: renders to more than 16 MiB",
		reason:  "v23 is 16 MiB (2 bytes doubled 23 times), v24 would be 32 MiB",
	}, {
		name:    "wide",
		tmpl:    wide.String(),
		wantMsg: "variables.w63: with the values rendered before it, more than 64 MiB in all",
		reason:  "big and w00..w62 are 1 MiB each: 64 MiB; w63 passes it",
	}, {
		name:    "replace_all amplifies",
		tmpl:    `{"builders":[{"type":"null"}], "variables": {"a": "` + strings.Repeat("a", 1<<13) + `", "b": "` + strings.Repeat("b", 1<<12) + `", "r": "{{replace_all ` + "`a` (user `b`) (user `a`)" + `}}"}}`,
		wantMsg: "variables.r: at <replace_all `a` (user `b`) (user `a`)>: error calling replace_all: renders to more than 16 MiB",
		reason:  "8 KiB of a, each replaced by 4 KiB: 32 MiB, refused before it is allocated",
	}, {
		name:    "replace with a count",
		tmpl:    `{"builders":[{"type":"null"}], "variables": {"a": "` + strings.Repeat("a", 1<<13) + `", "b": "` + strings.Repeat("b", 1<<12) + `", "r": "{{replace ` + "`a` (user `b`) 5000 (user `a`)" + `}}"}}`,
		wantMsg: "variables.r: at <replace `a` (user `b`) 5000 (user `a`)>: error calling replace: renders to more than 16 MiB",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := template.Parse(strings.NewReader(tt.tmpl), "bomb.json")
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = template.ResolveVariables(tmpl, nil, nil, nil)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, template.ErrTooLarge) || !errors.Is(err, template.ErrRender) {
				t.Fatalf("err = %v; want one wrapping ErrTooLarge and ErrRender (%s)", err, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v\nwant it to contain %q (%s)", err, tt.wantMsg, tt.reason)
			}
			// Everything allocated while resolving, freed or not: a
			// bound on the work done, not only on what is kept.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*template.MaxRenderedTotal {
				t.Errorf("resolving allocated %d MiB; want at most %d MiB", alloc>>20, 8*template.MaxRenderedTotal>>20)
			}
		})
	}
}

// TestRenderConfigTotal: one configuration whose strings together render
// to more than MaxRenderedTotal fails at the key that passes it.
func TestRenderConfigTotal(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	c := &template.Context{UserVars: map[string]string{"big": big}}
	cfg := map[string]any{}
	list := make([]any, 100)
	for i := range list {
		list[i] = "{{user `big`}}"
	}
	cfg["lines"] = list
	_, err := c.RenderConfigAt("builders[0]", cfg)
	if !errors.Is(err, template.ErrTooLarge) || !strings.Contains(err.Error(), "builders[0].lines[64]: ") {
		t.Fatalf("err = %v; want ErrTooLarge at builders[0].lines[64]", err)
	}
}

// TestInvalidTemplateValues: bytes that are not UTF-8 and negative
// durations are errors with their position, not silently "fixed".
func TestInvalidTemplateValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []problem
	}{{
		name: "invalid UTF-8",
		in:   "{\"builders\":[{\"type\":\"null\",\n \"x\": \"caf\xe9\"}]}",
		want: []problem{{"syntax", "2:11", "invalid UTF-8 (byte 0xe9)"}},
	}, {
		name: "negative durations",
		in: `{"builders":[{"type":"null"}], "provisioners": [
			{"type":"s", "pause_before": "-5s", "timeout": -1},
			{"type":"s", "pause_before": "0s", "timeout": "1m"}]}`,
		want: []problem{
			{"invalid", "2:33", `provisioners[0].pause_before: negative duration "-5s"`},
			{"invalid", "2:51", "provisioners[0].timeout: negative duration -1"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := template.Parse(strings.NewReader(tt.in), "t.json")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if diff := cmp.Diff(tt.want, problems(t, err, tt.want)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
