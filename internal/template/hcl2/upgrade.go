package hcl2

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template/parse"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/packer-stdio/packer/internal/template"
)

// Upgrade writes an HCL2 template equivalent to the JSON template t, as
// packer hcl2_upgrade does:
//
//   - variables become variable blocks (sensitive-variables sets
//     sensitive; an {{env `X`}} default becomes env("X"));
//   - each builder becomes a source block named after the build, and one
//     build block uses them all, with the description;
//   - provisioners, the error-cleanup-provisioner and post-processors go
//     into the build block; only, except and override name sources as
//     TYPE.NAME; a post-processor sequence becomes a post-processors block;
//   - min_packer_version and required_plugins go into a packer block;
//   - {{user `x`}} becomes ${var.x}, {{build_name}} ${source.name},
//     {{build_type}} ${source.type}, {{build `X`}} ${build.X},
//     {{template_dir}} ${path.root}, {{pwd}} ${path.cwd}, {{uuid}}
//     ${uuidv4()}, {{isotime "F"}} ${legacy_isotime("F")},
//     {{packer_version}} ${packer.version}, upper, lower, replace,
//     replace_all and split their HCL2 functions, and {{timestamp}}
//     ${local.timestamp}, which is, as in Packer, a compact UTC date
//     rather than the Unix time. {{.Field}} references, which plugins
//     render themselves, are kept.
//
// Configurations are written as blocks or attributes following each
// component's schema from schemas (nil: attributes only), so that the
// result decodes to the same configurations. A string Upgrade cannot
// translate is an error naming it.
func Upgrade(t *template.Template, schemas Schemas) ([]byte, error) {
	u := &upgrader{t: t, schemas: schemas}
	var b strings.Builder
	u.packer(&b)
	u.variables(&b)
	body := &strings.Builder{}
	u.sources(body)
	u.build(body)
	if u.timestamp {
		b.WriteString("# As packer hcl2_upgrade does: {{timestamp}} becomes this compact UTC date.\n")
		b.WriteString("locals {\n  timestamp = regex_replace(timestamp(), \"[- TZ:]\", \"\")\n}\n\n")
	}
	b.WriteString(body.String())
	if len(u.errs) > 0 {
		return nil, fmt.Errorf("hcl2_upgrade: %s", strings.Join(u.errs, "; "))
	}
	return hclwrite.Format([]byte(b.String())), nil
}

type upgrader struct {
	t         *template.Template
	schemas   Schemas
	errs      []string
	timestamp bool
}

func (u *upgrader) errorf(format string, args ...any) {
	u.errs = append(u.errs, fmt.Sprintf(format, args...))
}

func (u *upgrader) packer(b *strings.Builder) {
	t := u.t
	if t.MinVersion == "" && len(t.RequiredPlugins) == 0 {
		return
	}
	b.WriteString("packer {\n")
	if t.MinVersion != "" {
		fmt.Fprintf(b, "  required_version = %s\n", quote(">= "+t.MinVersion))
	}
	if len(t.RequiredPlugins) > 0 {
		b.WriteString("  required_plugins {\n")
		for _, p := range t.RequiredPlugins {
			fmt.Fprintf(b, "    %s = {\n      version = %s\n    }\n", key(p.Name), quote(p.Constraint))
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n\n")
}

func (u *upgrader) variables(b *strings.Builder) {
	for _, v := range u.t.Variables {
		fmt.Fprintf(b, "variable %s {\n  type = string\n", quote(v.Name))
		if !v.Required {
			fmt.Fprintf(b, "  default = %s\n", u.defaultValue(v))
		}
		if slices.Contains(u.t.SensitiveVariables, v.Name) {
			b.WriteString("  sensitive = true\n")
		}
		b.WriteString("}\n\n")
	}
}

// defaultValue translates a variable's default: a literal, or a single
// {{env `X`}}.
func (u *upgrader) defaultValue(v *template.Variable) string {
	if !strings.Contains(v.Default, "{{") {
		return quote(v.Default)
	}
	tree, err := parseTemplate(v.Default)
	if err == nil && len(tree.Root.Nodes) == 1 {
		if a, ok := tree.Root.Nodes[0].(*parse.ActionNode); ok && len(a.Pipe.Cmds) == 1 {
			args := a.Pipe.Cmds[0].Args
			if id, ok := args[0].(*parse.IdentifierNode); ok && id.Ident == "env" && len(args) == 2 {
				if s, ok := args[1].(*parse.StringNode); ok {
					return "env(" + quote(s.Text) + ")"
				}
			}
		}
	}
	u.errorf("variable %q: only a literal or {{env `NAME`}} default can be upgraded, not %q", v.Name, v.Default)
	return `""`
}

// sourceName is the source a JSON build becomes: its name, as a valid
// label.
func sourceName(b *template.Builder) string { return b.Name }

func (u *upgrader) ref(build string) string {
	if b := u.t.Builder(build); b != nil {
		return b.Type + "." + sourceName(b)
	}
	return build
}

func (u *upgrader) sources(b *strings.Builder) {
	for _, bl := range u.t.Builders {
		fmt.Fprintf(b, "source %s %s {\n", quote(bl.Type), quote(sourceName(bl)))
		u.body(b, KindBuilder, bl.Type, bl.Config, "  ")
		b.WriteString("}\n\n")
	}
}

func (u *upgrader) build(b *strings.Builder) {
	t := u.t
	b.WriteString("build {\n")
	if t.Description != "" {
		fmt.Fprintf(b, "  description = %s\n", u.str(t.Description))
	}
	b.WriteString("  sources = [\n")
	for _, bl := range t.Builders {
		fmt.Fprintf(b, "    %s,\n", quote("source."+bl.Type+"."+sourceName(bl)))
	}
	b.WriteString("  ]\n")
	for _, p := range t.Provisioners {
		b.WriteString("\n")
		u.provisioner(b, "provisioner", p)
	}
	if p := t.ErrorCleanupProvisioner; p != nil {
		b.WriteString("\n")
		u.provisioner(b, "error-cleanup-provisioner", p)
	}
	for _, seq := range t.PostProcessors {
		b.WriteString("\n")
		indent := "  "
		if len(seq) > 1 {
			b.WriteString("  post-processors {\n")
			indent = "    "
		}
		for i, pp := range seq {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(b, "%spost-processor %s {\n", indent, quote(pp.Type))
			in := indent + "  "
			if pp.Name != pp.Type {
				fmt.Fprintf(b, "%sname = %s\n", in, quote(pp.Name))
			}
			u.onlyExcept(b, in, pp.Only, pp.Except)
			if pp.KeepInputArtifact != nil {
				fmt.Fprintf(b, "%skeep_input_artifact = %v\n", in, *pp.KeepInputArtifact)
			}
			u.body(b, KindPostProcessor, pp.Type, pp.Config, in)
			fmt.Fprintf(b, "%s}\n", indent)
		}
		if len(seq) > 1 {
			b.WriteString("  }\n")
		}
	}
	b.WriteString("}\n")
}

func (u *upgrader) onlyExcept(b *strings.Builder, indent string, only, except []string) {
	for _, l := range []struct {
		name  string
		names []string
	}{{"only", only}, {"except", except}} {
		if len(l.names) == 0 {
			continue
		}
		refs := make([]string, len(l.names))
		for i, n := range l.names {
			refs[i] = quote(u.ref(n))
		}
		fmt.Fprintf(b, "%s%s = [%s]\n", indent, l.name, strings.Join(refs, ", "))
	}
}

func (u *upgrader) provisioner(b *strings.Builder, block string, p *template.Provisioner) {
	fmt.Fprintf(b, "  %s %s {\n", block, quote(p.Type))
	in := "    "
	u.onlyExcept(b, in, p.Only, p.Except)
	if p.PauseBefore > 0 {
		fmt.Fprintf(b, "%spause_before = %s\n", in, quote(p.PauseBefore.String()))
	}
	if p.MaxRetries > 0 {
		fmt.Fprintf(b, "%smax_retries = %d\n", in, p.MaxRetries)
	}
	if p.Timeout > 0 {
		fmt.Fprintf(b, "%stimeout = %s\n", in, quote(p.Timeout.String()))
	}
	if len(p.Override) > 0 {
		fmt.Fprintf(b, "%soverride = {\n", in)
		for _, name := range sortedKeys(p.Override) {
			fmt.Fprintf(b, "%s  %s = %s\n", in, quote(u.ref(name)), u.value(p.Override[name], in+"  "))
		}
		fmt.Fprintf(b, "%s}\n", in)
	}
	u.body(b, KindProvisioner, p.Type, p.Config, in)
	b.WriteString("  }\n")
}

// body writes a configuration as attributes and, where the component's
// schema says so, blocks.
func (u *upgrader) body(b *strings.Builder, kind, typ string, cfg map[string]any, indent string) {
	var spec hcldec.ObjectSpec
	if u.schemas != nil {
		if raw, err := u.schemas.ConfigSchema(kind, typ); err == nil {
			if cs, err := newConfigSpec(raw); err == nil {
				spec = cs.spec
			}
		}
	}
	u.object(b, spec, cfg, indent)
}

func (u *upgrader) object(b *strings.Builder, spec hcldec.ObjectSpec, cfg map[string]any, indent string) {
	for _, k := range sortedKeys(cfg) {
		v := cfg[k]
		switch s := spec[k].(type) {
		case *hcldec.BlockSpec:
			if m, ok := v.(map[string]any); ok {
				fmt.Fprintf(b, "%s%s {\n", indent, k)
				u.object(b, nestedSpec(s.Nested), m, indent+"  ")
				fmt.Fprintf(b, "%s}\n", indent)
				continue
			}
		case *hcldec.BlockListSpec:
			if list, ok := v.([]any); ok && allMaps(list) {
				for _, e := range list {
					fmt.Fprintf(b, "%s%s {\n", indent, k)
					u.object(b, nestedSpec(s.Nested), e.(map[string]any), indent+"  ")
					fmt.Fprintf(b, "%s}\n", indent)
				}
				continue
			}
		}
		fmt.Fprintf(b, "%s%s = %s\n", indent, key(k), u.value(v, indent))
	}
}

func nestedSpec(s hcldec.Spec) hcldec.ObjectSpec {
	o, _ := s.(hcldec.ObjectSpec)
	return o
}

func allMaps(list []any) bool {
	for _, e := range list {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// value writes a configuration value as an HCL expression.
func (u *upgrader) value(v any, indent string) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return u.str(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = u.value(e, indent)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		var b strings.Builder
		b.WriteString("{\n")
		for _, k := range sortedKeys(v) {
			fmt.Fprintf(&b, "%s  %s = %s\n", indent, key(k), u.value(v[k], indent+"  "))
		}
		b.WriteString(indent + "}")
		return b.String()
	}
	u.errorf("cannot write a %T", v)
	return "null"
}

// str translates a JSON template string into an HCL string template.
func (u *upgrader) str(s string) string {
	if !strings.Contains(s, "{{") {
		return quote(s)
	}
	tree, err := parseTemplate(s)
	if err != nil {
		u.errorf("%q: %v", s, err)
		return quote(s)
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, n := range tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			b.WriteString(escape(string(n.Text)))
		case *parse.ActionNode:
			if keepsField(n) {
				b.WriteString(escape(n.String()))
				continue
			}
			expr, ok := u.pipe(n.Pipe)
			if !ok {
				u.errorf("cannot upgrade %s in %q: rewrite it by hand", n, s)
				b.WriteString(escape(n.String()))
				continue
			}
			b.WriteString("${" + expr + "}")
		default:
			u.errorf("cannot upgrade %s in %q: rewrite it by hand", n, s)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// keepsField reports whether an action is a plugin's own {{.Field}}.
func keepsField(n *parse.ActionNode) bool {
	for _, c := range n.Pipe.Cmds {
		for _, a := range c.Args {
			if _, ok := a.(*parse.FieldNode); ok {
				return true
			}
		}
	}
	return false
}

func (u *upgrader) pipe(p *parse.PipeNode) (string, bool) {
	if len(p.Decl) > 0 {
		return "", false
	}
	var prev string
	for i, c := range p.Cmds {
		var args []string
		for _, a := range c.Args[1:] {
			e, ok := u.arg(a)
			if !ok {
				return "", false
			}
			args = append(args, e)
		}
		if i > 0 {
			args = append(args, prev)
		}
		id, ok := c.Args[0].(*parse.IdentifierNode)
		if !ok {
			if len(c.Args) == 1 && i == 0 {
				e, ok := u.arg(c.Args[0])
				prev = e
				if ok {
					continue
				}
			}
			return "", false
		}
		e, ok := u.call(id.Ident, args)
		if !ok {
			return "", false
		}
		prev = e
	}
	return prev, true
}

func (u *upgrader) arg(n parse.Node) (string, bool) {
	switch n := n.(type) {
	case *parse.StringNode:
		return quote(n.Text), true
	case *parse.NumberNode:
		return n.Text, true
	case *parse.PipeNode:
		return u.pipe(n)
	case *parse.IdentifierNode:
		return u.call(n.Ident, nil)
	}
	return "", false
}

// call translates one template function call with HCL argument
// expressions.
func (u *upgrader) call(name string, args []string) (string, bool) {
	ident := func(a string) (string, bool) {
		s, err := strconv.Unquote(a)
		if err != nil || !hclsyntax.ValidIdentifier(s) {
			return "", false
		}
		return s, true
	}
	switch {
	case name == "user" && len(args) == 1:
		if s, ok := ident(args[0]); ok {
			return "var." + s, true
		}
	case name == "build" && len(args) == 1:
		if s, ok := ident(args[0]); ok {
			return "build." + s, true
		}
	case name == "build_name" && len(args) == 0:
		return "source.name", true
	case name == "build_type" && len(args) == 0:
		return "source.type", true
	case name == "template_dir" && len(args) == 0:
		return "path.root", true
	case name == "pwd" && len(args) == 0:
		return "path.cwd", true
	case name == "packer_version" && len(args) == 0:
		return "packer.version", true
	case name == "uuid" && len(args) == 0:
		return "uuidv4()", true
	case name == "timestamp" && len(args) == 0:
		u.timestamp = true
		return "local.timestamp", true
	case name == "isotime" && len(args) == 0:
		return "timestamp()", true
	case name == "isotime" && len(args) == 1:
		return "legacy_isotime(" + args[0] + ")", true
	case (name == "upper" || name == "lower") && len(args) == 1:
		return name + "(" + args[0] + ")", true
	case name == "replace_all" && len(args) == 3:
		return "replace(" + args[2] + ", " + args[0] + ", " + args[1] + ")", true
	case name == "replace" && len(args) == 4 && strings.HasPrefix(args[2], "-"):
		return "replace(" + args[3] + ", " + args[0] + ", " + args[1] + ")", true
	case name == "split" && len(args) == 3:
		return "element(split(" + args[1] + ", " + args[0] + "), " + args[2] + ")", true
	}
	return "", false
}

// parseTemplate parses a JSON template string with Packer's function
// names declared.
func parseTemplate(s string) (*parse.Tree, error) {
	funcs := map[string]any{}
	for _, f := range []string{"user", "env", "build_name", "build_type", "build", "timestamp", "isotime", "uuid",
		"pwd", "template_dir", "upper", "lower", "replace", "replace_all", "split", "packer_version"} {
		funcs[f] = true
	}
	trees, err := parse.Parse("value", s, "", "", funcs)
	if err != nil {
		return nil, err
	}
	return trees["value"], nil
}

// quote returns s as an HCL string literal without interpolation.
func quote(s string) string { return `"` + escape(s) + `"` }

// escape escapes s for the inside of an HCL quoted string.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// key writes an object key: bare when it is an identifier.
func key(k string) string {
	if hclsyntax.ValidIdentifier(k) {
		return k
	}
	return quote(k)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
