package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// include marks a code block copied from a file region:
// "<!-- include PATH [REGION] -->" on the line before the fence.
var include = regexp.MustCompile("(?m)^<!-- include (\\S+)(?: (\\S+))? -->\\n```[a-z]*\\n((?s:.*?))\\n```$")

// region returns the lines between "// guide:start NAME" and the next
// "// guide:end" in file, or the whole file when name is empty.
func region(t *testing.T, file, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimRight(string(data), "\n")
	if name == "" {
		return text
	}
	var out []string
	inside, found := false, false
	for _, line := range strings.Split(text, "\n") {
		switch strings.TrimSpace(line) {
		case "// guide:start " + name:
			inside, found = true, true
			continue
		case "// guide:end":
			inside = false
		}
		if inside {
			out = append(out, line)
		}
	}
	if !found {
		t.Fatalf("%s has no region %q", file, name)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}

// TestGuideMatchesCode fails when a code block of the guide differs from
// the file region it quotes, and when a Go or JSON block quotes nothing.
func TestGuideMatchesCode(t *testing.T) {
	data, err := os.ReadFile("writing-a-plugin.md")
	if err != nil {
		t.Fatal(err)
	}
	guide := string(data)
	matches := include.FindAllStringSubmatch(guide, -1)
	if len(matches) < 7 {
		t.Fatalf("found %d included blocks, want the 7 or more the guide has", len(matches))
	}
	for _, m := range matches {
		t.Run(m[1]+" "+m[2], func(t *testing.T) {
			if diff := cmp.Diff(region(t, m[1], m[2]), m[3]); diff != "" {
				t.Errorf("guide block differs from %s region %q (-file +guide):\n%s", m[1], m[2], diff)
			}
		})
	}
	// Every go block must be an include.
	rest := include.ReplaceAllString(guide, "")
	if strings.Contains(rest, "```go") {
		t.Error("the guide has a ```go block that is not an include of examples/guide")
	}
}
