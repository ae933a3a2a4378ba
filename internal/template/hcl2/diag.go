package hcl2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// ErrTemplate is what every error of this package wraps: a problem in an
// HCL2 template, variable file or variable value.
var ErrTemplate = errors.New("hcl2 template error")

// Error is the problems found in an HCL2 template. Its message has one
// paragraph per problem: "file:line:col: summary: detail", then the source
// line and a caret under the offending range.
type Error struct {
	// Diags are hcl's diagnostics, errors and warnings.
	Diags hcl.Diagnostics
	files map[string]*hcl.File
}

// Error returns every error diagnostic with its position and snippet,
// separated by blank lines; warnings are left out.
func (e *Error) Error() string {
	var b strings.Builder
	first := true
	for _, d := range e.Diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if !first {
			b.WriteString("\n")
		}
		first = false
		b.WriteString(formatDiag(d, e.files))
	}
	return strings.TrimRight(b.String(), "\n")
}

// Unwrap returns ErrTemplate and the diagnostics, so that errors.As finds
// hcl.Diagnostics.
func (e *Error) Unwrap() []error { return []error{ErrTemplate, e.Diags} }

// formatDiag renders one diagnostic with its snippet.
func formatDiag(d *hcl.Diagnostic, files map[string]*hcl.File) string {
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(": " + d.Detail)
	}
	b.WriteString("\n")
	if d.Subject == nil {
		return b.String()
	}
	f := files[d.Subject.Filename]
	if f == nil {
		return b.String()
	}
	lines := bytes.Split(f.Bytes, []byte("\n"))
	n := d.Subject.Start.Line
	if n < 1 || n > len(lines) {
		return b.String()
	}
	line := strings.TrimRight(string(lines[n-1]), "\r")
	prefix := fmt.Sprintf("%5d | ", n)
	fmt.Fprintf(&b, "%s%s\n", prefix, line)
	start := d.Subject.Start.Column - 1
	end := d.Subject.End.Column - 1
	if d.Subject.End.Line != n {
		end = len(line)
	}
	start = min(max(start, 0), len(line))
	end = min(max(end, start+1), max(len(line), start+1))
	pad := []byte(line[:start])
	for i, c := range pad {
		if c != '\t' {
			pad[i] = ' '
		}
	}
	fmt.Fprintf(&b, "%s| %s%s\n", strings.Repeat(" ", len(prefix)-2), pad, strings.Repeat("^", end-start))
	return b.String()
}

// errorOf returns nil when diags hold no error, an *Error otherwise.
func errorOf(diags hcl.Diagnostics, files map[string]*hcl.File) error {
	if !diags.HasErrors() {
		return nil
	}
	return &Error{Diags: diags, files: files}
}

// diagf is an error diagnostic at rng (nil for none).
func diagf(rng *hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng}
}

// warnings returns the warning diagnostics of diags, formatted.
func warnings(diags hcl.Diagnostics, files map[string]*hcl.File) []string {
	var out []string
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			out = append(out, strings.TrimRight(formatDiag(d, files), "\n"))
		}
	}
	return out
}
