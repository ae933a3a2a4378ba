package docs_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the guide's included blocks from the files they quote")

// The guide's code blocks are regions of the files in examples/guide: a
// region runs from a "// guide:start NAME" line to the next "// guide:end"
// line. "<!-- include PATH [REGION] -->" on the line before a fence says
// which region (or, without one, which whole file) the block quotes.
var include = regexp.MustCompile("(?m)^<!-- include (\\S+)(?: (\\S+))? -->\\n```[a-z]*\\n((?s:.*?))\\n```$")

// fence matches every fenced block, with the line before it (an include or
// a "not run" marker, if any).
var fence = regexp.MustCompile("(?m)^(?:(<!-- [^\\n]* -->)\\n)?```([a-z]*)\\n((?s:.*?))\\n```$")

func readRepoFile(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

const (
	startMarker = "// guide:start "
	endMarker   = "// guide:end"
)

// regions splits text into its named regions, in order, each without its
// leading and trailing blank lines. outside collects the non-blank lines
// that lie in no region.
func regions(text string) (names []string, bodies map[string]string, outside []string) {
	bodies = map[string]string{}
	name := ""
	var cur []string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, startMarker):
			name = strings.TrimPrefix(trimmed, startMarker)
			names = append(names, name)
			cur = nil
		case trimmed == endMarker:
			bodies[name] = strings.Trim(strings.Join(cur, "\n"), "\n")
			name = ""
		case name != "":
			cur = append(cur, line)
		case trimmed != "":
			outside = append(outside, line)
		}
	}
	return names, bodies, outside
}

// quote returns what an include of file (and region, if not empty) shows.
func quote(t *testing.T, file, region string) string {
	t.Helper()
	text := readRepoFile(t, file)
	if region == "" {
		return strings.TrimRight(text, "\n")
	}
	_, bodies, _ := regions(text)
	body, ok := bodies[region]
	if !ok {
		t.Fatalf("%s has no region %q", file, region)
	}
	return body
}

func readGuide(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("writing-a-plugin.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestGuideMatchesCode fails when a code block of the guide differs from
// the file region it quotes, and when a Go block quotes nothing. With
// -update it rewrites the blocks from the files instead.
func TestGuideMatchesCode(t *testing.T) {
	guide := readGuide(t)
	matches := include.FindAllStringSubmatch(guide, -1)
	if len(matches) < 7 {
		t.Fatalf("found %d included blocks, want the 7 or more the guide has", len(matches))
	}
	if *update {
		guide = include.ReplaceAllStringFunc(guide, func(block string) string {
			m := include.FindStringSubmatch(block)
			return strings.Replace(block, m[3], quote(t, m[1], m[2]), 1)
		})
		if err := os.WriteFile("writing-a-plugin.md", []byte(guide), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, m := range matches {
		t.Run(m[1]+" "+m[2], func(t *testing.T) {
			if diff := cmp.Diff(quote(t, m[1], m[2]), m[3]); diff != "" {
				t.Errorf("guide block differs from %s region %q (-file +guide); go test ./docs -update rewrites it:\n%s", m[1], m[2], diff)
			}
		})
	}
	rest := include.ReplaceAllString(guide, "")
	if strings.Contains(rest, "```go") {
		t.Error("the guide has a ```go block that is not an include of examples/guide")
	}
}

// TestGuideQuotesWholeFiles checks that pasting the blocks of each file of
// examples/guide one after the other, in the guide's order, gives the whole
// file: every line of it is in a region, and every region is quoted once,
// in the file's order, under a caption that names the file.
func TestGuideQuotesWholeFiles(t *testing.T) {
	guide := readGuide(t)
	quoted := map[string][]string{} // file -> regions in guide order
	for _, idx := range include.FindAllStringSubmatchIndex(guide, -1) {
		file, region := guide[idx[2]:idx[3]], ""
		if idx[4] >= 0 {
			region = guide[idx[4]:idx[5]]
		}
		if filepath.Dir(file) != "examples/guide" {
			continue // a separate example (sshbuilder), not the plugin the guide builds
		}
		quoted[file] = append(quoted[file], region)
		// The paragraph before the include names the file to save it in.
		before := strings.TrimRight(guide[:idx[0]], "\n")
		caption := before[strings.LastIndex(before, "\n")+1:]
		if name := "`" + filepath.Base(file) + "`"; !strings.Contains(caption, name) {
			t.Errorf("the block quoting %s %s has the caption %q, which does not name %s", file, region, caption, name)
		}
	}
	files, err := filepath.Glob("../examples/guide/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			continue // a directory holds a separate example
		}
		file := strings.TrimPrefix(filepath.ToSlash(path), "../")
		got, ok := quoted[file]
		if !ok {
			t.Errorf("the guide never shows %s, so a reader cannot write it", file)
			continue
		}
		names, _, outside := regions(readRepoFile(t, file))
		if len(names) == 0 {
			names = []string{""} // quoted whole
		}
		if diff := cmp.Diff(names, got); diff != "" {
			t.Errorf("%s: regions quoted by the guide, in order (-file +guide):\n%s", file, diff)
		}
		if len(names) > 1 || names[0] != "" {
			if len(outside) > 0 {
				t.Errorf("%s: lines outside every region, which a reader never sees: %q", file, outside)
			}
		}
	}
}

// TestGuideByCopyPaste follows the guide as a newcomer would, in an empty
// folder outside the repository: it runs the sh blocks in order in one
// shell, and pastes each code block quoted from examples/guide into the file
// its caption names, at the point where the guide shows it. Only the line
// that sets PACKER_SRC is changed, to point at this checkout. Blocks marked
// "<!-- not run: WHY -->" are skipped.
func TestGuideByCopyPaste(t *testing.T) {
	if testing.Short() {
		t.Skip("builds packer, the plugin and its tests from scratch")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("the guide's commands need bash")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	guide := readGuide(t)
	tmp := t.TempDir()
	var script strings.Builder
	fmt.Fprintf(&script, "set -euxo pipefail\ncd %q\n", filepath.Join(tmp, "work"))
	ran := 0
	for _, m := range fence.FindAllStringSubmatch(guide, -1) {
		marker, lang, body := m[1], m[2], m[3]
		switch {
		case strings.HasPrefix(marker, "<!-- not run:"):
			continue
		case strings.HasPrefix(marker, "<!-- include examples/guide/") && filepath.Dir(strings.Fields(marker)[2]) == "examples/guide":
			file := filepath.Base(strings.Fields(marker)[2])
			fmt.Fprintf(&script, "cat >> %s <<'GUIDE_EOF'\n%s\n\nGUIDE_EOF\n", file, body)
		case lang == "sh":
			body = regexp.MustCompile(`(?m)^PACKER_SRC=.*$`).ReplaceAllString(body, "PACKER_SRC="+shellQuote(repo))
			script.WriteString(body + "\n")
			ran++
		}
	}
	if ran < 4 {
		t.Fatalf("found %d sh blocks to run, want the 4 or more the guide has", ran)
	}
	for _, dir := range []string{"work", "home", "gopath-bin"} {
		if err := os.MkdirAll(filepath.Join(tmp, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bash, "-c", script.String())
	bin := filepath.Join(tmp, "gopath-bin")
	cmd.Env = append(cleanEnv(os.Environ()),
		"HOME="+filepath.Join(tmp, "home"),
		"GOBIN="+bin,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOWORK=off",
		"GOFLAGS=",
		"NO_COLOR=1",
	)
	// The Go caches are shared with the test's own environment, so the
	// builds reuse what this checkout's tests compiled.
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, v+"="+strings.TrimSpace(string(out)))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("following the guide failed: %v\n%s", err, out)
	}
	notes := filepath.Join(tmp, "work", "packer-plugin-notes")
	for _, want := range []struct{ file, text string }{
		{"out/hello.txt", "hello from my plugin\n"},
	} {
		got, err := os.ReadFile(filepath.Join(notes, want.file))
		if err != nil {
			t.Fatalf("after the guide: %v\n%s", err, out)
		}
		if string(got) != want.text {
			t.Errorf("%s: got %q, want %q", want.file, got, want.text)
		}
	}
	if _, err := os.Stat(filepath.Join(notes, "manifest.json")); err != nil {
		t.Errorf("the build wrote no manifest: %v\n%s", err, out)
	}
}

// cleanEnv drops what would make the newcomer's shell differ from a fresh
// one: packer's own settings, and the Go settings that would change what
// the newcomer's go commands build.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PACKER_") || strings.HasPrefix(k, "PKR_") || k == "GOFLAGS" || k == "GOWORK" || k == "GOBIN" ||
			k == "GOOS" || k == "GOARCH" || k == "HOME" || k == "PATH" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
