package template_test

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/template"
)

var runStart = time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("X", 3600))

func buildContext() *template.Context {
	return &template.Context{
		UserVars:      map[string]string{"name": "web", "empty": "", "path": "a/b/c"},
		BuildName:     "web-1",
		BuildType:     "null",
		TemplateDir:   "/tmpl",
		PackerVersion: "1.2.3",
		Timestamp:     runStart,
	}
}

func TestRender(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
		build          map[string]any
		reason         string
	}{
		{name: "plain", in: "no actions", want: "no actions"},
		{name: "user", in: "{{user `name`}}-{{ user \"empty\" }}.", want: "web-."},
		{name: "build_name", in: "{{build_name}}", want: "web-1"},
		{name: "build_type", in: "{{build_type}}", want: "null"},
		{name: "timestamp", in: "{{timestamp}}", want: "1709618889", reason: "unix seconds of Context.Timestamp"},
		{name: "isotime default", in: "{{isotime}}", want: "2024-03-05T06:08:09Z", reason: "UTC, RFC 3339"},
		{name: "isotime layout", in: "{{isotime `2006-01-02 15h`}}", want: "2024-03-05 06h"},
		{name: "strftime", in: "{{strftime `%Y-%m-%d %H:%M:%S %%`}}", want: "2024-03-05 06:08:09 %", reason: "C directives, on the same UTC time as isotime"},
		{name: "pwd", in: "{{pwd}}", want: wd},
		{name: "template_dir", in: "{{template_dir}}/x", want: "/tmpl/x"},
		{name: "upper", in: "{{upper `aBc`}}", want: "ABC"},
		{name: "lower", in: "{{user `name` | upper | lower}}", want: "web"},
		{name: "replace", in: "{{replace `a` `x` 2 `banana`}}", want: "bxnxna", reason: "old new n s, like strings.Replace"},
		{name: "replace negative n", in: "{{replace `a` `x` -1 `banana`}}", want: "bxnxnx"},
		{name: "replace_all", in: "{{replace_all `/` `-` (user `path`)}}", want: "a-b-c"},
		{name: "split", in: "{{split (user `path`) `/` 2}}", want: "c"},
		{name: "packer_version", in: "v{{packer_version}}", want: "v1.2.3"},
		{name: "build placeholder", in: "ssh {{build `Host`}}:{{build `Port`}}", want: "ssh {{build `Host`}}:{{build `Port`}}",
			reason: "before the builder ran, build renders itself so it can be rendered again"},
		{name: "build values", in: "ssh {{build `Host`}}:{{build `Port`}}", want: "ssh 10.0.0.1:22",
			build: map[string]any{"Host": "10.0.0.1", "Port": 22}},
		{name: "fields kept", in: "chmod +x {{.Path}}; {{.Vars}} {{ .Path }} as {{user `name`}}", want: "chmod +x {{.Path}}; {{.Vars}} {{.Path}} as web",
			reason: "execute_command fields are the plugin's to render"},
		{name: "field in if", in: "{{if .Sudo}}sudo{{end}}", want: "sudo", reason: "a kept field is a non-empty string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := buildContext()
			ctx.Build = tt.build
			got, err := ctx.Render(tt.in)
			if err != nil {
				t.Fatalf("Render(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Render(%q) (-want +got):\n%s\nreason: %s", tt.in, diff, tt.reason)
			}
		})
	}
}

func TestRenderPlaceholderRoundTrip(t *testing.T) {
	ctx := buildContext()
	first, err := ctx.Render("id={{build `ID`}}")
	if err != nil {
		t.Fatal(err)
	}
	ctx.Build = map[string]any{"ID": "i-123"}
	second, err := ctx.Render(first)
	if err != nil {
		t.Fatal(err)
	}
	if second != "id=i-123" {
		t.Errorf("second render = %q, want %q", second, "id=i-123")
	}
}

func TestUUID(t *testing.T) {
	ctx := buildContext()
	got, err := ctx.Render("{{uuid}} {{uuid}}")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	parts := strings.Split(got, " ")
	for _, p := range parts {
		if !re.MatchString(p) {
			t.Errorf("uuid %q is not a version 4 UUID", p)
		}
	}
	if parts[0] == parts[1] {
		t.Errorf("two calls gave the same uuid %q", parts[0])
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name, in string
		ctx      func(*template.Context)
		want     string // substring of the message
	}{
		{name: "unknown function", in: "{{nope `x`}}", want: `function "nope" not defined`},
		{name: "unknown variable", in: "{{user `missing`}}", want: `unknown variable "missing"`},
		{name: "env outside variables", in: "{{env `HOME`}}", want: "env is only allowed in variable defaults"},
		{name: "build_name unset", in: "{{build_name}}", ctx: func(c *template.Context) { c.BuildName = "" }, want: "build_name is not available"},
		{name: "build_type unset", in: "{{build_type}}", ctx: func(c *template.Context) { c.BuildType = "" }, want: "build_type is not available"},
		{name: "build outside a build", in: "{{build `ID`}}", ctx: func(c *template.Context) { c.BuildName = "" }, want: `build "ID" is not available`},
		{name: "build key missing", in: "{{build `ID`}}", ctx: func(c *template.Context) { c.Build = map[string]any{"Host": "h", "Port": 1} },
			want: `builder "web-1" shares no value "ID" (it shares: Host, Port)`},
		{name: "template_dir unset", in: "{{template_dir}}", ctx: func(c *template.Context) { c.TemplateDir = "" }, want: "template_dir is not available"},
		{name: "isotime too many", in: "{{isotime `a` `b`}}", want: "isotime takes at most one layout"},
		{name: "split out of range", in: "{{split `a,b` `,` 2}}", want: "index 2 out of range"},
		{name: "syntax", in: "{{user `x`", want: "unclosed action"},
		{name: "wrong argument type", in: "{{upper 1}}", want: "at <1>: expected string; found 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := buildContext()
			if tt.ctx != nil {
				tt.ctx(ctx)
			}
			got, err := ctx.Render(tt.in)
			if err == nil {
				t.Fatalf("Render(%q) = %q, want an error", tt.in, got)
			}
			if !errors.Is(err, template.ErrRender) {
				t.Errorf("error %v does not wrap ErrRender", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.HasPrefix(err.Error(), "template:") {
				t.Errorf("error %q keeps text/template's prefix", err)
			}
		})
	}
}

func TestRenderConfig(t *testing.T) {
	ctx := buildContext()
	in := map[string]any{
		"output": "{{user `name`}}.box",
		"count":  json.Number("3"),
		"flag":   true,
		"none":   nil,
		"tags":   map[string]any{"{{user `name`}}": "{{build_name}}"},
		"files":  []any{"a", "{{upper `b`}}", []any{"{{lower `C`}}"}, map[string]any{"k": "{{build_type}}"}},
	}
	want := map[string]any{
		"output": "web.box",
		"count":  json.Number("3"),
		"flag":   true,
		"none":   nil,
		"tags":   map[string]any{"{{user `name`}}": "web-1"},
		"files":  []any{"a", "B", []any{"c"}, map[string]any{"k": "null"}},
	}
	got, err := ctx.RenderConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RenderConfig (-want +got):\n%s", diff)
	}
	if in["output"] != "{{user `name`}}.box" {
		t.Errorf("RenderConfig modified its input: output = %q", in["output"])
	}
}

func TestRenderConfigErrorPaths(t *testing.T) {
	ctx := buildContext()
	cfg := map[string]any{
		"output": "{{user `nope`}}",
		"nested": map[string]any{"list": []any{"ok", "{{bad}}"}},
		"fine":   "{{user `name`}}",
	}
	_, err := ctx.RenderConfigAt("builders[0]", cfg)
	var list template.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Msg)
		if !errors.Is(e, template.ErrRender) {
			t.Errorf("%v does not wrap ErrRender", e)
		}
	}
	want := []string{"builders[0].nested.list[1]", "builders[0].output"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error key paths (-want +got):\n%s\nerror: %v", diff, err)
	}
}

func TestForBuild(t *testing.T) {
	base := template.NewContext(&template.Template{Dir: "/d"}, "9.9.9", runStart)
	base.Build = map[string]any{"stale": 1}
	ctx := base.ForBuild(&template.Builder{Name: "n", Type: "ty"})
	got, err := ctx.Render("{{build_name}} {{build_type}} {{template_dir}} {{packer_version}} {{timestamp}} {{build `x`}}")
	if err != nil {
		t.Fatal(err)
	}
	if want := "n ty /d 9.9.9 1709618889 {{build `x`}}"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if base.BuildName != "" {
		t.Error("ForBuild modified its receiver")
	}
}
