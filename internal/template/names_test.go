package template_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/template"
)

func TestRenderBuilderNames(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    []string
		wantErr string
		kind    error
	}{
		{
			name: "user variables and functions",
			json: `{"variables": {"os": "debian"}, "builders": [
				{"type": "null", "name": "{{user ` + "`os`" + `}}-{{upper ` + "`x`" + `}}"},
				{"type": "file"}]}`,
			want: []string{"debian-X", "file"},
		},
		{
			name:    "a failing function names the key",
			json:    `{"builders": [{"type": "null", "name": "{{user ` + "`nope`" + `}}"}]}`,
			wantErr: "t.json:1:15: builders[0].name",
			kind:    template.ErrRender,
		},
		{
			name:    "names that render the same",
			json:    `{"variables": {"a": "x"}, "builders": [{"type": "null", "name": "x"}, {"type": "null", "name": "{{user ` + "`a`" + `}}"}]}`,
			wantErr: `builders[1].name: "x" is the name of builders[0] too`,
			kind:    template.ErrInvalid,
		},
		{
			name:    "empty",
			json:    `{"builders": [{"type": "null", "name": "{{user ` + "`e`" + `}}"}], "variables": {"e": ""}}`,
			wantErr: "renders to an empty name",
			kind:    template.ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := template.Parse(strings.NewReader(tt.json), "t.json")
			if err != nil {
				t.Fatal(err)
			}
			ctx := template.NewContext(tpl, "1.0.0", time.Unix(0, 0))
			uv, err := ctx.ResolveVariables(tpl, nil, nil, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			ctx.UserVars = uv
			err = tpl.RenderBuilderNames(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, tt.kind) {
					t.Fatalf("error %v, want %v containing %q", err, tt.kind, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range tpl.Builders {
				got = append(got, b.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if tpl.Builder(tt.want[0]) == nil {
				t.Errorf("Builder(%q) finds nothing after rendering", tt.want[0])
			}
		})
	}
}
