package template_test

import (
	"strings"
	"testing"

	"github.com/packer-stdio/packer/internal/template"
)

func TestLocate(t *testing.T) {
	src := `{
  "builders": [
    {"type": "file",
     "taget": "x",
     "list": [1, {"deep": true}],
     "a/b": 1}
  ],
  "post-processors": [[{"type": "manifest"}, {"type": "checksum", "checksum_types": ["crc"]}]]
}`
	tpl, err := template.Parse(strings.NewReader(src), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, pointer, want string
		reason             string
	}{
		{"builders[0]", "/taget", "4:6", "a member: where its key is"},
		{"builders[0]", "/list/1/deep", "5:19", ""},
		{"builders[0]", "/list/0", "5:15", "an element: where its value is"},
		{"builders[0]", "/a~1b", "6:6", "~1 is a slash"},
		{"builders[0]", "/missing", "3:5", "a key the template lacks: the component"},
		{"builders[0]", "/list/9", "5:6", "the deepest part that exists"},
		{"builders[0]", "", "3:5", ""},
		{"post-processors[0][1]", "/checksum_types/0", "8:86", ""},
		{"builders[3]", "/x", "-", "no such component"},
	}
	for _, tt := range tests {
		if got := tpl.Locate(tt.key, tt.pointer).String(); got != tt.want {
			t.Errorf("Locate(%q, %q) = %s, want %s (%s)", tt.key, tt.pointer, got, tt.want, tt.reason)
		}
	}
	if got := (&template.Template{}).Locate("builders[0]", "/x"); got.IsValid() {
		t.Errorf("a template not parsed from a file located %s", got)
	}
}
