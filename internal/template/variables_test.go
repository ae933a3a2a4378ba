package template_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/template"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveVariables(t *testing.T) {
	dir := t.TempDir()
	fileA := writeFile(t, dir, "a.json", `{"region": "file-a", "size": "10", "extra": "from-file"}`)
	fileB := writeFile(t, dir, "b.json", `{"region": "file-b"}`)
	env := map[string]string{"HOME": "/home/u", "ZONE": "z1"}
	getenv := func(k string) string { return env[k] }

	const vars = `{"builders":[{"type":"null"}], "variables": {
		"region": "default",
		"size": "1",
		"home": "{{env ` + "`HOME`" + `}}",
		"url": "https://{{user ` + "`host`" + `}}/{{user ` + "`region`" + `}}",
		"host": "{{user ` + "`region`" + `}}.example.com",
		"stamp": "{{timestamp}}-{{packer_version}}",
		"token": null
	}}`
	tests := []struct {
		name   string
		cli    map[string]string
		files  []string
		want   map[string]string
		reason string
	}{
		{
			name: "defaults and env",
			cli:  map[string]string{"token": "t"},
			want: map[string]string{"region": "default", "size": "1", "home": "/home/u", "token": "t",
				"url": "https://default.example.com/default", "host": "default.example.com", "stamp": "1709618889-1.2.3"},
			reason: "user may refer to a variable declared later; timestamp is the context's",
		},
		{
			name:  "files in order then -var",
			cli:   map[string]string{"token": "t", "size": "99"},
			files: []string{fileA, fileB},
			want: map[string]string{"region": "file-b", "size": "99", "home": "/home/u", "token": "t", "extra": "from-file",
				"url": "https://file-b.example.com/file-b", "host": "file-b.example.com", "stamp": "1709618889-1.2.3"},
			reason: "a later file wins over an earlier one, -var wins over files; undeclared file keys are kept, as in Packer",
		},
		{
			name: "values given by -var are interpolated too",
			cli:  map[string]string{"token": "{{env `ZONE`}}", "region": "r"},
			want: map[string]string{"region": "r", "size": "1", "home": "/home/u", "token": "z1",
				"url": "https://r.example.com/r", "host": "r.example.com", "stamp": "1709618889-1.2.3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := template.Parse(strings.NewReader(vars), "t.json")
			if err != nil {
				t.Fatal(err)
			}
			ctx := template.NewContext(tmpl, "1.2.3", runStart)
			got, err := ctx.ResolveVariables(tmpl, tt.cli, tt.files, getenv)
			if err != nil {
				t.Fatalf("ResolveVariables: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ResolveVariables (-want +got):\n%s\nreason: %s", diff, tt.reason)
			}
			if ctx.UserVars != nil {
				t.Error("ResolveVariables modified the context")
			}
		})
	}
}

func TestResolveVariablesErrors(t *testing.T) {
	dir := t.TempDir()
	badSyntax := writeFile(t, dir, "syntax.json", "{\n  \"a\": \"x\",\n}")
	notString := writeFile(t, dir, "number.json", `{"a": 1}`)
	dup := writeFile(t, dir, "dup.json", `{"a": "1", "a": "2"}`)
	notObject := writeFile(t, dir, "list.json", `["a"]`)
	tests := []struct {
		name  string
		vars  string // the variables object
		cli   map[string]string
		files []string
		kind  error
		want  []string // substrings, one per reported error
	}{
		{name: "missing required, all named", vars: `{"a": null, "b": "x", "c": null}`, kind: template.ErrVariable,
			want: []string{"t.json: required variables not set: a, c"}},
		{name: "cycle", vars: `{"a": "{{user ` + "`b`" + `}}", "b": "{{user ` + "`c`" + `}}", "c": "{{user ` + "`a`" + `}}"}`, kind: template.ErrRender,
			want: []string{"variables.c: at <user `a`>: error calling user: variables refer to each other in a cycle: a -> b -> c -> a"}},
		{name: "self reference", vars: `{"a": "{{user ` + "`a`" + `}}"}`, kind: template.ErrRender,
			want: []string{"cycle: a -> a"}},
		{name: "unknown reference", vars: `{"a": "x", "b": "{{user ` + "`nope`" + `}}", "c": "{{user ` + "`b`" + `}}"}`, kind: template.ErrRender,
			want: []string{`t.json: variables.b: at <user ` + "`nope`" + `>: error calling user: unknown variable "nope"`}},
		{name: "build function in a variable", vars: `{"a": "{{build_name}}"}`, kind: template.ErrRender,
			want: []string{"variables.a: at <build_name>: error calling build_name: build_name is not available here"}},
		{name: "var file syntax", vars: `{"a": "x"}`, files: []string{badSyntax}, kind: template.ErrSyntax,
			want: []string{"syntax.json:3:1: invalid character '}'"}},
		{name: "var file value not a string", vars: `{"a": "x"}`, files: []string{notString}, kind: template.ErrInvalid,
			want: []string{"number.json:1:7: a: expected a string, got number"}},
		{name: "var file duplicate key", vars: `{"a": "x"}`, files: []string{dup}, kind: template.ErrDuplicateKey,
			want: []string{`dup.json:1:12: duplicate key "a"`}},
		{name: "var file not an object", vars: `{"a": "x"}`, files: []string{notObject}, kind: template.ErrInvalid,
			want: []string{"list.json:1:1: variable file: expected an object, got array"}},
		{name: "var file missing", vars: `{"a": "x"}`, files: []string{filepath.Join(dir, "none.json")}, kind: template.ErrVariable,
			want: []string{"none.json: reading variable file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := template.Parse(strings.NewReader(`{"builders":[{"type":"null"}],"variables":`+tt.vars+`}`), "t.json")
			if err != nil {
				t.Fatal(err)
			}
			_, err = template.ResolveVariables(tmpl, tt.cli, tt.files, func(string) string { return "" })
			if err == nil {
				t.Fatal("ResolveVariables succeeded, want an error")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v does not wrap %v", err, tt.kind)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestResolveVariablesUsesOSEnvByDefault(t *testing.T) {
	t.Setenv("PACKER_TEMPLATE_TEST_VAR", "from-os")
	tmpl, err := template.Parse(strings.NewReader(`{"builders":[{"type":"null"}],"variables":{"v":"{{env `+"`PACKER_TEMPLATE_TEST_VAR`"+`}}"}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := template.ResolveVariables(tmpl, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["v"] != "from-os" {
		t.Errorf("v = %q, want %q", got["v"], "from-os")
	}
}

// TestUndeclaredVars: -var may set a variable the template does not declare
// (Packer 1.x accepts it); the names come back for a warning.
func TestUndeclaredVars(t *testing.T) {
	tpl, err := template.Parse(strings.NewReader(`{"variables": {"a": "x"}, "builders": [{"type": "null", "name": "{{user `+"`zz`"+`}}"}]}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	cli := map[string]string{"zz": "1", "b": "2", "a": "y"}
	names, msg := template.UndeclaredVars(tpl, cli)
	if diff := cmp.Diff([]string{"b", "zz"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if want := "-var sets variables the template does not declare: b, zz (it declares: a)"; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	vars, err := template.ResolveVariables(tpl, cli, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"a": "y", "b": "2", "zz": "1"}, vars); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
	if names, msg := template.UndeclaredVars(tpl, map[string]string{"a": "1"}); names != nil || msg != "" {
		t.Errorf("declared only: %q %q", names, msg)
	}
}
