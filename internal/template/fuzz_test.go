package template_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-stdio/packer/internal/template"
)

// FuzzParse checks that Parse never panics, that every failure is an
// *Error or ErrorList with a known kind, and that a template it accepts has
// the invariants callers rely on.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"builders":[{"type":"file"}]}`,
		`{"builders":[{"type":"file"},{"type":"file"}]}`,
		`{"builders":[{"type":"a"}],"post-processors":["x",{"type":"y"},["z",{"type":"w","only":["a"]}]]}`,
		`{"builders":[{"type":"a"}],"provisioners":[{"type":"s","override":{"a":{}},"pause_before":"1s","max_retries":"3"}]}`,
		`{"a":1,"a":2}`, `{"variables":{"x":null,"y":1.5e3,"z":true}}`, "{\"builders\":[{\"type\":\"\xff\"}]}",
		`{"builders":[{"type":"a"}]} trailing`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tmpl, err := template.Parse(strings.NewReader(in), "f.json")
		if err != nil {
			var e *template.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a template error", err, err)
			}
			if _, known := kinds[e.Kind]; !known {
				t.Fatalf("error %v has kind %v, not one of the sentinels", err, e.Kind)
			}
			if tmpl != nil {
				t.Fatal("Parse returned a template and an error")
			}
			return
		}
		if len(tmpl.Builders) == 0 {
			t.Fatal("accepted a template without builders")
		}
		seen := map[string]bool{}
		for _, b := range tmpl.Builders {
			if b.Name == "" || b.Type == "" || b.Config == nil || seen[b.Name] {
				t.Fatalf("bad builder %+v", b)
			}
			seen[b.Name] = true
		}
		for _, p := range tmpl.Provisioners {
			if p.Type == "" || p.Config == nil {
				t.Fatalf("bad provisioner %+v", p)
			}
			for _, n := range append(append([]string{}, p.Only...), p.Except...) {
				if !seen[n] {
					t.Fatalf("provisioner names unknown build %q", n)
				}
			}
		}
		for _, seq := range tmpl.PostProcessors {
			if len(seq) == 0 {
				t.Fatal("empty post-processor sequence")
			}
			for _, pp := range seq {
				if pp.Type == "" || pp.Name == "" || pp.Config == nil {
					t.Fatalf("bad post-processor %+v", pp)
				}
			}
		}
	})
}
