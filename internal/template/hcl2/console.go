package hcl2

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Empty returns the Result of a template with nothing in it, for
// evaluating expressions without a template (packer console).
func Empty(o Options) *Result {
	l := &loader{o: o, locals: map[string]cty.Value{}, data: map[string]map[string]cty.Value{}}
	l.now = o.Now
	if l.now.IsZero() {
		l.now = time.Now()
	}
	l.dir = "."
	return &Result{l: l}
}

// Eval evaluates an HCL2 expression against the template's variables,
// locals and data sources, the functions, path.* and packer.version. A
// string is returned as it is; any other value in HCL syntax. The error
// is an [*Error].
func (r *Result) Eval(src string) (string, error) {
	l := r.l
	expr, diags := hclsyntax.ParseExpression([]byte(src), "<console>", hcl.InitialPos)
	files := map[string]*hcl.File{"<console>": {Bytes: []byte(src)}}
	if diags.HasErrors() {
		return "", &Error{Diags: diags, files: files}
	}
	v, diags := expr.Value(l.evalContext(nil))
	if diags.HasErrors() {
		return "", &Error{Diags: diags, files: files}
	}
	return format(v), nil
}

// Variables returns "var.NAME = VALUE" for each variable, in order.
func (r *Result) Variables() []string {
	var out []string
	for _, v := range r.l.vars {
		out = append(out, fmt.Sprintf("var.%s = %s", v.name, format(v.value)))
	}
	return out
}

func format(v cty.Value) string {
	v, _ = v.UnmarkDeep()
	switch {
	case v.IsNull():
		return "null"
	case !v.IsWhollyKnown():
		return "<unknown>"
	case v.Type() == cty.String:
		return v.AsString()
	}
	return strings.TrimSpace(string(hclwrite.TokensForValue(v).Bytes()))
}
