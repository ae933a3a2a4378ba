package template_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/template"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// rendered is what a run would send to plugins for one build.
type rendered struct {
	Builder        map[string]any     `json:"builder"`
	Provisioners   []map[string]any   `json:"provisioners"`
	PostProcessors [][]map[string]any `json:"post_processors"`
}

// goldenDoc is the golden content of a template: how it parses, the
// variables it resolves to and the configs of each build.
type goldenDoc struct {
	Template  *template.Template   `json:"template"`
	Variables map[string]string    `json:"variables"`
	Builds    map[string]*rendered `json:"builds"`
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d templates in testdata, want at least 2", len(files))
	}
	env := map[string]string{"HOME": "/home/tester", "OUT_DIR": "/out"}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			tmpl, err := template.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.Dir = "/templates" // machine-independent output
			ctx := template.NewContext(tmpl, "1.0.0", runStart)
			cli := map[string]string{}
			if slices.ContainsFunc(tmpl.Variables, func(v *template.Variable) bool { return v.Name == "password" }) {
				cli["password"] = "pw"
			}
			ctx.UserVars, err = ctx.ResolveVariables(tmpl, cli, nil, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			doc := goldenDoc{Template: tmpl, Variables: ctx.UserVars, Builds: map[string]*rendered{}}
			for _, b := range tmpl.Builders {
				bctx := ctx.ForBuild(b)
				r := &rendered{}
				if r.Builder, err = bctx.RenderConfigAt(b.Key, b.Config); err != nil {
					t.Fatal(err)
				}
				for _, p := range tmpl.Provisioners {
					if p.Skip(b.Name) {
						continue
					}
					cfg, err := bctx.RenderConfigAt(p.Key, p.ConfigFor(b.Name))
					if err != nil {
						t.Fatal(err)
					}
					r.Provisioners = append(r.Provisioners, cfg)
				}
				for _, seq := range tmpl.PostProcessors {
					var out []map[string]any
					for _, pp := range seq {
						if pp.Skip(b.Name) {
							continue
						}
						cfg, err := bctx.RenderConfigAt(pp.Key, pp.Config)
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, cfg)
					}
					r.PostProcessors = append(r.PostProcessors, out)
				}
				doc.Builds[b.Name] = r
			}
			got, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(file, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(decode(t, want), decode(t, got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s\nrun go test -update if the change is intended", golden, diff)
			}
		})
	}
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
