package hcl2

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/packer-stdio/packer/internal/template"
)

// BuildValues are the names build.NAME may use besides build.name: the
// values builders commonly share (Packer's generated data). Each becomes
// a {{build `NAME`}} placeholder that the runner fills in after the
// builder ran.
var BuildValues = []string{
	"ID", "Host", "Port", "User", "Password", "ConnType", "PackerRunUUID",
	"PackerHTTPIP", "PackerHTTPPort", "PackerHTTPAddr", "SSHPublicKey", "SSHPrivateKey", "WinRMPassword",
	"SourceImageName", "SourceImageID",
}

var buildSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "description"}, {Name: "sources"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "source", LabelNames: []string{"reference"}},
		{Type: "provisioner", LabelNames: []string{"type"}},
		{Type: "error-cleanup-provisioner", LabelNames: []string{"type"}},
		{Type: "post-processor", LabelNames: []string{"type"}},
		{Type: "post-processors"},
	},
}

var provisionerOptions = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "only"}, {Name: "except"}, {Name: "override"}, {Name: "pause_before"},
	{Name: "max_retries"}, {Name: "timeout"}, {Name: "name"},
}}

var postProcessorOptions = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "only"}, {Name: "except"}, {Name: "keep_input_artifact"}, {Name: "name"},
}}

// use is one source a build uses, with the build's overrides.
type use struct {
	src       *sourceBlock
	localName string // the build's name for it (source "T.N" { name = ... })
	full      string // BUILD.TYPE.NAME, the build name in the model
	override  hcl.Body
	rng       hcl.Range
	// buildRefs are the names build.NAME expressions of the build block
	// use besides BuildValues.
	buildRefs []string
}

// ref is how only/except name the source: TYPE.NAME.
func (u *use) ref() string { return u.src.typ + "." + u.localName }

func (u *use) vars(buildName string) map[string]cty.Value {
	b := map[string]cty.Value{"name": cty.StringVal(buildName)}
	for _, k := range append(slices.Clone(BuildValues), u.buildRefs...) {
		if k != "name" {
			b[k] = cty.StringVal(template.BuildPlaceholder(k))
		}
	}
	return map[string]cty.Value{
		"source": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(u.localName), "type": cty.StringVal(u.src.typ)}),
		"build":  cty.ObjectVal(b),
	}
}

func (l *loader) builds() {
	t := l.result.Template
	names := map[string]hcl.Range{}
	for _, b := range l.blocks("build") {
		c, d := b.Body.Content(buildSchema)
		l.diags = append(l.diags, d...)
		var info struct{ Name, Description string }
		if a := c.Attributes["name"]; a != nil {
			l.decodeString(a.Expr, &info.Name)
		}
		if a := c.Attributes["description"]; a != nil {
			l.decodeString(a.Expr, &info.Description)
			if t.Description == "" {
				t.Description = info.Description
			}
		}
		var uses []*use
		if a := c.Attributes["sources"]; a != nil {
			v, d := a.Expr.Value(l.evalContext(nil))
			l.diags = append(l.diags, d...)
			if !d.HasErrors() {
				list, err := convert.Convert(v, cty.List(cty.String))
				if err != nil || list.IsNull() || !list.IsWhollyKnown() {
					l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid sources", `want a list of source references such as ["source.null.example"]`))
				} else {
					for it := list.ElementIterator(); it.Next(); {
						_, e := it.Element()
						if s := l.lookupSource(e.AsString(), a.Expr.Range()); s != nil {
							uses = append(uses, &use{src: s, localName: s.name, rng: a.Expr.Range()})
						}
					}
				}
			}
		}
		for _, sb := range c.Blocks {
			if sb.Type != "source" {
				continue
			}
			s := l.lookupSource(sb.Labels[0], sb.LabelRanges[0])
			if s == nil {
				continue
			}
			u := &use{src: s, localName: s.name, rng: sb.DefRange}
			nc, rest, d := sb.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "name"}}})
			l.diags = append(l.diags, d...)
			if a := nc.Attributes["name"]; a != nil {
				l.decodeString(a.Expr, &u.localName)
			}
			u.override = rest
			uses = append(uses, u)
		}
		refs := buildRefNames(b.Body)
		for _, u := range uses {
			u.buildRefs = refs
		}
		if len(uses) == 0 {
			l.diags = append(l.diags, diagf(b.DefRange.Ptr(), "Build without sources", "a build block needs sources = [...] or source blocks (sources: %s)", l.sourceNames()))
			continue
		}
		for _, u := range uses {
			u.full = u.ref()
			if info.Name != "" {
				u.full = info.Name + "." + u.full
			}
			if old, dup := names[u.full]; dup {
				l.diags = append(l.diags, diagf(u.rng.Ptr(), "Duplicate build", "a build named %q is already defined at %s; give the source a different name", u.full, old))
				continue
			}
			names[u.full] = u.rng
			l.builder(u, info.Name)
		}
		for _, pb := range c.Blocks {
			switch pb.Type {
			case "provisioner":
				for _, p := range l.provisioner(pb, uses, info.Name) {
					t.Provisioners = append(t.Provisioners, p)
				}
			case "error-cleanup-provisioner":
				for _, p := range l.provisioner(pb, uses, info.Name) {
					if t.ErrorCleanupByBuild == nil {
						t.ErrorCleanupByBuild = map[string]*template.Provisioner{}
					}
					build := p.Only[0]
					if _, dup := t.ErrorCleanupByBuild[build]; dup {
						l.diags = append(l.diags, diagf(pb.DefRange.Ptr(), "Duplicate error-cleanup-provisioner", "build %q has more than one", build))
					}
					t.ErrorCleanupByBuild[build] = p
				}
			case "post-processor":
				l.postProcessors([]*hcl.Block{pb}, uses, info.Name)
			case "post-processors":
				inner, d := pb.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "post-processor", LabelNames: []string{"type"}}}})
				l.diags = append(l.diags, d...)
				if len(inner.Blocks) == 0 && !d.HasErrors() {
					l.diags = append(l.diags, diagf(pb.DefRange.Ptr(), "Empty post-processors", "a post-processors block needs at least one post-processor block"))
				}
				l.postProcessors(inner.Blocks, uses, info.Name)
			}
		}
	}
}

// builder decodes the source a build uses, with its overrides.
func (l *loader) builder(u *use, buildName string) {
	ctx := l.evalContext(u.vars(buildName))
	b := u.src.block
	cfg, d := l.decode(KindBuilder, u.src.typ, b.Body, b.DefRange, ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return
	}
	if u.override != nil {
		over, d := l.decode(KindBuilder, u.src.typ, u.override, u.rng, ctx)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			return
		}
		maps.Copy(cfg, over)
	}
	where := b.DefRange
	if u.override != nil {
		where = u.rng
	}
	l.checkRequired(KindBuilder, u.src.typ, cfg, where)
	l.result.Template.Builders = append(l.result.Template.Builders, &template.Builder{
		Name: u.full, Type: u.src.typ, Config: cfg,
		Key:   fmt.Sprintf("source.%s.%s (%s)", u.src.typ, u.src.name, at(b.DefRange)),
		Pos:   template.Pos{Line: b.DefRange.Start.Line, Col: b.DefRange.Start.Column},
		Place: place(where, b.Body, u.override),
	})
}

// place says where a component whose block starts at block is written:
// each attribute and nested block of bodies, a later body's (an override)
// replacing an earlier one's. Only native syntax bodies tell; the keys of
// a .pkr.json body are placed at the block.
func place(block hcl.Range, bodies ...hcl.Body) *template.Place {
	p := &template.Place{Block: at(block), Keys: map[string]string{}}
	for _, body := range bodies {
		sb, ok := body.(*hclsyntax.Body)
		if !ok {
			continue
		}
		for i, b := range sb.Blocks {
			if !slices.ContainsFunc(sb.Blocks[:i], func(o *hclsyntax.Block) bool { return o.Type == b.Type }) {
				p.Keys[b.Type] = at(b.TypeRange) // the first of a list of blocks
			}
		}
		for name, a := range sb.Attributes {
			p.Keys[name] = at(a.NameRange)
		}
	}
	return p
}

func at(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// selected returns the uses a component's only and except keep.
func (l *loader) selected(c *hcl.BodyContent, uses []*use, ctx *hcl.EvalContext) []*use {
	pick := func(name string) ([]string, *hcl.Attribute) {
		a := c.Attributes[name]
		if a == nil {
			return nil, nil
		}
		v, d := a.Expr.Value(ctx)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			return nil, a
		}
		list, err := convert.Convert(v, cty.List(cty.String))
		if err != nil || list.IsNull() || !list.IsWhollyKnown() {
			l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid "+name, `want a list of source references such as ["null.example"]`))
			return nil, a
		}
		var out []string
		for it := list.ElementIterator(); it.Next(); {
			_, e := it.Element()
			ref := strings.TrimPrefix(e.AsString(), "source.")
			if !slices.ContainsFunc(uses, func(u *use) bool { return u.matches(ref) }) {
				var refs []string
				for _, u := range uses {
					refs = append(refs, u.ref())
				}
				l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Unknown source in "+name,
					"%q is not a source of this build (sources: %s)", e.AsString(), strings.Join(refs, ", ")))
			}
			out = append(out, ref)
		}
		return out, a
	}
	only, oa := pick("only")
	except, ea := pick("except")
	if oa != nil && ea != nil {
		l.diags = append(l.diags, diagf(ea.Range.Ptr(), "Invalid except", "only one of only and except may be set"))
	}
	var out []*use
	for _, u := range uses {
		if oa != nil && !slices.ContainsFunc(only, u.matches) {
			continue
		}
		if slices.ContainsFunc(except, u.matches) {
			continue
		}
		out = append(out, u)
	}
	return out
}

// matches reports whether ref (TYPE.NAME, NAME or BUILD.TYPE.NAME) names u.
func (u *use) matches(ref string) bool {
	return ref == u.ref() || ref == u.src.typ+"."+u.src.name || ref == u.full || ref == u.localName
}

// provisioner decodes a provisioner block once per source it runs for.
func (l *loader) provisioner(b *hcl.Block, uses []*use, buildName string) []*template.Provisioner {
	typ := b.Labels[0]
	c, rest, d := b.Body.PartialContent(provisionerOptions)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return nil
	}
	base := l.evalContext(nil)
	var out []*template.Provisioner
	for _, u := range l.selected(c, uses, base) {
		ctx := l.evalContext(u.vars(buildName))
		cfg, d := l.decode(KindProvisioner, typ, rest, b.DefRange, ctx)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			return nil
		}
		p := &template.Provisioner{Type: typ, Config: cfg, Only: []string{u.full},
			Key:   fmt.Sprintf("provisioner %q (%s)", typ, at(b.DefRange)),
			Pos:   template.Pos{Line: b.DefRange.Start.Line, Col: b.DefRange.Start.Column},
			Place: place(b.DefRange, rest)}
		if a := c.Attributes["override"]; a != nil {
			l.override(a, u, ctx, p)
		}
		l.checkRequired(KindProvisioner, typ, p.Config, b.DefRange)
		p.PauseBefore = l.duration(c.Attributes["pause_before"], ctx)
		p.Timeout = l.duration(c.Attributes["timeout"], ctx)
		if a := c.Attributes["max_retries"]; a != nil {
			v, d := a.Expr.Value(ctx)
			l.diags = append(l.diags, d...)
			n, err := convert.Convert(v, cty.Number)
			if d.HasErrors() {
				continue
			}
			if err != nil || n.IsNull() || !n.IsKnown() {
				l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid max_retries", "want a whole number"))
				continue
			}
			i, acc := n.AsBigFloat().Int64()
			if acc != 0 || i < 0 {
				l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid max_retries", "want a whole number, 0 or more"))
				continue
			}
			p.MaxRetries = int(i)
		}
		out = append(out, p)
	}
	return out
}

// override merges the entry of override for u into p's configuration.
func (l *loader) override(a *hcl.Attribute, u *use, ctx *hcl.EvalContext, p *template.Provisioner) {
	v, d := a.Expr.Value(ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return
	}
	g, err := toGo(v)
	m, ok := g.(map[string]any)
	if err != nil || !ok {
		l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid override", `want { "TYPE.NAME" = { key = value } }`))
		return
	}
	for key, val := range m {
		over, ok := val.(map[string]any)
		if !ok {
			l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid override", "override.%s: want an object", key))
			continue
		}
		if u.matches(strings.TrimPrefix(key, "source.")) {
			maps.Copy(p.Config, over)
		}
	}
}

func (l *loader) duration(a *hcl.Attribute, ctx *hcl.EvalContext) time.Duration {
	if a == nil {
		return 0
	}
	v, d := a.Expr.Value(ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return 0
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid duration", `want a duration such as "30s" or "5m"`))
		return 0
	}
	dur, err := time.ParseDuration(s.AsString())
	if err != nil {
		l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid duration", `%q: want a duration such as "30s" or "5m"`, s.AsString()))
	}
	return dur
}

// postProcessors decodes one sequence, once per source it runs for.
func (l *loader) postProcessors(blocks []*hcl.Block, uses []*use, buildName string) {
	t := l.result.Template
	seqs := map[*use][]*template.PostProcessor{}
	for _, b := range blocks {
		typ := b.Labels[0]
		c, rest, d := b.Body.PartialContent(postProcessorOptions)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		for _, u := range l.selected(c, uses, l.evalContext(nil)) {
			ctx := l.evalContext(u.vars(buildName))
			cfg, d := l.decode(KindPostProcessor, typ, rest, b.DefRange, ctx)
			l.diags = append(l.diags, d...)
			if d.HasErrors() {
				break
			}
			l.checkRequired(KindPostProcessor, typ, cfg, b.DefRange)
			pp := &template.PostProcessor{Type: typ, Name: typ, Config: cfg, Only: []string{u.full},
				Key:   fmt.Sprintf("post-processor %q (%s)", typ, at(b.DefRange)),
				Pos:   template.Pos{Line: b.DefRange.Start.Line, Col: b.DefRange.Start.Column},
				Place: place(b.DefRange, rest)}
			if a := c.Attributes["name"]; a != nil {
				l.decodeString(a.Expr, &pp.Name)
			}
			if a := c.Attributes["keep_input_artifact"]; a != nil {
				v, d := a.Expr.Value(ctx)
				l.diags = append(l.diags, d...)
				bv, err := convert.Convert(v, cty.Bool)
				if !d.HasErrors() && (err != nil || bv.IsNull() || !bv.IsKnown()) {
					l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid keep_input_artifact", "want true or false"))
				} else if !d.HasErrors() {
					keep := bv.True()
					pp.KeepInputArtifact = &keep
				}
			}
			seqs[u] = append(seqs[u], pp)
		}
	}
	for _, u := range uses {
		if len(seqs[u]) > 0 {
			t.PostProcessors = append(t.PostProcessors, seqs[u])
		}
	}
}

// buildRefNames returns the NAMEs of the build.NAME references in an HCL
// native syntax body: any value a builder shares (its generated_data) may
// be used, not only BuildValues.
func buildRefNames(body hcl.Body) []string {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var names []string
	hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		e, ok := n.(*hclsyntax.ScopeTraversalExpr)
		if !ok || e.Traversal.RootName() != "build" || len(e.Traversal) < 2 {
			return nil
		}
		if name := attrName(e.Traversal[1]); name != "" && hclsyntax.ValidIdentifier(name) && !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	return names
}
