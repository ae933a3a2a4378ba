package hcl2_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
)

// schemas are the fake components the tests decode with: what plugins
// would send as config_schema.
var schemas = map[string]string{
	"builder file": `{"type":"object","additionalProperties":false,"properties":{
		"target":{"type":"string"},"content":{"type":"string"},"count":{"type":"integer"},
		"tags":{"type":"object","additionalProperties":{"type":"string"}},
		"boot":{"type":"object","properties":{"wait":{"type":"string"},"keys":{"type":"array","items":{"type":"string"}}}},
		"disk":{"type":"array","items":{"$ref":"#/$defs/Disk"}}},
		"$defs":{"Disk":{"type":"object","properties":{"size":{"type":"integer"},"name":{"type":"string"}}}}}`,
	"provisioner shell-local": `{"type":"object","properties":{"inline":{"type":"array","items":{"type":"string"}},"command":{"type":"string"}}}`,
	"builder needy":           `{"type":"object","required":["target"],"properties":{"target":{"type":"string"}}}`,
	"post-processor manifest": `{"type":"object","properties":{"output":{"type":"string"}}}`,
	"post-processor checksum": `{"type":"object","properties":{"output":{"type":"string"}}}`,
	"datasource null":         `{"type":"object","properties":{"input":{"type":"string"}}}`,
}

var fakeSchemas = hcl2.SchemasFunc(func(kind, typ string) ([]byte, error) {
	s, ok := schemas[kind+" "+typ]
	if !ok {
		return nil, fmt.Errorf("no %s named %q", kind, typ)
	}
	return []byte(s), nil
})

// nullData is the null data source: its output is its input.
type nullData struct{ runs []map[string]any }

func (d *nullData) Execute(typ string, cfg map[string]any) (map[string]any, error) {
	d.runs = append(d.runs, cfg)
	if typ != "null" {
		return nil, fmt.Errorf("unknown data source %q", typ)
	}
	return map[string]any{"output": cfg["input"]}, nil
}

// write writes files into a new directory and returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, path string, o hcl2.Options) (*hcl2.Result, error) {
	t.Helper()
	if o.Schemas == nil {
		o.Schemas = fakeSchemas
	}
	if o.Datasources == nil {
		o.Datasources = &nullData{}
	}
	o.PackerVersion = "1.2.3"
	o.Now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	return hcl2.Load(path, o)
}

func mustLoad(t *testing.T, path string, o hcl2.Options) *hcl2.Result {
	t.Helper()
	res, err := load(t, path, o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return res
}

// configs returns each builder's configuration, by build name, with
// numbers as json.Number turned into strings for easy comparison.
func configs(t *template.Template) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, b := range t.Builders {
		raw, _ := json.Marshal(b.Config)
		var m map[string]any
		json.Unmarshal(raw, &m) //nolint:errcheck // just marshalled
		out[b.Name] = m
	}
	return out
}

const precedenceTemplate = `
variable "who" {
  type    = string
  default = "default"
}
source "file" "a" {
  target  = "out.txt"
  content = var.who
}
build {
  sources = ["source.file.a"]
}
`

func TestVariablePrecedence(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		env     []string
		varFile string
		vars    map[string]string
		want    string
		reason  string
	}{
		{name: "default", want: "default"},
		{name: "env", env: []string{"PKR_VAR_who=env"}, want: "env"},
		{name: "auto file beats env", env: []string{"PKR_VAR_who=env"},
			files: map[string]string{"x.auto.pkrvars.hcl": `who = "auto"`}, want: "auto"},
		{name: "later auto file wins", files: map[string]string{"a.auto.pkrvars.hcl": `who = "a"`, "b.auto.pkrvars.hcl": `who = "b"`}, want: "b",
			reason: "auto files are read in lexical order"},
		{name: "var file beats auto file", files: map[string]string{"x.auto.pkrvars.hcl": `who = "auto"`, "v.pkrvars.hcl": `who = "file"`},
			varFile: "v.pkrvars.hcl", want: "file"},
		{name: "json var file", files: map[string]string{"v.json": `{"who": "json"}`}, varFile: "v.json", want: "json"},
		{name: "-var beats everything", env: []string{"PKR_VAR_who=env"},
			files:   map[string]string{"x.auto.pkrvars.hcl": `who = "auto"`, "v.pkrvars.hcl": `who = "file"`},
			varFile: "v.pkrvars.hcl", vars: map[string]string{"who": "flag"}, want: "flag"},
		{name: "undeclared env ignored", env: []string{"PKR_VAR_nobody=x"}, want: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"main.pkr.hcl": precedenceTemplate}
			for k, v := range tc.files {
				files[k] = v
			}
			dir := write(t, files)
			o := hcl2.Options{Environ: tc.env, Vars: tc.vars}
			if tc.varFile != "" {
				o.VarFiles = []string{filepath.Join(dir, tc.varFile)}
			}
			res := mustLoad(t, dir, o)
			if diff := cmp.Diff(tc.want, configs(res.Template)["file.a"]["content"]); diff != "" {
				t.Errorf("content (-want +got):\n%s\n%s", diff, tc.reason)
			}
			if got := res.Context.UserVars["who"]; got != tc.want {
				t.Errorf("UserVars[who] = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLocalsDataAndSources(t *testing.T) {
	dir := write(t, map[string]string{
		"vars.pkr.hcl": `
variable "sizes" {
  type    = list(number)
  default = [1, 2]
}
variable "secret" {
  type      = string
  default   = "hunter2"
  sensitive = true
}
`,
		"main.pkr.hcl": `
locals {
  # declared before what it uses: evaluation follows references
  greeting = "${local.word}, ${data.null.name.output}"
  word     = upper(local.base)
  base     = "hello"
}
local "token" {
  expression = "tok-${var.secret}"
  sensitive  = true
}
data "null" "name" {
  input = "from-${local.base}"
}
source "file" "a" {
  target  = "${source.name}.txt"
  content = local.greeting
  tags    = { who = source.type }
  boot {
    wait = "10s"
  }
  dynamic "disk" {
    for_each = var.sizes
    content {
      size = disk.value
      name = "d${disk.key}"
    }
  }
}
build {
  name = "b"
  source "file.a" {
    name    = "renamed"
    content = "overridden"
  }
  sources = ["source.file.a"]
}
`,
	})
	data := &nullData{}
	res := mustLoad(t, dir, hcl2.Options{Datasources: data, Vars: map[string]string{"sizes": "[10, 20, 30]"}})
	want := map[string]map[string]any{
		"b.file.a": {"target": "a.txt", "content": "HELLO, from-hello", "tags": map[string]any{"who": "file"},
			"boot": map[string]any{"wait": "10s"},
			"disk": []any{map[string]any{"size": 10.0, "name": "d0"}, map[string]any{"size": 20.0, "name": "d1"}, map[string]any{"size": 30.0, "name": "d2"}}},
		"b.file.renamed": {"target": "renamed.txt", "content": "overridden", "tags": map[string]any{"who": "file"},
			"boot": map[string]any{"wait": "10s"},
			"disk": []any{map[string]any{"size": 10.0, "name": "d0"}, map[string]any{"size": 20.0, "name": "d1"}, map[string]any{"size": 30.0, "name": "d2"}}},
	}
	if diff := cmp.Diff(want, configs(res.Template)); diff != "" {
		t.Errorf("builder configs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]map[string]any{{"input": "from-hello"}}, data.runs); diff != "" {
		t.Errorf("data source runs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"secret"}, res.Template.SensitiveVariables); diff != "" {
		t.Errorf("SensitiveVariables (-want +got):\n%s", diff)
	}
	m := template.NewMasker(res.Template.MaskedValues(res.Context.UserVars))
	if got, want := m.Mask("pw hunter2 token tok-hunter2"), "pw <sensitive> token <sensitive>"; got != want {
		t.Errorf("Mask = %q, want %q", got, want)
	}
	if n, ok := res.Template.Builders[0].Config["disk"].([]any)[0].(map[string]any)["size"].(json.Number); !ok || n != "10" {
		t.Errorf("disk[0].size = %#v, want json.Number 10", res.Template.Builders[0].Config["disk"])
	}
}

func TestProvisionersOnlyExceptOverride(t *testing.T) {
	dir := write(t, map[string]string{"main.pkr.hcl": `
source "file" "a" {
  target = "a"
}
source "file" "b" {
  target = "b"
}
build {
  sources = ["source.file.a", "source.file.b"]
  provisioner "shell-local" {
    only   = ["file.a"]
    inline = ["only a, in ${source.name}"]
  }
  provisioner "shell-local" {
    except       = ["file.a"]
    inline       = ["not a"]
    pause_before = "2s"
    max_retries  = 3
    timeout      = "1m"
  }
  provisioner "shell-local" {
    inline   = ["both ${build.ID}${build.TargetPath}"]
    override = {
      "file.b" = { inline = ["b's own"] }
    }
  }
  error-cleanup-provisioner "shell-local" {
    command = "cleanup ${source.name}"
  }
  post-processor "manifest" {
    except = ["file.b"]
    output = "${source.name}.json"
  }
  post-processors {
    post-processor "checksum" {
      name = "sum"
    }
    post-processor "manifest" {
      keep_input_artifact = true
    }
  }
}
`})
	res := mustLoad(t, dir, hcl2.Options{})
	type prov struct {
		Only   []string
		Config map[string]any
		Pause  time.Duration
		Tries  int
		Limit  time.Duration
	}
	var got []prov
	for _, p := range res.Template.Provisioners {
		got = append(got, prov{p.Only, p.Config, p.PauseBefore, p.MaxRetries, p.Timeout})
	}
	want := []prov{
		{Only: []string{"file.a"}, Config: map[string]any{"inline": []any{"only a, in a"}}},
		{Only: []string{"file.b"}, Config: map[string]any{"inline": []any{"not a"}}, Pause: 2 * time.Second, Tries: 3, Limit: time.Minute},
		{Only: []string{"file.a"}, Config: map[string]any{"inline": []any{"both {{build `ID`}}{{build `TargetPath`}}"}}},
		{Only: []string{"file.b"}, Config: map[string]any{"inline": []any{"b's own"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("provisioners (-want +got):\n%s", diff)
	}
	if got := res.Template.ErrorCleanupFor("file.b").Config["command"]; got != "cleanup b" {
		t.Errorf("error cleanup of file.b: command = %v", got)
	}
	var seqs [][]string
	for _, seq := range res.Template.PostProcessors {
		var names []string
		for _, pp := range seq {
			keep := ""
			if pp.KeepInputArtifact != nil {
				keep = fmt.Sprintf(" keep=%v", *pp.KeepInputArtifact)
			}
			names = append(names, fmt.Sprintf("%s(%s)%s %v", pp.Name, pp.Type, keep, pp.Only))
		}
		seqs = append(seqs, names)
	}
	wantSeqs := [][]string{
		{"manifest(manifest) [file.a]"},
		{"sum(checksum) [file.a]", "manifest(manifest) keep=true [file.a]"},
		{"sum(checksum) [file.b]", "manifest(manifest) keep=true [file.b]"},
	}
	if diff := cmp.Diff(wantSeqs, seqs); diff != "" {
		t.Errorf("post-processor sequences (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		vars  map[string]string
		// want are substrings of the error, in order.
		want []string
	}{
		{
			name: "unknown attribute",
			files: map[string]string{"main.pkr.hcl": `source "file" "a" {
  target = "x"
  colour = "red"
}
build { sources = ["source.file.a"] }
`},
			want: []string{"main.pkr.hcl:3:3: Unsupported argument", "    3 |   colour = \"red\"\n      |   ^^^^^^"},
		},
		{
			name: "wrong type",
			files: map[string]string{"main.pkr.hcl": `source "file" "a" {
  target = ["x"]
}
build { sources = ["source.file.a"] }
`},
			want: []string{"main.pkr.hcl:2:12: Incorrect attribute value type", "string required", "^^^^^"},
		},
		{
			name: "undeclared -var",
			files: map[string]string{"main.pkr.hcl": `variable "a" {}
variable "b" { default = 1 }
`},
			vars: map[string]string{"a": "1", "zzz": "2"},
			want: []string{"-var sets undeclared variables: zzz (the template declares: a, b)"},
		},
		{
			name: "unset variable",
			files: map[string]string{"main.pkr.hcl": `variable "region" {
  type = string
}
`},
			want: []string{"main.pkr.hcl:1:1: Unset variable", `variable "region" has no default`},
		},
		{
			name: "validation",
			files: map[string]string{"main.pkr.hcl": `variable "size" {
  type    = number
  default = 3
  validation {
    condition     = var.size > 5
    error_message = "The size must be above 5."
  }
}
`},
			want: []string{"main.pkr.hcl:5:21: Invalid value for variable: The size must be above 5."},
		},
		{
			name: "validation of a -var file value",
			files: map[string]string{
				"main.pkr.hcl": `variable "name" {
  validation {
    condition     = length(var.name) < 4
    error_message = "Too long."
  }
}
`,
				"v.auto.pkrvars.hcl": "name = \"abcdef\"\n"},
			want: []string{"v.auto.pkrvars.hcl:1:8: Invalid value for variable: Too long."},
		},
		{
			name: "missing required argument",
			files: map[string]string{"main.pkr.hcl": `source "needy" "a" {
}
source "needy" "b" {
}
build {
  sources = ["source.needy.a"]
  source "needy.b" {
    target = "given by the build"
  }
}
`},
			want: []string{"main.pkr.hcl:1:1: Missing required argument: builder \"needy\" needs the argument \"target\""},
		},
		{
			name:  "locals cycle",
			files: map[string]string{"main.pkr.hcl": "locals {\n  a = local.b\n  b = local.a\n}\n"},
			want:  []string{"Cycle in locals and data sources", "local.a, local.b"},
		},
		{
			name:  "unknown source",
			files: map[string]string{"main.pkr.hcl": "source \"file\" \"a\" {}\nbuild {\n  sources = [\"source.file.b\"]\n}\n"},
			want:  []string{"main.pkr.hcl:3:13: Unknown source", `(sources: source.file.a)`},
		},
		{
			name:  "unknown component",
			files: map[string]string{"main.pkr.hcl": "source \"nope\" \"a\" {}\nbuild {\n  sources = [\"source.nope.a\"]\n}\n"},
			want:  []string{"main.pkr.hcl:1:1: Unknown builder", `no builder named "nope"`},
		},
		{
			name:  "only names an unknown source",
			files: map[string]string{"main.pkr.hcl": "source \"file\" \"a\" {}\nbuild {\n  sources = [\"source.file.a\"]\n  provisioner \"shell-local\" {\n    only = [\"file.z\"]\n  }\n}\n"},
			want:  []string{"main.pkr.hcl:5:12: Unknown source in only", `"file.z" is not a source of this build (sources: file.a)`},
		},
		{
			name:  "required_version",
			files: map[string]string{"main.pkr.hcl": "packer {\n  required_version = \">= 2.0.0\"\n}\n"},
			want:  []string{"main.pkr.hcl:2:22: Unsupported packer version", "requires packer >= 2.0.0; this is packer 1.2.3"},
		},
		{
			name:  "bad -var for a typed variable",
			files: map[string]string{"main.pkr.hcl": "variable \"n\" {\n  type = number\n}\n"},
			vars:  map[string]string{"n": "many"},
			want:  []string{"Invalid value for variable", `variable "n" (from -var n)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t, tc.files)
			_, err := load(t, dir, hcl2.Options{Vars: tc.vars})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, hcl2.ErrTemplate) {
				t.Errorf("error does not wrap ErrTemplate: %v", err)
			}
			var diags hcl.Diagnostics
			if !errors.As(err, &diags) || !diags.HasErrors() {
				t.Errorf("error does not carry hcl.Diagnostics")
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error lacks %q (in order):\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestSyntaxOnlyNeedsNoPlugins(t *testing.T) {
	dir := write(t, map[string]string{"main.pkr.hcl": `
data "null" "x" {
  input = "a"
}
source "anything" "a" {
  whatever = data.null.x.output
}
build {
  sources = ["source.anything.a"]
}
`})
	res, err := hcl2.Load(dir, hcl2.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Template.Builders[0].Config["whatever"]; got != "<unknown>" {
		t.Errorf("whatever = %v, want <unknown> (the data source did not run)", got)
	}
}

func TestEnvInVariableDefaultsOnly(t *testing.T) {
	dir := write(t, map[string]string{"main.pkr.hcl": `
variable "home" {
  default = env("MY_HOME")
}
source "file" "a" {
  content = var.home
}
build {
  sources = ["source.file.a"]
}
`})
	res := mustLoad(t, dir, hcl2.Options{Environ: []string{"MY_HOME=/home/me"}})
	if got := res.Template.Builders[0].Config["content"]; got != "/home/me" {
		t.Errorf("content = %v, want /home/me", got)
	}
	dir = write(t, map[string]string{"main.pkr.hcl": `
source "file" "a" {
  content = env("MY_HOME")
}
build {
  sources = ["source.file.a"]
}
`})
	if _, err := load(t, dir, hcl2.Options{Environ: []string{"MY_HOME=/home/me"}}); err == nil || !strings.Contains(err.Error(), `Call to unknown function`) {
		t.Errorf("env outside a variable default: err = %v, want an unknown function", err)
	}
}

func TestJSONSyntax(t *testing.T) {
	dir := write(t, map[string]string{
		"vars.pkr.hcl": "variable \"who\" {\n  default = \"json\"\n}\n",
		"main.pkr.json": `{
  "source": {"file": {"a": {"target": "a.txt", "content": "hello ${var.who}", "boot": {"wait": "1s"}}}},
  "build": {"sources": ["source.file.a"], "provisioner": {"shell-local": {"inline": ["echo ${source.name}"]}}}
}`,
	})
	res := mustLoad(t, dir, hcl2.Options{})
	want := map[string]map[string]any{"file.a": {"target": "a.txt", "content": "hello json", "boot": map[string]any{"wait": "1s"}}}
	if diff := cmp.Diff(want, configs(res.Template)); diff != "" {
		t.Errorf("configs (-want +got):\n%s", diff)
	}
	if got := res.Template.Provisioners[0].Config["inline"]; !cmp.Equal(got, []any{"echo a"}) {
		t.Errorf("provisioner inline = %v", got)
	}
}

// TestPlaces: each component says where it is written, so that an error a
// plugin reports at a key's JSON Pointer can name the file, line and
// column, as it does for JSON templates: the key's attribute (or block),
// the override that set it, or the component's block for a key it lacks.
func TestPlaces(t *testing.T) {
	dir := write(t, map[string]string{"main.pkr.hcl": `source "file" "a" {
  target  = "a"
  content = "x"
  boot {
    wait = "1s"
  }
}
build {
  sources = ["source.file.a"]
  source "source.file.a" {
    name    = "b"
    content = "y"
  }
  provisioner "shell-local" {
    inline = ["hi"]
  }
  post-processor "manifest" {
    output = "m.json"
  }
}
`})
	res := mustLoad(t, dir, hcl2.Options{})
	file := filepath.Join(dir, "main.pkr.hcl")
	tpl := res.Template
	if len(tpl.Builders) != 2 || len(tpl.Provisioners) != 2 || len(tpl.PostProcessors) != 2 {
		t.Fatalf("got %d builders, %d provisioners, %d post-processor sequences, want 2 of each", len(tpl.Builders), len(tpl.Provisioners), len(tpl.PostProcessors))
	}
	tests := []struct {
		name    string
		place   *template.Place
		pointer string
		want    string
		reason  string
	}{
		{"builder a, a key", tpl.Builders[0].Place, "/content", "3:3", "the attribute's name"},
		{"builder a, a nested key", tpl.Builders[0].Place, "/boot/wait", "4:3", "the top-level block"},
		{"builder a, a missing key", tpl.Builders[0].Place, "/source", "1:1", "the source block"},
		{"builder a, the component", tpl.Builders[0].Place, "", "1:1", ""},
		{"builder b, an overridden key", tpl.Builders[1].Place, "/content", "12:5", "the build's source block set it"},
		{"builder b, a key of its source", tpl.Builders[1].Place, "/target", "2:3", ""},
		{"builder b, a missing key", tpl.Builders[1].Place, "/source", "10:3", "the build's source block"},
		{"provisioner", tpl.Provisioners[1].Place, "/inline/0", "15:5", ""},
		{"provisioner, a missing key", tpl.Provisioners[1].Place, "/script", "14:3", ""},
		{"post-processor", tpl.PostProcessors[0][0].Place, "/output", "18:5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.place == nil {
				t.Fatal("no Place")
			}
			if got, want := tt.place.Where(tt.pointer), file+":"+tt.want; got != want {
				t.Errorf("Where(%q) = %s, want %s (%s)", tt.pointer, got, want, tt.reason)
			}
		})
	}
}
