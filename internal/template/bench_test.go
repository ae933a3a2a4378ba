package template_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/packer-stdio/packer/internal/template"
)

// manyVariables returns a template declaring n variables, each on its own
// line, the last half referring to the first half, all sensitive.
func manyVariables(n int) string {
	var b strings.Builder
	b.WriteString("{\n\"variables\": {\n")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		if i >= n/2 {
			fmt.Fprintf(&b, "  \"v%d\": \"{{user `v%d`}}-x\"", i, i-n/2)
		} else {
			fmt.Fprintf(&b, "  \"v%d\": \"value %d\"", i, i)
		}
	}
	b.WriteString("\n},\n\"sensitive-variables\": [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "\"v%d\"", i)
	}
	b.WriteString("],\n\"builders\": [{\"type\": \"file\"}]\n}\n")
	return b.String()
}

// BenchmarkManyVariables parses and resolves a template with 100,000
// variables (issue 11: it must take well under 2 s; parsing was quadratic).
// Run: go test -run '^$' -bench ManyVariables -benchtime 3x ./internal/template
func BenchmarkManyVariables(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		src := manyVariables(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				tmpl, err := template.Parse(strings.NewReader(src), "many.json")
				if err != nil {
					b.Fatal(err)
				}
				vars, err := template.ResolveVariables(tmpl, nil, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(vars) != n {
					b.Fatalf("%d variables, want %d", len(vars), n)
				}
			}
		})
	}
}
