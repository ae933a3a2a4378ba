package template

import (
	"github.com/hashicorp/go-version"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Template is a parsed and validated Packer JSON template. Configurations
// are not interpolated: strings still hold their {{ }} actions.
type Template struct {
	// Path is the path the template was read from, as given to Parse.
	Path string
	// Dir is the absolute directory of Path (the working directory when the
	// template came from stdin); template_dir renders it.
	Dir string
	// Description and MinVersion are the description and
	// min_packer_version root keys.
	Description string
	MinVersion  string
	// RequiredPlugins is the required_plugins root key, in template
	// order: minimum versions of installed plugins.
	RequiredPlugins []*RequiredPlugin `json:",omitempty"`
	// Variables are the declared user variables in template order.
	Variables []*Variable
	// SensitiveVariables names the variables whose values are masked in
	// output, in template order.
	SensitiveVariables []string
	// Builders are in template order; their names are unique.
	Builders []*Builder
	// Provisioners run in template order.
	Provisioners []*Provisioner
	// ErrorCleanupProvisioner, if set, runs when a build fails and
	// -on-error is cleanup or run-cleanup-provisioner.
	ErrorCleanupProvisioner *Provisioner
	// PostProcessors are sequences; each sequence runs in order on the
	// artifact of every build.
	PostProcessors [][]*PostProcessor

	// root and src are the parsed document, for Locate.
	root *node
	src  *source
	// ErrorCleanupByBuild maps a build name to its own error cleanup
	// provisioner, for front ends (HCL2) whose builds each have one; see
	// ErrorCleanupFor.
	ErrorCleanupByBuild map[string]*Provisioner `json:",omitempty"`
	// SensitiveValues are values to mask besides those of
	// SensitiveVariables (HCL2's sensitive locals and the parts of
	// sensitive variables that are lists or objects).
	SensitiveValues []string `json:",omitempty"`
}

// Variable is one declared user variable.
type Variable struct {
	Name string
	// Default is the default value before interpolation. Numbers keep
	// their JSON spelling; booleans become "1" and "0" as in Packer.
	Default string
	// Required is true when the default was null: the variable must be set
	// by -var or -var-file.
	Required bool
	Pos      Pos
}

// Builder is one entry of builders.
type Builder struct {
	// Name is the build name: the name key, or the type when it is absent.
	Name string
	Type string
	// Config is the builder's configuration without name, type and keys
	// starting with "_". It is never nil. Numbers are json.Number.
	Config map[string]any
	// Key is the JSON path of the entry, e.g. "builders[0]", for messages;
	// Pos is where the entry starts.
	Key string
	Pos Pos
	// Place, when not nil, says where the configuration's keys are
	// written, for a front end that [Template.Locate] cannot ask (HCL2).
	Place *Place `json:",omitempty"`
}

// Provisioner is one entry of provisioners, or the error-cleanup-provisioner.
type Provisioner struct {
	Type string
	// Config is the configuration without the keys below, type and keys
	// starting with "_". It is never nil.
	Config map[string]any
	// Only and Except are build names; at most one of them is set.
	Only, Except []string
	// Override maps a build name to keys that replace Config's for that
	// build; see ConfigFor.
	Override map[string]map[string]any
	// PauseBefore, Timeout and MaxRetries are pause_before, timeout and
	// max_retries.
	PauseBefore time.Duration
	Timeout     time.Duration
	MaxRetries  int
	Key         string
	Pos         Pos
	// Place is as for [Builder].
	Place *Place `json:",omitempty"`
}

// PostProcessor is one element of a post-processor sequence.
type PostProcessor struct {
	Type string
	// Name is the name key, or the type when it is absent (as in Packer);
	// -except may name it.
	Name string
	// Config is the configuration without the keys below, type and keys
	// starting with "_". It is never nil.
	Config       map[string]any
	Only, Except []string
	// KeepInputArtifact is keep_input_artifact; nil when absent, so that
	// the caller can apply the post-processor's own default.
	KeepInputArtifact *bool
	Key               string
	Pos               Pos
	// Place is as for [Builder].
	Place *Place `json:",omitempty"`
}

// ParseFile reads and parses the template at path; see Parse.
//
// path must name a regular file (not a device or a FIFO) of at most
// [MaxInputSize] bytes.
func ParseFile(path string) (*Template, error) {
	f, err := openRegular(path, "template", ErrInvalid)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a whole template from r and validates it. path names the
// input in errors and sets Template.Path and Template.Dir; "-" or "" means
// standard input, whose Dir is the working directory.
//
// A syntax error or duplicate key ends parsing with one [*Error]; other
// problems are collected into an [ErrorList]. Unknown root keys, duplicate
// builder names and only/except/override entries naming unknown builds are
// errors; keys starting with "_" are comments and ignored.
//
// Input over [MaxInputSize] bytes is an error wrapping [ErrTooLarge]; a
// byte that is not UTF-8 is an [ErrSyntax] error at its position.
func Parse(r io.Reader, path string) (*Template, error) {
	data, err := readInput(r, path, "template", ErrInvalid)
	if err != nil {
		return nil, err
	}
	src := &source{file: path, data: bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))}
	root, err := src.decode()
	if err != nil {
		return nil, err
	}
	t := &Template{Path: path}
	if path == "" || path == "-" {
		t.Dir, err = os.Getwd()
	} else {
		t.Dir, err = filepath.Abs(filepath.Dir(path))
	}
	if err != nil {
		return nil, fmt.Errorf("template directory: %w", err)
	}
	p := &parser{src: src, t: t}
	p.root(root)
	if len(p.errs) == 0 {
		p.validate(root)
	}
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	t.root, t.src = root, src
	return t, nil
}

type parser struct {
	src  *source
	t    *Template
	errs ErrorList
}

func (p *parser) errorf(off int, kind error, format string, args ...any) {
	p.errs = append(p.errs, p.src.errorf(off, kind, format, args...))
}

// want reports whether n holds a value of type T, recording an error that
// names key otherwise.
func want[T any](p *parser, key string, n *node, what string) (T, bool) {
	v, ok := n.val.(T)
	if !ok {
		p.errorf(n.off, ErrInvalid, "%s: expected %s, got %s", key, what, n.kind())
	}
	return v, ok
}

func (p *parser) root(n *node) {
	obj, ok := want[*object](p, "template", n, "an object")
	if !ok {
		return
	}
	for _, m := range obj.members {
		switch m.key {
		case "description":
			p.t.Description, _ = want[string](p, m.key, m.val, "a string")
		case "min_packer_version":
			if s, ok := want[string](p, m.key, m.val, "a string"); ok {
				if _, err := version.NewVersion(s); err != nil {
					p.errorf(m.val.off, ErrInvalid, "min_packer_version: %q is not a version", s)
				}
				p.t.MinVersion = s
			}
		case "variables":
			p.variables(m.val)
		case "required_plugins":
			p.requiredPlugins(m.val)
		case "sensitive-variables":
			p.t.SensitiveVariables = p.strings(m.key, m.val)
		case "builders":
			if elems, ok := want[[]*node](p, m.key, m.val, "an array"); ok {
				for i, e := range elems {
					p.builder(fmt.Sprintf("builders[%d]", i), e)
				}
			}
		case "provisioners":
			if elems, ok := want[[]*node](p, m.key, m.val, "an array"); ok {
				for i, e := range elems {
					if pr := p.provisioner(fmt.Sprintf("provisioners[%d]", i), e); pr != nil {
						p.t.Provisioners = append(p.t.Provisioners, pr)
					}
				}
			}
		case "error-cleanup-provisioner":
			p.t.ErrorCleanupProvisioner = p.provisioner(m.key, m.val)
		case "post-processors":
			p.postProcessors(m.val)
		default:
			if !strings.HasPrefix(m.key, "_") {
				p.errorf(m.keyOff, ErrUnknownKey, "unknown root key %q", m.key)
			}
		}
	}
}

func (p *parser) variables(n *node) {
	obj, ok := want[*object](p, "variables", n, "an object")
	if !ok {
		return
	}
	for _, m := range obj.members {
		v := &Variable{Name: m.key, Pos: p.src.pos(m.keyOff)}
		switch d := m.val.val.(type) {
		case nil:
			v.Required = true
		case string:
			v.Default = d
		case json.Number:
			v.Default = d.String()
		case bool:
			v.Default = "0"
			if d {
				v.Default = "1"
			}
		default:
			p.errorf(m.val.off, ErrInvalid, "variables.%s: default must be a string, number, boolean or null, got %s", m.key, m.val.kind())
			continue
		}
		p.t.Variables = append(p.t.Variables, v)
	}
}

// strings decodes an array of strings.
func (p *parser) strings(key string, n *node) []string {
	elems, ok := want[[]*node](p, key, n, "an array of strings")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(elems))
	for i, e := range elems {
		if s, ok := want[string](p, fmt.Sprintf("%s[%d]", key, i), e, "a string"); ok {
			out = append(out, s)
		}
	}
	return out
}

// component splits an object into its special keys, handled by special,
// and its configuration. Comment keys are dropped. It returns the type.
func (p *parser) component(key string, n *node, special func(m member) bool) (typ string, cfg map[string]any, ok bool) {
	obj, ok := want[*object](p, key, n, "an object")
	if !ok {
		return "", nil, false
	}
	cfg = make(map[string]any)
	var typeNode *node
	for _, m := range obj.members {
		switch {
		case m.key == "type":
			typeNode = m.val
			typ, _ = want[string](p, key+".type", m.val, "a string")
		case strings.HasPrefix(m.key, "_"):
		case special(m):
		default:
			cfg[m.key] = m.val.plain()
		}
	}
	switch {
	case typeNode == nil:
		p.errorf(n.off, ErrInvalid, "%s: missing 'type'", key)
		return "", nil, false
	case typ == "":
		if _, isString := typeNode.val.(string); isString {
			p.errorf(typeNode.off, ErrInvalid, "%s.type: empty type", key)
		}
		return "", nil, false
	}
	return typ, cfg, true
}

func (p *parser) builder(key string, n *node) {
	b := &Builder{Key: key, Pos: p.src.pos(n.off)}
	var nameNode *node
	typ, cfg, ok := p.component(key, n, func(m member) bool {
		if m.key != "name" {
			return false
		}
		nameNode = m.val
		b.Name, _ = want[string](p, key+".name", m.val, "a string")
		return true
	})
	if !ok {
		return
	}
	b.Type, b.Config = typ, cfg
	if b.Name == "" {
		b.Name = b.Type
	}
	for _, other := range p.t.Builders {
		if other.Name == b.Name {
			off := n.off
			if nameNode != nil {
				off = nameNode.off
			}
			p.errorf(off, ErrDuplicateName, "%s: a builder named %q already exists at %s", key, b.Name, other.Pos)
			return
		}
	}
	p.t.Builders = append(p.t.Builders, b)
}

func (p *parser) provisioner(key string, n *node) *Provisioner {
	pr := &Provisioner{Key: key, Pos: p.src.pos(n.off)}
	typ, cfg, ok := p.component(key, n, func(m member) bool {
		k := key + "." + m.key
		switch m.key {
		case "only":
			pr.Only = p.strings(k, m.val)
		case "except":
			pr.Except = p.strings(k, m.val)
		case "override":
			pr.Override = p.override(k, m.val)
		case "pause_before":
			pr.PauseBefore = p.duration(k, m.val)
		case "timeout":
			pr.Timeout = p.duration(k, m.val)
		case "max_retries":
			pr.MaxRetries = p.count(k, m.val)
		default:
			return false
		}
		return true
	})
	if !ok {
		return nil
	}
	pr.Type, pr.Config = typ, cfg
	return pr
}

func (p *parser) override(key string, n *node) map[string]map[string]any {
	obj, ok := want[*object](p, key, n, "an object")
	if !ok {
		return nil
	}
	out := make(map[string]map[string]any, len(obj.members))
	for _, m := range obj.members {
		if cfg, ok := want[*object](p, key+"."+m.key, m.val, "an object"); ok {
			out[m.key] = (&node{val: cfg}).plain().(map[string]any)
		}
	}
	return out
}

// duration decodes a time.ParseDuration string. Packer also accepts a
// number of nanoseconds; so does this.
func (p *parser) duration(key string, n *node) time.Duration {
	switch v := n.val.(type) {
	case string:
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			p.errorf(n.off, ErrInvalid, "%s: invalid duration %q (want e.g. \"30s\" or \"5m\")", key, v)
		case d < 0:
			p.errorf(n.off, ErrInvalid, "%s: negative duration %q", key, v)
			d = 0
		}
		return d
	case json.Number:
		i, err := v.Int64()
		switch {
		case err != nil:
			p.errorf(n.off, ErrInvalid, "%s: invalid duration %s", key, v)
		case i < 0:
			p.errorf(n.off, ErrInvalid, "%s: negative duration %s", key, v)
			i = 0
		}
		return time.Duration(i)
	}
	p.errorf(n.off, ErrInvalid, "%s: expected a duration string, got %s", key, n.kind())
	return 0
}

// count decodes a non-negative integer, given as a number or, as Packer's
// weak decoding allows, a string of digits.
func (p *parser) count(key string, n *node) int {
	var s string
	switch v := n.val.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		p.errorf(n.off, ErrInvalid, "%s: expected a number, got %s", key, n.kind())
		return 0
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		p.errorf(n.off, ErrInvalid, "%s: expected a non-negative integer, got %q", key, s)
		return 0
	}
	return i
}

// postProcessors decodes the three forms Packer accepts for each element:
// a type name, an object, or an array of those (a sequence).
func (p *parser) postProcessors(n *node) {
	elems, ok := want[[]*node](p, "post-processors", n, "an array")
	if !ok {
		return
	}
	for i, e := range elems {
		key := fmt.Sprintf("post-processors[%d]", i)
		var seq []*PostProcessor
		if list, ok := e.val.([]*node); ok {
			for j, el := range list {
				if pp := p.postProcessor(fmt.Sprintf("%s[%d]", key, j), el); pp != nil {
					seq = append(seq, pp)
				}
			}
			if len(list) == 0 {
				p.errorf(e.off, ErrInvalid, "%s: empty post-processor sequence", key)
			}
		} else if pp := p.postProcessor(key, e); pp != nil {
			seq = append(seq, pp)
		}
		if len(seq) > 0 {
			p.t.PostProcessors = append(p.t.PostProcessors, seq)
		}
	}
}

func (p *parser) postProcessor(key string, n *node) *PostProcessor {
	pp := &PostProcessor{Key: key, Pos: p.src.pos(n.off)}
	if s, ok := n.val.(string); ok {
		if s == "" {
			p.errorf(n.off, ErrInvalid, "%s: empty type", key)
			return nil
		}
		pp.Type, pp.Name, pp.Config = s, s, map[string]any{}
		return pp
	}
	if _, ok := n.val.(*object); !ok {
		p.errorf(n.off, ErrInvalid, "%s: expected a type name, an object or an array, got %s", key, n.kind())
		return nil
	}
	typ, cfg, ok := p.component(key, n, func(m member) bool {
		k := key + "." + m.key
		switch m.key {
		case "name":
			pp.Name, _ = want[string](p, k, m.val, "a string")
		case "only":
			pp.Only = p.strings(k, m.val)
		case "except":
			pp.Except = p.strings(k, m.val)
		case "keep_input_artifact":
			if b, ok := want[bool](p, k, m.val, "a boolean"); ok {
				pp.KeepInputArtifact = &b
			}
		default:
			return false
		}
		return true
	})
	if !ok {
		return nil
	}
	pp.Type, pp.Config = typ, cfg
	if pp.Name == "" {
		pp.Name = pp.Type
	}
	return pp
}

// validate checks what needs the whole template: at least one builder,
// build names in only/except/override, sensitive variable names.
func (p *parser) validate(root *node) {
	t := p.t
	if len(t.Builders) == 0 {
		off := root.off
		if m, ok := lookup(root, "builders"); ok {
			off = m.keyOff
		}
		p.errorf(off, ErrInvalid, "at least one builder must be defined")
	}
	names := make([]string, len(t.Builders))
	for i, b := range t.Builders {
		names[i] = b.Name
	}
	known := func(key, name string) bool {
		if slices.Contains(names, name) {
			return true
		}
		off := 0
		if n := p.find(root, key); n != nil {
			off = n.off
		}
		p.errorf(off, ErrUnknownBuild, "%s: no build named %q (builds: %s)", key, name, strings.Join(names, ", "))
		return false
	}
	onlyExcept := func(key string, only, except []string) {
		if len(only) > 0 && len(except) > 0 {
			off := 0
			if n := p.find(root, key+".except"); n != nil {
				off = n.off
			}
			p.errorf(off, ErrInvalid, "%s: only one of 'only' or 'except' may be specified", key)
		}
		for i, name := range only {
			known(fmt.Sprintf("%s.only[%d]", key, i), name)
		}
		for i, name := range except {
			known(fmt.Sprintf("%s.except[%d]", key, i), name)
		}
	}
	provs := t.Provisioners
	if t.ErrorCleanupProvisioner != nil {
		provs = append(slices.Clip(provs), t.ErrorCleanupProvisioner)
	}
	for _, pr := range provs {
		onlyExcept(pr.Key, pr.Only, pr.Except)
		for _, name := range sortedKeys(pr.Override) {
			if !slices.Contains(names, name) {
				off := 0
				if n := p.find(root, pr.Key+".override"); n != nil {
					if m, ok := lookup(n, name); ok {
						off = m.keyOff
					}
				}
				p.errorf(off, ErrUnknownBuild, "%s.override: no build named %q (builds: %s)", pr.Key, name, strings.Join(names, ", "))
			}
		}
	}
	for _, seq := range t.PostProcessors {
		for _, pp := range seq {
			onlyExcept(pp.Key, pp.Only, pp.Except)
		}
	}
	declared := make(map[string]bool, len(t.Variables))
	for _, v := range t.Variables {
		declared[v.Name] = true
	}
	for i, name := range t.SensitiveVariables {
		if !declared[name] {
			key := fmt.Sprintf("sensitive-variables[%d]", i)
			off := 0
			if n := p.find(root, key); n != nil {
				off = n.off
			}
			p.errorf(off, ErrVariable, "%s: %q is not a declared variable", key, name)
		}
	}
}

// lookup returns the member key of object n.
func lookup(n *node, key string) (member, bool) {
	if obj, ok := n.val.(*object); ok {
		for _, m := range obj.members {
			if m.key == key {
				return m, true
			}
		}
	}
	return member{}, false
}

// find follows a path like "provisioners[1].only[0]" from n. Keys must not
// contain '.' or '['; ones that do are not found and yield nil.
func (p *parser) find(n *node, path string) *node {
	for path != "" && n != nil {
		if path[0] == '[' {
			end := strings.IndexByte(path, ']')
			i, err := strconv.Atoi(path[1:max(end, 1)])
			list, ok := n.val.([]*node)
			if end < 0 || err != nil || !ok || i < 0 || i >= len(list) {
				return nil
			}
			n, path = list[i], path[end+1:]
			continue
		}
		path = strings.TrimPrefix(path, ".")
		end := strings.IndexAny(path, ".[")
		if end < 0 {
			end = len(path)
		}
		m, ok := lookup(n, path[:end])
		if !ok {
			return nil
		}
		n, path = m.val, path[end:]
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ConfigFor returns the provisioner's configuration for the build named
// build: Config with the keys of Override[build] replacing Config's (a
// shallow merge, like the configs of component/prepare). The result is a
// new map; Config is not modified.
func (pr *Provisioner) ConfigFor(build string) map[string]any {
	out := make(map[string]any, len(pr.Config))
	for k, v := range pr.Config {
		out[k] = v
	}
	for k, v := range pr.Override[build] {
		out[k] = v
	}
	return out
}

// Skip reports whether the provisioner does not run for the build named
// build because of its only or except list.
func (pr *Provisioner) Skip(build string) bool { return skip(pr.Only, pr.Except, build) }

// Skip reports whether the post-processor does not run for the build named
// build because of its only or except list.
func (pp *PostProcessor) Skip(build string) bool { return skip(pp.Only, pp.Except, build) }

func skip(only, except []string, build string) bool {
	if len(only) > 0 && !slices.Contains(only, build) {
		return true
	}
	return slices.Contains(except, build)
}

// Builder returns the builder named name, or nil.
func (t *Template) Builder(name string) *Builder {
	for _, b := range t.Builders {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// CheckVersion returns an error wrapping [ErrVersion] when the template's
// min_packer_version is newer than packerVersion. As Packer does, it
// compares packer's core version: a pre-release of 1.2.0 (1.2.0-dev)
// satisfies a minimum of 1.2.0.
func (t *Template) CheckVersion(packerVersion string) error {
	if t.MinVersion == "" {
		return nil
	}
	min, err := version.NewVersion(t.MinVersion)
	if err != nil {
		return &Error{File: t.Path, Kind: ErrInvalid, Msg: fmt.Sprintf("min_packer_version: %q is not a version", t.MinVersion)}
	}
	have, err := version.NewVersion(packerVersion)
	if err != nil {
		return &Error{File: t.Path, Kind: ErrInvalid, Msg: fmt.Sprintf("packer version %q is not a version", packerVersion)}
	}
	if have.Core().LessThan(min) {
		return &Error{File: t.Path, Kind: ErrVersion,
			Msg: fmt.Sprintf("this template requires packer %s or newer; this is packer %s", t.MinVersion, packerVersion)}
	}
	return nil
}

// parseVarFile reads a -var-file: a JSON object whose values are strings.
func parseVarFile(path string) ([]member, *source, error) {
	data, err := readFile(path, "variable file", ErrVariable)
	if err != nil {
		return nil, nil, err
	}
	src := &source{file: path, data: bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))}
	n, err := src.decode()
	if err != nil {
		return nil, nil, err
	}
	obj, ok := n.val.(*object)
	if !ok {
		return nil, nil, src.errorf(n.off, ErrInvalid, "variable file: expected an object, got %s", n.kind())
	}
	var errs ErrorList
	for _, m := range obj.members {
		if _, ok := m.val.val.(string); !ok {
			errs = append(errs, src.errorf(m.val.off, ErrInvalid, "%s: expected a string, got %s", m.key, m.val.kind()))
		}
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	return obj.members, src, nil
}
