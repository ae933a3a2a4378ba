package hcl2

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/packer-stdio/packer/internal/template"
)

// Component kinds, as Schemas and Datasources receive them.
const (
	KindBuilder       = "builder"
	KindProvisioner   = "provisioner"
	KindPostProcessor = "post-processor"
	KindDatasource    = "datasource"
)

// Schemas gives the JSON Schema (draft 2020-12) of the configuration of the
// component kind/typ, as its plugin declares it. It may block while a
// plugin starts; an error means the component is unknown or broken.
type Schemas interface {
	ConfigSchema(kind, typ string) ([]byte, error)
}

// SchemasFunc adapts a function to [Schemas].
type SchemasFunc func(kind, typ string) ([]byte, error)

// ConfigSchema calls f.
func (f SchemasFunc) ConfigSchema(kind, typ string) ([]byte, error) { return f(kind, typ) }

var _ Schemas = SchemasFunc(nil)

// Datasources runs data sources: Execute prepares the data source typ with
// config and returns its output object.
type Datasources interface {
	Execute(typ string, config map[string]any) (map[string]any, error)
}

// DatasourcesFunc adapts a function to [Datasources].
type DatasourcesFunc func(typ string, config map[string]any) (map[string]any, error)

// Execute calls f.
func (f DatasourcesFunc) Execute(typ string, config map[string]any) (map[string]any, error) {
	return f(typ, config)
}

var _ Datasources = DatasourcesFunc(nil)

// Options configure [Load].
type Options struct {
	// Vars are the -var flags, VarFiles the -var-file flags in order.
	Vars     map[string]string
	VarFiles []string
	// Environ is the environment, for PKR_VAR_name; nil reads none.
	Environ []string
	// PackerVersion is packer.version and what required_version checks.
	PackerVersion string
	// Now is the run's timestamp; the zero time means time.Now().
	Now time.Time
	// Schemas gives components' schemas. When nil, configurations are
	// decoded without one: any attribute is accepted (syntax checks).
	Schemas Schemas
	// Datasources runs data sources. When nil, data sources are not run
	// and their values are unknown.
	Datasources Datasources
}

// RequiredPlugin is one entry of packer.required_plugins.
type RequiredPlugin struct {
	Name, Version, Source string
	// Required is the requirement the version constraint makes.
	Required *template.RequiredPlugin
	Range    hcl.Range
}

// Result is a loaded template.
type Result struct {
	// Template is the model the builds are planned from; Context has its
	// variables (as strings, for packer_user_variables).
	Template *template.Template
	Context  *template.Context
	// Warnings are formatted warning diagnostics.
	Warnings []string
	// RequiredPlugins are packer.required_plugins with their sources.
	RequiredPlugins []RequiredPlugin
	l               *loader
}

// IsHCL2 reports whether path names an HCL2 template: a .pkr.hcl or
// .pkr.json file, or a directory.
func IsHCL2(path string) bool {
	if strings.HasSuffix(path, ".pkr.hcl") || strings.HasSuffix(path, ".pkr.json") {
		return true
	}
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

type loader struct {
	o       Options
	dir     string
	parser  *hclparse.Parser
	diags   hcl.Diagnostics
	funcs   map[string]funcValue
	now     time.Time
	vars    []*variable
	locals  map[string]cty.Value
	data    map[string]map[string]cty.Value
	sources map[string]*sourceBlock
	specs   map[string]*configSpec
	secrets []string
	result  *Result
	content []*hcl.BodyContent
}

// Load reads the template at path (a file or a directory) and returns its
// model. The error is an [*Error] with every problem found.
func Load(path string, o Options) (*Result, error) {
	l := &loader{o: o, parser: hclparse.NewParser(), locals: map[string]cty.Value{},
		data: map[string]map[string]cty.Value{}, sources: map[string]*sourceBlock{}, specs: map[string]*configSpec{}}
	l.now = o.Now
	if l.now.IsZero() {
		l.now = time.Now()
	}
	files, autoVars, err := listFiles(path)
	if err != nil {
		return nil, &Error{Diags: hcl.Diagnostics{diagf(nil, "Cannot read template", "%v", err)}}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		l.dir, _ = filepath.Abs(path)
	} else {
		l.dir, _ = filepath.Abs(filepath.Dir(path))
	}
	t := &template.Template{Path: path, Dir: l.dir}
	l.result = &Result{Template: t, l: l}
	for _, f := range files {
		file, _ := l.parse(f)
		if file == nil {
			continue
		}
		c, d := file.Body.Content(rootSchema)
		l.diags = append(l.diags, d...)
		l.content = append(l.content, c)
	}
	if len(files) == 0 {
		l.diags = append(l.diags, diagf(nil, "No template files", "%s has no *.pkr.hcl or *.pkr.json files", path))
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	l.packerBlock()
	l.declareVariables()
	if err := l.err(); err != nil {
		return nil, err
	}
	l.assignVariables(autoVars)
	if err := l.err(); err != nil {
		return nil, err
	}
	l.evalLocalsAndData()
	if err := l.err(); err != nil {
		return nil, err
	}
	l.collectSources()
	l.builds()
	if err := l.err(); err != nil {
		return nil, err
	}
	ctx := template.NewContext(t, o.PackerVersion, l.now)
	ctx.UserVars = map[string]string{}
	for _, v := range l.vars {
		ctx.UserVars[v.name] = display(v.value)
	}
	l.result.Context = ctx
	slices.Sort(l.secrets)
	t.SensitiveValues = slices.Compact(l.secrets)
	l.result.Warnings = warnings(l.diags, l.parser.Files())
	return l.result, nil
}

func (l *loader) err() error { return errorOf(l.diags, l.parser.Files()) }

// listFiles returns the template files and the auto variable files of path.
func listFiles(path string) (files, autoVars []string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Dir(path)
	if fi.IsDir() {
		dir = path
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() {
				continue
			}
			if strings.HasSuffix(n, ".pkr.hcl") || strings.HasSuffix(n, ".pkr.json") {
				files = append(files, filepath.Join(path, n))
			}
		}
	} else {
		files = []string{path}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && (strings.HasSuffix(n, ".auto.pkrvars.hcl") || strings.HasSuffix(n, ".auto.pkrvars.json")) {
			autoVars = append(autoVars, filepath.Join(dir, n))
		}
	}
	sort.Strings(files)
	sort.Strings(autoVars)
	return files, autoVars, nil
}

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "packer"},
	{Type: "variable", LabelNames: []string{"name"}},
	{Type: "variables"},
	{Type: "locals"},
	{Type: "local", LabelNames: []string{"name"}},
	{Type: "data", LabelNames: []string{"type", "name"}},
	{Type: "source", LabelNames: []string{"type", "name"}},
	{Type: "build"},
}}

// blocks returns the root blocks of type typ in file order.
func (l *loader) blocks(typ string) []*hcl.Block {
	var out []*hcl.Block
	for _, c := range l.content {
		for _, b := range c.Blocks {
			if b.Type == typ {
				out = append(out, b)
			}
		}
	}
	return out
}

var packerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "required_version"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "required_plugins"}},
}

func (l *loader) packerBlock() {
	for _, b := range l.blocks("packer") {
		c, d := b.Body.Content(packerSchema)
		l.diags = append(l.diags, d...)
		if a := c.Attributes["required_version"]; a != nil {
			var s string
			if l.decodeString(a.Expr, &s) {
				ok, err := template.PackerVersionAllows(l.o.PackerVersion, s)
				switch {
				case err != nil:
					l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid required_version", "%v", err))
				case !ok:
					l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Unsupported packer version",
						"this template requires packer %s; this is packer %s", s, l.o.PackerVersion))
				}
			}
		}
		for _, rb := range c.Blocks {
			l.requiredPlugins(rb)
		}
	}
}

// requiredPlugins reads a required_plugins block.
func (l *loader) requiredPlugins(rb *hcl.Block) {
	attrs, d := rb.Body.JustAttributes()
	l.diags = append(l.diags, d...)
	for _, name := range sortedAttrs(attrs) {
		a := attrs[name]
		v, d := a.Expr.Value(nil)
		l.diags = append(l.diags, d...)
		if d.HasErrors() {
			continue
		}
		rp := RequiredPlugin{Name: name, Range: a.Range}
		if !v.Type().IsObjectType() && !v.Type().IsMapType() {
			l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid required_plugins entry", `want { version = ">= X.Y.Z", source = "..." }`))
			continue
		}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.Type() != cty.String || e.IsNull() {
				continue
			}
			switch k.AsString() {
			case "version":
				rp.Version = e.AsString()
			case "source":
				rp.Source = e.AsString()
			}
		}
		req, err := template.NewRequiredPlugin(name, rp.Version, template.Pos{Line: a.Range.Start.Line, Col: a.Range.Start.Column})
		if err != nil {
			l.diags = append(l.diags, diagf(a.Expr.Range().Ptr(), "Invalid required_plugins version", "%s: %v", name, err))
			continue
		}
		rp.Required = req
		l.result.RequiredPlugins = append(l.result.RequiredPlugins, rp)
		l.result.Template.RequiredPlugins = append(l.result.Template.RequiredPlugins, req)
	}
}

func sortedAttrs(attrs hcl.Attributes) []string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := attrs[names[i]].Range, attrs[names[j]].Range
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return names
}

// decodeString evaluates a string expression without variables.
func (l *loader) decodeString(expr hcl.Expression, out *string) bool {
	v, d := expr.Value(l.evalContext(nil))
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return false
	}
	if v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
		l.diags = append(l.diags, diagf(expr.Range().Ptr(), "Invalid value", "want a string"))
		return false
	}
	*out = v.AsString()
	return true
}

// parse reads path as HCL's JSON syntax when its name ends in ".json" and
// as native syntax otherwise, and adds the parser's diagnostics to l's. It
// returns nil for a file that could not be read at all, and the diagnostics
// of this file alone so that a caller can stop at its errors. Templates and
// variable files are parsed alike.
func (l *loader) parse(path string) (*hcl.File, hcl.Diagnostics) {
	var f *hcl.File
	var d hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		f, d = l.parser.ParseJSONFile(path)
	} else {
		f, d = l.parser.ParseHCLFile(path)
	}
	l.diags = append(l.diags, d...)
	return f, d
}

// ReadRequiredPlugins reads only the packer blocks of the template at path
// (a file or a directory): what packer init needs, without variables or
// plugins.
func ReadRequiredPlugins(path string) ([]RequiredPlugin, error) {
	l := &loader{parser: hclparse.NewParser(), locals: map[string]cty.Value{}, data: map[string]map[string]cty.Value{}}
	l.result = &Result{Template: &template.Template{Path: path}, l: l}
	files, _, err := listFiles(path)
	if err != nil {
		return nil, &Error{Diags: hcl.Diagnostics{diagf(nil, "Cannot read template", "%v", err)}}
	}
	for _, f := range files {
		file, _ := l.parse(f)
		if file == nil {
			continue
		}
		c, _, d := file.Body.PartialContent(rootSchema)
		l.diags = append(l.diags, d...)
		l.content = append(l.content, c)
	}
	l.o.PackerVersion = "" // required_version is not checked here
	for _, b := range l.blocks("packer") {
		c, _, d := b.Body.PartialContent(packerSchema)
		l.diags = append(l.diags, d...)
		for _, rb := range c.Blocks {
			l.requiredPlugins(rb)
		}
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	return l.result.RequiredPlugins, nil
}
