package suggest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClosest(t *testing.T) {
	commands := []string{"build", "validate", "inspect", "version", "plugins", "describe", "fmt", "init"}
	tests := []struct {
		name       string
		input      string
		candidates []string
		want       string
		wantOK     bool
		reason     string
	}{
		{"typo", "biuld", commands, "build", true, "a swap of two letters is one edit"},
		{"missing letter", "valdate", commands, "validate", true, ""},
		{"extra letter", "inspectt", commands, "inspect", true, ""},
		{"exact", "fmt", commands, "fmt", true, ""},
		{"short names need one edit at most", "fx", commands, "", false, "fmt is two edits from fx"},
		{"nothing near", "frobnicate", commands, "", false, ""},
		{"key", "taget", []string{"content", "target", "source"}, "target", true, ""},
		{"first of equals", "ab", []string{"ac", "ad"}, "ac", true, "ties go to the first candidate"},
		{"no candidates", "x", nil, "", false, ""},
		{"unicode", "größe", []string{"grösse", "große"}, "große", true, "runes, not bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Closest(tt.input, tt.candidates)
			if diff := cmp.Diff(struct {
				S  string
				OK bool
			}{tt.want, tt.wantOK}, struct {
				S  string
				OK bool
			}{got, ok}); diff != "" {
				t.Errorf("Closest(%q) (-want +got):\n%s\n%s", tt.input, diff, tt.reason)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"ab", "ba", 1}, {"abc", "abc", 0},
	} {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
