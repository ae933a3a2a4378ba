package hcl2

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/packer-stdio/packer/internal/template"
)

// variable is one declared input variable.
type variable struct {
	name        string
	typ         cty.Type
	def         cty.Value // cty.NilVal without a default
	description string
	sensitive   bool
	nullable    bool
	validations []validation
	decl        hcl.Range

	value cty.Value
	// failed is set when a value given could not be read (reported).
	failed bool
	// set is where the value came from, for messages; setRange points at
	// it when it is in a file.
	set      string
	setRange *hcl.Range
}

type validation struct {
	condition hcl.Expression
	message   hcl.Expression
	rng       hcl.Range
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}, {Name: "nullable"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "condition", Required: true}, {Name: "error_message", Required: true},
}}

func (l *loader) lookupVar(name string) *variable {
	for _, v := range l.vars {
		if v.name == name {
			return v
		}
	}
	return nil
}

func (l *loader) declare(v *variable) {
	if old := l.lookupVar(v.name); old != nil {
		l.diags = append(l.diags, diagf(v.decl.Ptr(), "Duplicate variable", "variable %q was already declared at %s", v.name, old.decl))
		return
	}
	if !hclsyntax.ValidIdentifier(v.name) {
		l.diags = append(l.diags, diagf(v.decl.Ptr(), "Invalid variable name", "%q is not a valid identifier", v.name))
		return
	}
	l.vars = append(l.vars, v)
}

// declareVariables reads the variable and variables blocks.
func (l *loader) declareVariables() {
	// Defaults may call functions, and env, which only they may call (as
	// in Packer), but refer to nothing.
	noVars := l.evalContext(nil)
	noVars.Variables = nil
	fs := make(map[string]function.Function, len(noVars.Functions)+1)
	for k, f := range noVars.Functions {
		fs[k] = f
	}
	fs["env"] = envFunc(l.o.Environ)
	noVars.Functions = fs
	for _, b := range l.blocks("variable") {
		v := &variable{name: b.Labels[0], typ: cty.DynamicPseudoType, nullable: true, decl: b.DefRange}
		c, d := b.Body.Content(variableSchema)
		l.diags = append(l.diags, d...)
		if a := c.Attributes["type"]; a != nil {
			t, d := typeexpr.TypeConstraint(a.Expr)
			l.diags = append(l.diags, d...)
			if !d.HasErrors() {
				v.typ = t
			}
		}
		if a := c.Attributes["description"]; a != nil {
			l.decodeString(a.Expr, &v.description)
		}
		for _, flag := range []struct {
			name string
			out  *bool
		}{{"sensitive", &v.sensitive}, {"nullable", &v.nullable}} {
			if a := c.Attributes[flag.name]; a != nil {
				val, d := a.Expr.Value(noVars)
				l.diags = append(l.diags, d...)
				if val, err := convert.Convert(val, cty.Bool); err != nil || val.IsNull() {
					l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid "+flag.name, "want true or false"))
				} else {
					*flag.out = val.True()
				}
			}
		}
		if a := c.Attributes["default"]; a != nil {
			val, d := a.Expr.Value(noVars)
			l.diags = append(l.diags, d...)
			if !d.HasErrors() {
				conv, err := convert.Convert(val, v.typ)
				if err != nil {
					l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid default value for variable",
						"variable %q: %v", v.name, err))
				} else {
					v.def = conv
				}
			}
		}
		for _, vb := range c.Blocks {
			vc, d := vb.Body.Content(validationSchema)
			l.diags = append(l.diags, d...)
			if d.HasErrors() {
				continue
			}
			v.validations = append(v.validations, validation{condition: vc.Attributes["condition"].Expr,
				message: vc.Attributes["error_message"].Expr, rng: vb.DefRange})
		}
		l.declare(v)
	}
	for _, b := range l.blocks("variables") {
		attrs, d := b.Body.JustAttributes()
		l.diags = append(l.diags, d...)
		for _, name := range sortedAttrs(attrs) {
			a := attrs[name]
			val, d := a.Expr.Value(noVars)
			l.diags = append(l.diags, d...)
			l.declare(&variable{name: name, typ: cty.DynamicPseudoType, nullable: true, def: val, decl: a.NameRange})
		}
	}
}

// assignVariables gives every variable its value, Packer's precedence
// from lowest to highest: default, PKR_VAR_name, auto variable files,
// -var-file, -var.
func (l *loader) assignVariables(autoVars []string) {
	for _, v := range l.vars {
		if v.def != cty.NilVal {
			v.value, v.set = v.def, "default"
		}
	}
	env := slices.Clone(l.o.Environ)
	sort.Strings(env)
	for _, kv := range env {
		k, val, ok := strings.Cut(kv, "=")
		name, isVar := strings.CutPrefix(k, "PKR_VAR_")
		if !ok || !isVar {
			continue
		}
		if v := l.lookupVar(name); v != nil { // undeclared ones are ignored, as in Packer
			l.setString(v, val, "environment variable "+k)
		}
	}
	for _, f := range autoVars {
		l.varFile(f)
	}
	for _, f := range l.o.VarFiles {
		l.varFile(f)
	}
	var unknown []string
	for _, name := range slices.Sorted(mapKeys(l.o.Vars)) {
		v := l.lookupVar(name)
		if v == nil {
			unknown = append(unknown, name)
			continue
		}
		l.setString(v, l.o.Vars[name], "-var "+name)
	}
	if len(unknown) > 0 {
		declared := make([]string, len(l.vars))
		for i, v := range l.vars {
			declared[i] = v.name
		}
		list := strings.Join(declared, ", ")
		if list == "" {
			list = "none"
		}
		l.diags = append(l.diags, diagf(nil, "Undefined -var variable",
			"-var sets undeclared variables: %s (the template declares: %s)", strings.Join(unknown, ", "), list))
	}
	var unset []string
	for _, v := range l.vars {
		switch {
		case v.failed:
			continue
		case v.value == cty.NilVal:
			unset = append(unset, v.name)
			continue
		case v.value.IsNull() && !v.nullable:
			l.diags = append(l.diags, diagf(l.valueRange(v), "Invalid value for variable", "variable %q (from %s) must not be null", v.name, v.set))
			continue
		}
		conv, err := convert.Convert(v.value, v.typ)
		if err != nil {
			l.diags = append(l.diags, diagf(l.valueRange(v), "Invalid value for variable",
				"variable %q (from %s): %v; want %s", v.name, v.set, err, v.typ.FriendlyName()))
			continue
		}
		v.value = conv
		l.validate(v)
		if v.sensitive {
			l.secrets = append(l.secrets, secrets(v.value)...)
		}
	}
	if len(unset) > 0 {
		for _, name := range unset {
			v := l.lookupVar(name)
			l.diags = append(l.diags, diagf(v.decl.Ptr(), "Unset variable",
				"variable %q has no default and no value: set it with -var %s=..., -var-file, a *.auto.pkrvars.hcl file or PKR_VAR_%s", name, name, name))
		}
	}
	t := l.result.Template
	for _, v := range l.vars {
		tv := &template.Variable{Name: v.name, Required: v.def == cty.NilVal,
			Pos: template.Pos{Line: v.decl.Start.Line, Col: v.decl.Start.Column}}
		if v.def != cty.NilVal {
			tv.Default = display(v.def)
		}
		t.Variables = append(t.Variables, tv)
		if v.sensitive {
			t.SensitiveVariables = append(t.SensitiveVariables, v.name)
		}
	}
}

func (l *loader) valueRange(v *variable) *hcl.Range {
	if v.setRange != nil {
		return v.setRange
	}
	return v.decl.Ptr()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// setString sets a value given as a string on the command line or in the
// environment: taken as it is for string and untyped variables, parsed as
// an HCL expression otherwise.
func (l *loader) setString(v *variable, s, from string) {
	v.set, v.setRange = from, nil
	if v.typ == cty.String || v.typ == cty.DynamicPseudoType {
		v.value = cty.StringVal(s)
		return
	}
	expr, d := hclsyntax.ParseExpression([]byte(s), from, hcl.InitialPos)
	var val cty.Value
	if !d.HasErrors() {
		val, d = expr.Value(nil)
	}
	if d.HasErrors() {
		l.diags = append(l.diags, diagf(nil, "Invalid value for variable", "variable %q (from %s): %q is not a valid %s value: %s",
			v.name, from, s, v.typ.FriendlyNameForConstraint(), d[0].Summary))
		v.failed = true
		return
	}
	v.value = val
}

// varFile reads a .pkrvars.hcl or JSON variable file.
func (l *loader) varFile(path string) {
	if _, err := os.Stat(path); err != nil {
		l.diags = append(l.diags, diagf(nil, "Cannot read variable file", "%v", err))
		return
	}
	f, d := l.parse(path)
	if f == nil || d.HasErrors() {
		return
	}
	attrs, d := f.Body.JustAttributes()
	l.diags = append(l.diags, d...)
	for _, name := range sortedAttrs(attrs) {
		a := attrs[name]
		v := l.lookupVar(name)
		if v == nil {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Undefined variable",
				Detail: fmt.Sprintf("%q is set in %s but not declared by the template; it is ignored", name, path), Subject: a.NameRange.Ptr()})
			continue
		}
		val, d := a.Expr.Value(nil)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		v.value, v.set, v.setRange = val, path, a.Expr.Range().Ptr()
	}
}

// validate runs a variable's validation blocks; their conditions may refer
// only to the variable itself.
func (l *loader) validate(v *variable) {
	ctx := l.evalContext(nil)
	ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.name: v.value})}
	for _, val := range v.validations {
		for _, t := range val.condition.Variables() {
			if t.RootName() != "var" || len(t) < 2 || attrName(t[1]) != v.name {
				l.diags = append(l.diags, diagf(val.condition.Range().Ptr(), "Invalid validation condition",
					"the condition of variable %q may refer only to var.%s", v.name, v.name))
				return
			}
		}
		res, d := val.condition.Value(ctx)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		res, err := convert.Convert(res, cty.Bool)
		if err != nil || res.IsNull() || !res.IsKnown() {
			l.diags = append(l.diags, diagf(val.condition.Range().Ptr(), "Invalid validation condition", "the condition must be true or false"))
			continue
		}
		if res.True() {
			continue
		}
		var msg string
		if !l.decodeString(val.message, &msg) {
			continue
		}
		rng := l.valueRange(v)
		if v.setRange == nil {
			rng = val.condition.Range().Ptr()
		}
		l.diags = append(l.diags, diagf(rng, "Invalid value for variable", "%s (variable %q, from %s; validation at %s)", msg, v.name, v.set, val.rng))
	}
}

func attrName(t hcl.Traverser) string {
	switch t := t.(type) {
	case hcl.TraverseAttr:
		return t.Name
	case hcl.TraverseIndex:
		if t.Key.Type() == cty.String {
			return t.Key.AsString()
		}
	}
	return ""
}

// envFunc reads a variable of environ; an unset one is "".
func envFunc(environ []string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			prefix := args[0].AsString() + "="
			for i := len(environ) - 1; i >= 0; i-- {
				if v, ok := strings.CutPrefix(environ[i], prefix); ok {
					return cty.StringVal(v), nil
				}
			}
			return cty.StringVal(""), nil
		},
	})
}
