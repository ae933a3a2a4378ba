package template_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
			name: "both spellings, template order",
			json: `{"required_plugins": {"notes": ">= 1.2.0", "example": "v0.3"}, "builders": [{"type": "file"}]}`,
			want: []*template.RequiredPlugin{
				{Name: "notes", MinVersion: "1.2.0", Pos: template.Pos{Line: 1, Col: 23}},
				{Name: "example", MinVersion: "v0.3", Pos: template.Pos{Line: 1, Col: 44}},
			},
		},
		{
			name:    "not an object",
			json:    `{"required_plugins": ["notes"], "builders": [{"type": "file"}]}`,
			wantErr: "required_plugins: expected an object",
		},
		{
			name:    "other operator",
			json:    `{"required_plugins": {"notes": "~> 1.2"}, "builders": [{"type": "file"}]}`,
			wantErr: `required_plugins.notes: invalid constraint "~> 1.2": want ">= X.Y.Z"`,
		},
		{
			name:    "empty",
			json:    `{"required_plugins": {"notes": ">="}, "builders": [{"type": "file"}]}`,
			wantErr: `invalid constraint ">="`,
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
			if diff := cmp.Diff(tt.want, tpl.RequiredPlugins); diff != "" {
				t.Errorf("RequiredPlugins (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.2.0", "1.2", 0},
		{"v1.10.0", "1.9.9", 1},
		{"0.1.0-dev", "0.1.0", 0},
		{"1.2.3", "1.3", -1},
	}
	for _, tt := range tests {
		got, err := template.CompareVersions(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := template.CompareVersions("(devel)", "1.0"); err == nil {
		t.Error("CompareVersions accepted (devel)")
	}
}
