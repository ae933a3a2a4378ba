package template_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/packer-stdio/packer/internal/template"
)

func TestRequiredPlugins(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    []*template.RequiredPlugin
		wantErr string // substring of the error; empty: no error
	}{
		{
			name: "constraints, template order",
			json: `{"required_plugins": {"notes": ">= 1.2.0", "example": "~> 0.3", "exact": "v1.0.0"}, "builders": [{"type": "file"}]}`,
			want: []*template.RequiredPlugin{
				{Name: "notes", Constraint: ">= 1.2.0", Pos: template.Pos{Line: 1, Col: 23}},
				{Name: "example", Constraint: "~> 0.3", Pos: template.Pos{Line: 1, Col: 44}},
				{Name: "exact", Constraint: "v1.0.0", Pos: template.Pos{Line: 1, Col: 65}},
			},
		},
		{
			name:    "not an object",
			json:    `{"required_plugins": ["notes"], "builders": [{"type": "file"}]}`,
			wantErr: "required_plugins: expected an object",
		},
		{
			name:    "not a constraint",
			json:    `{"required_plugins": {"notes": "=> 1.2"}, "builders": [{"type": "file"}]}`,
			wantErr: `required_plugins.notes: "=> 1.2" is not a version constraint such as ">= 1.2.0" or "~> 1.2"`,
		},
		{
			name:    "empty",
			json:    `{"required_plugins": {"notes": ">="}, "builders": [{"type": "file"}]}`,
			wantErr: `">=" is not a version constraint`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := template.Parse(strings.NewReader(tt.json), "t.json")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, template.ErrInvalid) {
					t.Fatalf("error %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tpl.RequiredPlugins, cmpopts.IgnoreUnexported(template.RequiredPlugin{})); diff != "" {
				t.Errorf("RequiredPlugins (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAllows checks Packer's constraint rules, pre-releases included.
func TestAllows(t *testing.T) {
	tests := []struct {
		constraint, version string
		want                bool
		reason              string
	}{
		{">= 1.2.0", "1.2.0", true, ""},
		{">= 1.2.0", "v1.10.0", true, "numeric, not lexical"},
		{">= 1.2.0", "1.1.9", false, ""},
		{">= 1.2.0", "1.2.0-beta", false, "a pre-release is older than its release"},
		{">= 1.3.0", "1.3.0-beta", false, "and matches only constraints naming a pre-release"},
		{">= 1.3.0-beta", "1.3.0-beta", true, ""},
		{"~> 1.2", "1.9.0", true, "~> 1.2 is >= 1.2, < 2"},
		{"~> 1.2", "2.0.0", false, ""},
		{">= 1.0, < 2.0", "1.5.0", true, ""},
		{"1.0.0", "1.0.1", false, "a bare version is exact"},
	}
	for _, tt := range tests {
		tpl, err := template.Parse(strings.NewReader(`{"required_plugins": {"p": "`+tt.constraint+`"}, "builders": [{"type": "file"}]}`), "t.json")
		if err != nil {
			t.Fatal(err)
		}
		got, err := tpl.RequiredPlugins[0].Allows(tt.version)
		if err != nil || got != tt.want {
			t.Errorf("%q allows %q = %v, %v; want %v (%s)", tt.constraint, tt.version, got, err, tt.want, tt.reason)
		}
	}
	rp := &template.RequiredPlugin{Name: "p", Constraint: ">= 1.0"}
	if _, err := rp.Allows("(devel)"); err == nil {
		t.Error("Allows accepted (devel) as a version")
	}
	if ok, err := rp.Allows("1.0.0"); !ok || err != nil {
		t.Errorf("a RequiredPlugin built by hand: %v, %v", ok, err)
	}
}
