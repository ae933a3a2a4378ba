package template_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/packer-stdio/packer/internal/template"
)

func ptr[T any](v T) *T { return &v }

// ignorePlace leaves positions and keys to the error and golden tests.
var ignorePlace = cmpopts.IgnoreFields(template.Builder{}, "Key", "Pos")

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		json   string
		want   *template.Template
		reason string
	}{
		{
			name: "minimal",
			json: `{"builders":[{"type":"file"}]}`,
			want: &template.Template{Builders: []*template.Builder{{Name: "file", Type: "file", Config: map[string]any{}}}},
		},
		{
			name: "root keys and comments",
			json: `{
				"_comment": "ignored",
				"description": "d",
				"min_packer_version": "1.2.3",
				"variables": {"a": "x", "req": null, "n": 12, "t": true, "f": false, "_c": "not a comment inside variables"},
				"sensitive-variables": ["a"],
				"builders": [{"type": "null", "name": "one", "_note": "dropped", "communicator": "none", "n": 1.5, "list": [1, "s", null]}]
			}`,
			reason: "keys starting with _ are comments at the root and in components, but not inside variables",
			want: &template.Template{
				Description: "d",
				MinVersion:  "1.2.3",
				Variables: []*template.Variable{
					{Name: "a", Default: "x", Pos: template.Pos{Line: 5, Col: 19}},
					{Name: "req", Required: true, Pos: template.Pos{Line: 5, Col: 29}},
					{Name: "n", Default: "12", Pos: template.Pos{Line: 5, Col: 42}},
					{Name: "t", Default: "1", Pos: template.Pos{Line: 5, Col: 51}},
					{Name: "f", Default: "0", Pos: template.Pos{Line: 5, Col: 62}},
					{Name: "_c", Default: "not a comment inside variables", Pos: template.Pos{Line: 5, Col: 74}},
				},
				SensitiveVariables: []string{"a"},
				Builders: []*template.Builder{{Name: "one", Type: "null", Config: map[string]any{
					"communicator": "none", "n": json.Number("1.5"), "list": []any{json.Number("1"), "s", nil},
				}}},
			},
		},
		{
			name: "provisioner keys",
			json: `{"builders":[{"type":"null","name":"a"},{"type":"null","name":"b"}],
				"provisioners":[
					{"type":"shell","inline":["x"],"only":["a"],"pause_before":"1m30s","timeout":"5s","max_retries":3,
					 "override":{"a":{"inline":["y"]}}, "_c": 1},
					{"type":"shell-local","except":["b"],"max_retries":"2"}
				],
				"error-cleanup-provisioner": {"type":"shell-local","command":"echo"}}`,
			reason: "max_retries accepts a string of digits, as Packer's weak decoding does",
			want: &template.Template{
				Builders: []*template.Builder{
					{Name: "a", Type: "null", Config: map[string]any{}},
					{Name: "b", Type: "null", Config: map[string]any{}},
				},
				Provisioners: []*template.Provisioner{
					{Type: "shell", Config: map[string]any{"inline": []any{"x"}}, Only: []string{"a"},
						PauseBefore: 90 * time.Second, Timeout: 5 * time.Second, MaxRetries: 3,
						Override: map[string]map[string]any{"a": {"inline": []any{"y"}}}},
					{Type: "shell-local", Config: map[string]any{}, Except: []string{"b"}, MaxRetries: 2},
				},
				ErrorCleanupProvisioner: &template.Provisioner{Type: "shell-local", Config: map[string]any{"command": "echo"}},
			},
		},
		{
			name: "post-processor forms",
			json: `{"builders":[{"type":"file"}],
				"post-processors":[
					"manifest",
					{"type":"checksum","checksum_types":["md5"],"name":"sums","keep_input_artifact":true},
					["compress", {"type":"artifice","files":["x"],"except":["file"],"keep_input_artifact":false}]
				]}`,
			reason: "a string is a type with no config, an object one post-processor, an array a sequence; name defaults to type",
			want: &template.Template{
				Builders: []*template.Builder{{Name: "file", Type: "file", Config: map[string]any{}}},
				PostProcessors: [][]*template.PostProcessor{
					{{Type: "manifest", Name: "manifest", Config: map[string]any{}}},
					{{Type: "checksum", Name: "sums", Config: map[string]any{"checksum_types": []any{"md5"}}, KeepInputArtifact: ptr(true)}},
					{
						{Type: "compress", Name: "compress", Config: map[string]any{}},
						{Type: "artifice", Name: "artifice", Config: map[string]any{"files": []any{"x"}}, Except: []string{"file"}, KeepInputArtifact: ptr(false)},
					},
				},
			},
		},
		{
			name: "byte order mark",
			json: "\xef\xbb\xbf" + `{"builders":[{"type":"file"}]}`,
			want: &template.Template{Builders: []*template.Builder{{Name: "file", Type: "file", Config: map[string]any{}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := template.Parse(strings.NewReader(tt.json), "t.json")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			opts := cmp.Options{
				ignorePlace,
				cmpopts.IgnoreFields(template.Template{}, "Path", "Dir"),
				cmpopts.IgnoreUnexported(template.Template{}),
				cmpopts.IgnoreFields(template.Provisioner{}, "Key", "Pos"),
				cmpopts.IgnoreFields(template.PostProcessor{}, "Key", "Pos"),
			}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s\nreason: %s", diff, tt.reason)
			}
		})
	}
}

// problem is the comparable part of a *template.Error.
type problem struct {
	Kind string
	Pos  string
	Msg  string // a substring of the message
}

var kinds = map[error]string{
	template.ErrSyntax:        "syntax",
	template.ErrDuplicateKey:  "duplicate key",
	template.ErrUnknownKey:    "unknown key",
	template.ErrDuplicateName: "duplicate name",
	template.ErrUnknownBuild:  "unknown build",
	template.ErrInvalid:       "invalid",
	template.ErrVariable:      "variable",
	template.ErrRender:        "render",
	template.ErrVersion:       "version",
	template.ErrTooLarge:      "too large",
}

// problems flattens err into comparable problems; msgs gives, per index,
// the substring to keep from the message (the message itself is checked
// for containing it).
func problems(t *testing.T, err error, want []problem) []problem {
	t.Helper()
	var list []*template.Error
	var el template.ErrorList
	var e *template.Error
	switch {
	case errors.As(err, &el):
		list = el
	case errors.As(err, &e):
		list = []*template.Error{e}
	default:
		t.Fatalf("error %v (%T) is neither *Error nor ErrorList", err, err)
	}
	got := make([]problem, len(list))
	for i, e := range list {
		got[i] = problem{Kind: "?", Pos: e.Pos.String()}
		for sentinel, name := range kinds {
			if errors.Is(e, sentinel) {
				got[i].Kind = name
			}
		}
		if i < len(want) && strings.Contains(e.Error(), want[i].Msg) {
			got[i].Msg = want[i].Msg
		} else {
			got[i].Msg = e.Error()
		}
	}
	return got
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []problem
	}{
		{"empty", ``, []problem{{"syntax", "1:1", "unexpected end"}}},
		{"not an object", `[1]`, []problem{{"invalid", "1:1", "template: expected an object, got array"}}},
		{"bad literal", "{\n  \"builders\": tru\n}", []problem{{"syntax", "2:18", "in literal true"}}},
		{"missing comma", "{\"a\": 1\n \"b\": 2}", []problem{{"syntax", "2:2", "after object key:value pair"}}},
		{"trailing data", `{"builders":[{"type":"file"}]} x`, []problem{{"syntax", "1:32", "after top-level value"}}},
		{"truncated", "{\"builders\": [", []problem{{"syntax", "1:15", "unexpected end"}}},
		{"duplicate root key", "{\"builders\": [{\"type\":\"file\"}],\n \"builders\": []}", []problem{{"duplicate key", "2:2", `duplicate key "builders" (first at 1:2)`}}},
		{"duplicate nested key", `{"builders": [{"type":"file","content":"a","x":{"k":1,"k":2}}]}`, []problem{{"duplicate key", "1:55", `duplicate key "k"`}}},
		{"duplicate key in a variable file style object", `{"variables": {"a": "1", "a": null}}`, []problem{{"duplicate key", "1:26", `"a"`}}},
		{"unknown root key", "{\"builders\": [{\"type\":\"file\"}],\n  \"push\": {}}", []problem{{"unknown key", "2:3", `unknown root key "push"`}}},
		{"duplicate builder name", "{\"builders\": [{\"type\":\"file\"},\n {\"type\":\"null\",\"name\":\"file\"}]}", []problem{{"duplicate name", "2:24", `a builder named "file" already exists at 1:15`}}},
		{"duplicate builder by type", `{"builders": [{"type":"file"},{"type":"file"}]}`, []problem{{"duplicate name", "1:31", `"file"`}}},
		{"missing type", `{"builders": [{"name":"x"}]}`, []problem{{"invalid", "1:15", "builders[0]: missing 'type'"}}},
		{"empty type", `{"builders": [{"type":""}]}`, []problem{{"invalid", "1:23", "empty type"}}},
		{"type not a string", `{"builders": [{"type":1}]}`, []problem{{"invalid", "1:23", "builders[0].type: expected a string, got number"}}},
		{"no builders", `{"description": "x"}`, []problem{{"invalid", "1:1", "at least one builder"}}},
		{"empty builders", `{"builders": []}`, []problem{{"invalid", "1:2", "at least one builder"}}},
		{"builders not an array", `{"builders": {"type":"file"}}`, []problem{{"invalid", "1:14", "builders: expected an array, got object"}}},
		{"bad duration", `{"builders":[{"type":"file"}],"provisioners":[{"type":"shell","pause_before":"soon"}]}`,
			[]problem{{"invalid", "1:78", `provisioners[0].pause_before: invalid duration "soon"`}}},
		{"bad timeout", `{"builders":[{"type":"file"}],"provisioners":[{"type":"shell","timeout":true}]}`,
			[]problem{{"invalid", "1:73", `provisioners[0].timeout: expected a duration string, got boolean`}}},
		{"bad max_retries", `{"builders":[{"type":"file"}],"provisioners":[{"type":"shell","max_retries":-1}]}`,
			[]problem{{"invalid", "1:77", `provisioners[0].max_retries: expected a non-negative integer`}}},
		{"unknown only", "{\"builders\":[{\"type\":\"file\"}],\n\"provisioners\":[{\"type\":\"shell\",\"only\":[\"file\",\"nope\"]}]}",
			[]problem{{"unknown build", "2:48", `provisioners[0].only[1]: no build named "nope" (builds: file)`}}},
		{"unknown except on post-processor", `{"builders":[{"type":"file"}],"post-processors":[["manifest",{"type":"checksum","except":["x"]}]]}`,
			[]problem{{"unknown build", "1:91", `post-processors[0][1].except[0]: no build named "x"`}}},
		{"unknown override", `{"builders":[{"type":"file"}],"provisioners":[{"type":"shell","override":{"file":{},"vbox":{}}}]}`,
			[]problem{{"unknown build", "1:85", `provisioners[0].override: no build named "vbox"`}}},
		{"unknown only in cleanup provisioner", `{"builders":[{"type":"file"}],"error-cleanup-provisioner":{"type":"shell","only":["y"]}}`,
			[]problem{{"unknown build", "1:83", `error-cleanup-provisioner.only[0]: no build named "y"`}}},
		{"only and except", `{"builders":[{"type":"file"}],"provisioners":[{"type":"shell","only":["file"],"except":["file"]}]}`,
			[]problem{{"invalid", "1:88", "only one of 'only' or 'except'"}}},
		{"override not objects", `{"builders":[{"type":"file"}],"provisioners":[{"type":"shell","override":{"file":1}}]}`,
			[]problem{{"invalid", "1:82", "provisioners[0].override.file: expected an object, got number"}}},
		{"variable default object", `{"builders":[{"type":"file"}],"variables":{"v":{}}}`,
			[]problem{{"invalid", "1:48", "variables.v: default must be a string, number, boolean or null, got object"}}},
		{"sensitive variable undeclared", `{"builders":[{"type":"file"}],"variables":{"a":""},"sensitive-variables":["a","b"]}`,
			[]problem{{"variable", "1:79", `sensitive-variables[1]: "b" is not a declared variable`}}},
		{"post-processor number", `{"builders":[{"type":"file"}],"post-processors":[1]}`,
			[]problem{{"invalid", "1:50", "post-processors[0]: expected a type name, an object or an array, got number"}}},
		{"empty sequence", `{"builders":[{"type":"file"}],"post-processors":[[]]}`,
			[]problem{{"invalid", "1:50", "empty post-processor sequence"}}},
		{"keep_input_artifact not bool", `{"builders":[{"type":"file"}],"post-processors":[{"type":"x","keep_input_artifact":"yes"}]}`,
			[]problem{{"invalid", "1:84", "keep_input_artifact: expected a boolean, got string"}}},
		{"bad min version", `{"builders":[{"type":"file"}],"min_packer_version":"one"}`,
			[]problem{{"invalid", "1:52", `min_packer_version: "one" is not a version`}}},
		{"several problems in one pass", "{\"foo\": 1,\n \"builders\": [{\"type\": 2}],\n \"bar\": 2}", []problem{
			{"unknown key", "1:2", `"foo"`},
			{"invalid", "2:24", "builders[0].type"},
			{"unknown key", "3:2", `"bar"`},
		}},
		{"deep nesting", `{"builders":[{"type":"file","x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}]}`,
			[]problem{{"syntax", "1:", "nesting deeper than"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := template.Parse(strings.NewReader(tt.json), "t.json")
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "t.json:") {
				t.Errorf("error %q does not start with the file name", err)
			}
			got := problems(t, err, tt.want)
			// Positions ending in ":" only check the line.
			for i := range got {
				if i < len(tt.want) && strings.HasSuffix(tt.want[i].Pos, ":") && strings.HasPrefix(got[i].Pos, tt.want[i].Pos) {
					got[i].Pos = tt.want[i].Pos
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s\nfull error:\n%v", diff, err)
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	tmpl, err := template.ParseFile("testdata/basic.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(tmpl.Dir, "testdata") || !strings.HasPrefix(tmpl.Dir, "/") && !strings.Contains(tmpl.Dir, ":") {
		t.Errorf("Dir = %q, want the absolute testdata directory", tmpl.Dir)
	}
	if _, err := template.ParseFile("testdata/does-not-exist.json"); err == nil {
		t.Error("ParseFile of a missing file succeeded")
	}
}

func TestSkipAndConfigFor(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader(`{
		"builders": [{"type":"null","name":"a"},{"type":"null","name":"b"},{"type":"null","name":"c"}],
		"provisioners": [
			{"type":"shell","only":["a","b"],"inline":["base"],"env":"x","override":{"b":{"inline":["over"]}}},
			{"type":"shell","except":["a"]}
		],
		"post-processors": [{"type":"manifest","only":["c"]}]
	}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	p0, p1, pp := tmpl.Provisioners[0], tmpl.Provisioners[1], tmpl.PostProcessors[0][0]
	type row struct{ P0, P1, PP bool }
	got := map[string]row{}
	for _, b := range tmpl.Builders {
		got[b.Name] = row{p0.Skip(b.Name), p1.Skip(b.Name), pp.Skip(b.Name)}
	}
	want := map[string]row{"a": {false, true, true}, "b": {false, false, true}, "c": {true, false, false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Skip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"inline": []any{"over"}, "env": "x"}, p0.ConfigFor("b")); diff != "" {
		t.Errorf("ConfigFor(b) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"inline": []any{"base"}, "env": "x"}, p0.ConfigFor("a")); diff != "" {
		t.Errorf("ConfigFor(a) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"base"}, p0.Config["inline"]); diff != "" {
		t.Errorf("ConfigFor modified Config (-want +got):\n%s", diff)
	}
	if tmpl.Builder("b") != tmpl.Builders[1] || tmpl.Builder("zz") != nil {
		t.Error("Builder lookup by name is wrong")
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		min, have string
		wantErr   error
	}{
		{"", "0.1.0", nil},
		{"1.2.0", "1.2.0", nil},
		{"1.2", "1.10.0", nil},
		{"v1.2.3", "1.2.3-dev", nil},
		{"1.3.0", "1.2.9", template.ErrVersion},
		{"2", "1.99.99", template.ErrVersion},
		{"1.0.0", "dev", template.ErrInvalid},
	}
	for _, tt := range tests {
		tmpl := &template.Template{MinVersion: tt.min}
		err := tmpl.CheckVersion(tt.have)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("min %q, have %q: CheckVersion = %v, want %v", tt.min, tt.have, err, tt.wantErr)
		}
	}
}
