package hcl2

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

type funcValue = function.Function

// evalContext returns the context expressions are evaluated in: var,
// local, data, path, packer, the functions, and extra (source, build).
func (l *loader) evalContext(extra map[string]cty.Value) *hcl.EvalContext {
	if l.funcs == nil {
		l.funcs = functions(l.dir, l.now)
	}
	vars := map[string]cty.Value{}
	for _, v := range l.vars {
		if v.value != cty.NilVal {
			vars[v.name] = v.value
		}
	}
	data := map[string]cty.Value{}
	for typ, byName := range l.data {
		data[typ] = cty.ObjectVal(byName)
	}
	cwd, _ := os.Getwd()
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":   cty.ObjectVal(vars),
			"local": cty.ObjectVal(l.locals),
			"data":  cty.ObjectVal(data),
			"path":  cty.ObjectVal(map[string]cty.Value{"root": cty.StringVal(l.dir), "cwd": cty.StringVal(cwd)}),
			"packer": cty.ObjectVal(map[string]cty.Value{
				"version": cty.StringVal(l.o.PackerVersion),
			}),
		},
		Functions: l.funcs,
	}
	for k, v := range extra {
		ctx.Variables[k] = v
	}
	return ctx
}

// node is a local or a data source: what evalLocalsAndData orders.
type node struct {
	key  string // "local.NAME" or "data.TYPE.NAME"
	rng  hcl.Range
	deps []string
	eval func()
}

// evalLocalsAndData evaluates locals and data sources in dependency order.
func (l *loader) evalLocalsAndData() {
	var nodes []*node
	seen := map[string]hcl.Range{}
	add := func(n *node) {
		if old, dup := seen[n.key]; dup {
			l.diags = append(l.diags, diagf(n.rng.Ptr(), "Duplicate "+strings.SplitN(n.key, ".", 2)[0], "%s is already defined at %s", n.key, old))
			return
		}
		seen[n.key] = n.rng
		nodes = append(nodes, n)
	}
	for _, b := range l.blocks("locals") {
		attrs, d := b.Body.JustAttributes()
		l.diags = append(l.diags, d...)
		for _, name := range sortedAttrs(attrs) {
			a := attrs[name]
			add(&node{key: "local." + name, rng: a.NameRange, deps: refs(a.Expr.Variables()), eval: func() {
				l.setLocal(name, a.Expr, false)
			}})
		}
	}
	for _, b := range l.blocks("local") {
		c, d := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "expression", Required: true}, {Name: "sensitive"}}})
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		name := b.Labels[0]
		sensitive := false
		if a := c.Attributes["sensitive"]; a != nil {
			v, d := a.Expr.Value(nil)
			l.diags = append(l.diags, d...)
			sensitive = !d.HasErrors() && v.Type() == cty.Bool && v.True()
		}
		expr := c.Attributes["expression"].Expr
		add(&node{key: "local." + name, rng: b.DefRange, deps: refs(expr.Variables()), eval: func() {
			l.setLocal(name, expr, sensitive)
		}})
	}
	for _, b := range l.blocks("data") {
		typ, name := b.Labels[0], b.Labels[1]
		spec, d := l.spec(KindDatasource, typ, b.DefRange)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		var deps []string
		if spec != nil {
			deps = refs(dynblock.VariablesHCLDec(b.Body, spec.spec))
		} else {
			attrs, _ := b.Body.JustAttributes()
			for _, a := range attrs {
				deps = append(deps, refs(a.Expr.Variables())...)
			}
		}
		add(&node{key: "data." + typ + "." + name, rng: b.DefRange, deps: deps, eval: func() {
			l.runData(typ, name, b)
		}})
	}
	done := map[string]bool{}
	for len(nodes) > 0 {
		progress := false
		var rest []*node
		for _, n := range nodes {
			ready := true
			for _, d := range n.deps {
				if _, known := seen[d]; known && !done[d] {
					ready = false
					break
				}
			}
			if !ready {
				rest = append(rest, n)
				continue
			}
			n.eval()
			done[n.key] = true
			progress = true
		}
		if !progress {
			var names []string
			for _, n := range rest {
				names = append(names, n.key)
			}
			l.diags = append(l.diags, diagf(rest[0].rng.Ptr(), "Cycle in locals and data sources",
				"these refer to each other: %s", strings.Join(names, ", ")))
			return
		}
		nodes = rest
	}
}

// refs returns the local.X and data.T.N names traversals refer to.
func refs(ts []hcl.Traversal) []string {
	var out []string
	for _, t := range ts {
		switch t.RootName() {
		case "local":
			if len(t) >= 2 {
				out = append(out, "local."+attrName(t[1]))
			}
		case "data":
			if len(t) >= 3 {
				out = append(out, "data."+attrName(t[1])+"."+attrName(t[2]))
			}
		}
	}
	return out
}

func (l *loader) setLocal(name string, expr hcl.Expression, sensitive bool) {
	v, d := expr.Value(l.evalContext(nil))
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		v = cty.DynamicVal
	}
	l.locals[name] = v
	if sensitive {
		l.secrets = append(l.secrets, secrets(v)...)
	}
}

// runData decodes a data source's configuration and runs it.
func (l *loader) runData(typ, name string, b *hcl.Block) {
	if l.data[typ] == nil {
		l.data[typ] = map[string]cty.Value{}
	}
	l.data[typ][name] = cty.DynamicVal
	cfg, d := l.decode(KindDatasource, typ, b.Body, b.DefRange, l.evalContext(nil))
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return
	}
	l.checkRequired(KindDatasource, typ, cfg, b.DefRange)
	if l.o.Datasources == nil {
		return
	}
	out, err := l.o.Datasources.Execute(typ, cfg)
	if err != nil {
		l.diags = append(l.diags, diagf(b.DefRange.Ptr(), "Data source failed", "data %q %q: %v", typ, name, err))
		return
	}
	v, err := fromJSON(out)
	if err != nil {
		l.diags = append(l.diags, diagf(b.DefRange.Ptr(), "Data source failed", "data %q %q: output: %v", typ, name, err))
		return
	}
	l.data[typ][name] = v
}

// spec returns the decoding spec of a component, nil when there are no
// schemas (syntax checks).
func (l *loader) spec(kind, typ string, rng hcl.Range) (*configSpec, hcl.Diagnostics) {
	if l.o.Schemas == nil {
		return nil, nil
	}
	key := kind + " " + typ
	if s, ok := l.specs[key]; ok {
		if s == nil {
			return nil, hcl.Diagnostics{diagf(rng.Ptr(), "Unknown "+kind, "no %s %q (see the error above)", kind, typ)}
		}
		return s, nil
	}
	schema, err := l.o.Schemas.ConfigSchema(kind, typ)
	if err == nil {
		var s *configSpec
		if s, err = newConfigSpec(schema); err == nil {
			l.specs[key] = s
			return s, nil
		}
	}
	l.specs[key] = nil
	return nil, hcl.Diagnostics{diagf(rng.Ptr(), "Unknown "+kind, "%s %q: %v", kind, typ, err)}
}

// decode decodes a component's body into its configuration map.
func (l *loader) decode(kind, typ string, body hcl.Body, rng hcl.Range, ctx *hcl.EvalContext) (map[string]any, hcl.Diagnostics) {
	spec, diags := l.spec(kind, typ, rng)
	if diags.HasErrors() {
		return nil, diags
	}
	var val cty.Value
	var d hcl.Diagnostics
	if spec == nil {
		val, d = justAttributes(body, ctx)
	} else {
		val, d = hcldec.Decode(dynblock.Expand(body, ctx), spec.spec, ctx)
	}
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, diags
	}
	cfg, d := l.toConfig(val, spec, rng)
	return cfg, append(diags, d...)
}

// checkRequired reports the required keys a final configuration lacks.
func (l *loader) checkRequired(kind, typ string, cfg map[string]any, rng hcl.Range) {
	if spec, _ := l.spec(kind, typ, rng); spec != nil {
		l.diags = append(l.diags, spec.missingRequired(cfg, fmt.Sprintf("%s %q", kind, typ), rng)...)
	}
}

// toConfig converts a decoded object into a configuration map.
func (l *loader) toConfig(val cty.Value, spec *configSpec, rng hcl.Range) (map[string]any, hcl.Diagnostics) {
	cfg := map[string]any{}
	if val.IsNull() {
		return cfg, nil
	}
	var diags hcl.Diagnostics
	for it := val.ElementIterator(); it.Next(); {
		k, v := it.Element()
		key := k.AsString()
		if v.IsNull() || (spec != nil && spec.blockLists[key] && v.IsKnown() && v.LengthInt() == 0) {
			continue
		}
		g, err := toGo(v)
		if err == errUnknown && l.o.Datasources == nil {
			cfg[key] = "<unknown>"
			continue
		}
		if err != nil {
			diags = append(diags, diagf(rng.Ptr(), "Invalid configuration", "%s: %v", key, err))
			continue
		}
		cfg[key] = g
	}
	return cfg, diags
}

type sourceBlock struct {
	typ, name string
	block     *hcl.Block
}

func (l *loader) collectSources() {
	for _, b := range l.blocks("source") {
		key := b.Labels[0] + "." + b.Labels[1]
		if old, dup := l.sources[key]; dup {
			l.diags = append(l.diags, diagf(b.DefRange.Ptr(), "Duplicate source", "source %q is already defined at %s", key, old.block.DefRange))
			continue
		}
		l.sources[key] = &sourceBlock{typ: b.Labels[0], name: b.Labels[1], block: b}
	}
}

func (l *loader) sourceNames() string {
	names := make([]string, 0, len(l.sources))
	for k := range l.sources {
		names = append(names, "source."+k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// lookupSource finds "source.TYPE.NAME" or "TYPE.NAME".
func (l *loader) lookupSource(ref string, rng hcl.Range) *sourceBlock {
	s := l.sources[strings.TrimPrefix(ref, "source.")]
	if s == nil {
		l.diags = append(l.diags, diagf(rng.Ptr(), "Unknown source", "%q is not a defined source (sources: %s)", ref, l.sourceNames()))
	}
	return s
}

// display names for messages
func blockName(b *hcl.Block) string {
	parts := append([]string{b.Type}, b.Labels...)
	for i := 1; i < len(parts); i++ {
		parts[i] = fmt.Sprintf("%q", parts[i])
	}
	return strings.Join(parts, " ")
}

var _ = slices.Contains[[]string]
