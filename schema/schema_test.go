package schema_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/internal/schemagen"
	"github.com/packer-stdio/packer/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// committed returns every file in schema.FS by name.
func committed(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := fs.WalkDir(schema.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schema.FS, p)
		files[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// normalise decodes JSON so that formatting and member order do not matter.
func normalise(t *testing.T, name string, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestFresh fails when the committed files differ from what the generator
// writes from the Go types in protocol/.
func TestFresh(t *testing.T) {
	want, err := schemagen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got := committed(t)
	wantN := map[string]any{}
	for name, b := range want {
		wantN[name] = normalise(t, "generated "+name, b)
	}
	gotN := map[string]any{}
	for name, b := range got {
		gotN[name] = normalise(t, "committed "+name, b)
	}
	if diff := cmp.Diff(wantN, gotN); diff != "" {
		t.Errorf("committed schema files are stale: run go generate ./schema\n(-generated +committed):\n%s", diff)
	}
}

// TestGenerateDeterministic guards the byte output, so that go generate on
// an unchanged tree leaves git clean.
func TestGenerateDeterministic(t *testing.T) {
	a, err := schemagen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := schemagen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two runs differ (-first +second):\n%s", diff)
	}
}

// compileAll compiles every committed file as draft 2020-12, with no
// loader besides the files themselves (a $ref outside a file fails).
func compileAll(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	files := committed(t)
	for name, b := range files {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource(schema.BaseURI+name, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for name := range files {
		s, err := c.Compile(schema.BaseURI + name)
		if err != nil {
			t.Errorf("%s does not compile: %v", name, err)
			continue
		}
		out[name] = s
	}
	return out
}

type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fs.ErrNotExist
}

// TestSchemasCompile checks that every file is a valid draft 2020-12
// schema (the compiler validates it against the meta-schema), declares
// that draft, and carries the $id its name implies.
func TestSchemasCompile(t *testing.T) {
	compiled := compileAll(t)
	for name, b := range committed(t) {
		var head struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if head.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema is %q, want draft 2020-12", name, head.Schema)
		}
		if head.ID != schema.BaseURI+name {
			t.Errorf("%s: $id is %q, want %q", name, head.ID, schema.BaseURI+name)
		}
		if compiled[name] == nil {
			t.Errorf("%s: not compiled", name)
		}
	}
}

// TestSchemasAcceptAndRefuse checks a few instances against the compiled
// schemas, for the constraints the generator adds to what reflection gives.
func TestSchemasAcceptAndRefuse(t *testing.T) {
	compiled := compileAll(t)
	tests := []struct {
		name   string
		file   string
		doc    string
		valid  bool
		reason string
	}{
		{"cancel integer id", "cancel-request.params.json", `{"id":9223372036854775807}`, true, ""},
		{"cancel string id", "cancel-request.params.json", `{"id":"7"}`, true, ""},
		{"cancel negative id", "cancel-request.params.json", `{"id":-1}`, false, "ids are 0..2^63-1"},
		{"cancel null id", "cancel-request.params.json", `{"id":null}`, false, ""},
		{"run without artifact", "builder-run.result.json", `{"artifact":null}`, true, "a builder may produce none"},
		{"run missing artifact member", "builder-run.result.json", `{}`, false, "the member is required, null when none"},
		{"artifact files null", "builder-run.result.json", `{"artifact":{"builder_id":"b","id":"i","files":null,"string":"s"}}`, false, "senders send [] rather than null"},
		{"unknown member", "builder-run.params.json", `{"instance":"i1","extra":1}`, false, "unknown members are invalid params"},
		{"empty instance", "builder-run.params.json", `{"instance":""}`, false, ""},
		{"prepare configs not objects", "component-prepare.params.json", `{"type":"builder","name":"x","configs":[1]}`, false, ""},
		{"config schema object", "initialize.result.json", `{"protocol_version":1,"plugin":{"name":"p","version":"1"},"components":[{"type":"builder","name":"file","config_schema":{"type":"object"}}],"limits":{"max_message_size":1048576},"capabilities":{"cancel":true}}`, true, ""},
		{"limit too small", "initialize.params.json", `{"protocol_versions":[1],"host":{"name":"packer","version":"1"},"limits":{"max_message_size":1000},"capabilities":{"ask":false,"progress":false}}`, false, "at least MinMaxMessageSize"},
		{"no versions", "initialize.params.json", `{"protocol_versions":[],"host":{"name":"packer","version":"1"},"limits":{"max_message_size":1048576},"capabilities":{"ask":false,"progress":false}}`, false, ""},
		{"shutdown empty params", "shutdown.params.json", `{}`, true, ""},
		{"shutdown params", "shutdown.params.json", `{"now":true}`, false, ""},
		{"null result", "stream-close.result.json", `null`, true, ""},
		{"non-null result", "stream-close.result.json", `{}`, false, ""},
		{"chunk too large", "stream-read.params.json", `{"stream":"s1","max":262145}`, false, "MaxChunkSize"},
		{"one-byte chunk", "stream-data.params.json", `{"source":"s1","data":"AA=="}`, true, "a chunk carries 1 to 262144 bytes"},
		{"empty chunk", "stream-data.params.json", `{"source":"s1","data":""}`, false, "a chunk carries at least one byte (§7.5.2)"},
		{"chunk naming both ends", "stream-data.params.json", `{"source":"s1","sink":"s1","data":"AA=="}`, false, "exactly one of source and sink"},
		{"unknown size", "communicator-upload.params.json", `{"communicator":"c1","path":"/x","source":"s1","size":-1}`, true, ""},
		{"error response with refused id", "envelope.response.json", `{"jsonrpc":"2.0","id":-1,"error":{"code":-32600,"message":"invalid request"}}`, true, "refused ids are echoed"},
		{"success response with null id", "envelope.response.json", `{"jsonrpc":"2.0","id":null,"result":1}`, false, ""},
		{"batch", "envelope.message.json", `[{"jsonrpc":"2.0","method":"ui/say","params":{"message":"x"}}]`, false, ""},
		{"notification", "envelope.message.json", `{"jsonrpc":"2.0","method":"ui/say","params":{"message":"x"}}`, true, ""},
		{"null params", "envelope.request.json", `{"jsonrpc":"2.0","id":1,"method":"shutdown","params":null}`, false, "params must be structured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compiled[tt.file]
			if s == nil {
				t.Fatalf("no schema %s", tt.file)
			}
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(doc)
			if got := err == nil; got != tt.valid {
				t.Errorf("valid = %v, want %v (%s): %v", got, tt.valid, tt.reason, err)
			}
		})
	}
}

// protocolConsts parses a file of package protocol and returns its
// constants whose names start with prefix, with their literal values.
func protocolConsts(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path.Join("..", "protocol", file), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				out[n.Name] = literal(t, vs.Values[i])
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s* constants in protocol/%s", prefix, file)
	}
	return out
}

// literal returns the value of a string or (possibly negated) integer
// literal.
func literal(t *testing.T, e ast.Expr) string {
	t.Helper()
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return e.Value
	case *ast.UnaryExpr:
		if e.Op == token.SUB {
			return "-" + literal(t, e.X)
		}
	}
	t.Fatalf("unexpected constant expression %T", e)
	return ""
}

// TestMethodsCoverProtocol checks that every Method* constant of
// protocol/messages.go is in schema.Methods, once, and that schema.Methods
// names no other method.
func TestMethodsCoverProtocol(t *testing.T) {
	consts := protocolConsts(t, "messages.go", "Method")
	var want []string
	for _, v := range consts {
		want = append(want, v)
	}
	var got []string
	for _, m := range schema.Methods {
		got = append(got, m.Name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema.Methods does not match the Method constants of protocol/messages.go (-constants +schema.Methods):\n%s", diff)
	}
	for _, m := range schema.Methods {
		if m.Notification && m.Result != nil {
			t.Errorf("%s: a notification has no result", m.Name)
		}
		if _, ok := schema.Lookup(m.Name); !ok {
			t.Errorf("Lookup(%q) failed", m.Name)
		}
	}
}

// TestFilesMatchTable checks that the files are exactly those the tables
// name, so that no file is missing or left over.
func TestFilesMatchTable(t *testing.T) {
	want := []string{schema.EnvelopeMessage, schema.EnvelopeNotification, schema.EnvelopeRequest, schema.EnvelopeResponse}
	for _, m := range schema.Methods {
		want = append(want, m.ParamsFile())
		if f := m.ResultFile(); f != "" {
			want = append(want, f)
		}
	}
	for _, e := range schema.ErrorData {
		want = append(want, e.File())
	}
	var got []string
	for name := range committed(t) {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema files (-from tables +in FS):\n%s", diff)
	}
}

func TestFileBase(t *testing.T) {
	tests := []struct{ method, want string }{
		{"component/prepare", "component-prepare"},
		{"$/cancelRequest", "cancel-request"},
		{"communicator/uploadDir", "communicator-uploadDir"},
		{"shutdown", "shutdown"},
	}
	for _, tt := range tests {
		if got := schema.FileBase(tt.method); got != tt.want {
			t.Errorf("FileBase(%q) = %q, want %q", tt.method, got, tt.want)
		}
	}
}
