package template

import (
	strftime "github.com/jehiah/go-strftime"

	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// Context is what interpolation sees. The zero Context renders strings that
// use no functions; [NewContext] fills in what a run shares.
//
// A Context is not modified by rendering and may be used by several
// goroutines at once, as long as none of them changes its fields.
type Context struct {
	// UserVars are the resolved user variables; user renders them.
	UserVars map[string]string
	// BuildName and BuildType are the build's name and builder type;
	// build_name and build_type render them and fail when they are empty.
	BuildName, BuildType string
	// TemplateDir is the absolute directory of the template.
	TemplateDir string
	// PackerVersion is what packer_version renders.
	PackerVersion string
	// Timestamp is the start of the run, the same for all its builds;
	// timestamp and isotime render it in UTC.
	Timestamp time.Time
	// Build holds the values the builder shares with provisioners and
	// post-processors. When nil (before the builder ran), {{build `X`}}
	// renders BuildPlaceholder("X"), so a configuration can be validated
	// early and rendered again later; when not nil, a missing key is an
	// error.
	Build map[string]any

	// getenv is set only while variables are resolved: env is allowed
	// there and nowhere else.
	getenv func(string) string
	// user replaces the lookup in UserVars while variables are resolved.
	user func(string) (string, error)
}

// NewContext returns a Context for a run of t: its TemplateDir is t.Dir,
// its Timestamp now and its PackerVersion packerVersion. UserVars is left
// nil for [Context.ResolveVariables] to fill.
func NewContext(t *Template, packerVersion string, now time.Time) *Context {
	return &Context{TemplateDir: t.Dir, PackerVersion: packerVersion, Timestamp: now}
}

// ForBuild returns a copy of c for the build of b: BuildName and BuildType
// are set and Build is nil.
func (c *Context) ForBuild(b *Builder) *Context {
	cc := *c
	cc.BuildName, cc.BuildType, cc.Build = b.Name, b.Type, nil
	return &cc
}

// BuildPlaceholder is what {{build `name`}} renders to while Context.Build
// is nil: the action itself, so rendering the result again with Build set
// gives the real value.
func BuildPlaceholder(name string) string {
	if strings.Contains(name, "`") {
		return fmt.Sprintf("{{build %q}}", name)
	}
	return "{{build `" + name + "`}}"
}

// Render interpolates s. A string without "{{" is returned as is. Field
// references such as {{.Path}} are not Packer functions but data a plugin
// supplies when it renders its own command templates (execute_command);
// they are left in the output unchanged.
//
// Errors wrap [ErrRender] and name the failing function or variable.
func (c *Context) Render(s string) (string, error) {
	return c.render("", s)
}

func (c *Context) render(key, s string) (string, error) {
	return c.renderIn(nil, key, s)
}

// newBase returns an empty template with c's functions, for renderIn.
func (c *Context) newBase() *template.Template {
	return template.New("").Option("missingkey=error").Funcs(c.funcs())
}

// renderIn is render parsing s as a new template associated with base (from
// c.newBase), which spares building and reflecting the functions for every
// string: resolving 100,000 variables renders 100,000 strings. A nil base
// means a fresh one. base must not be used by two goroutines at once.
func (c *Context) renderIn(base *template.Template, key, s string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	if base == nil {
		base = c.newBase()
	}
	tmpl, err := base.New("").Parse(s)
	if err != nil {
		return "", renderError(key, err)
	}
	data := map[string]any{}
	if tmpl.Tree != nil {
		keepFields(tmpl.Tree.Root, data)
	}
	b := boundedBuilder{max: MaxRenderedSize}
	if err := tmpl.Execute(&b, data); err != nil {
		return "", renderError(key, err)
	}
	return b.String(), nil
}

// errRenderedTooLarge is what a rendering over MaxRenderedSize fails with.
var errRenderedTooLarge error = tooLarge(fmt.Sprintf("renders to more than %d MiB", MaxRenderedSize>>20))

// errTotalTooLarge is what a rendering fails with when, with what was
// rendered before it, it passes MaxRenderedTotal.
var errTotalTooLarge error = tooLarge(fmt.Sprintf("with the values rendered before it, more than %d MiB in all", MaxRenderedTotal>>20))

// tooLarge is an error message that wraps ErrTooLarge.
type tooLarge string

func (e tooLarge) Error() string { return string(e) }
func (e tooLarge) Unwrap() error { return ErrTooLarge }

// boundedBuilder is a strings.Builder that fails a write past max bytes,
// which stops text/template's execution at once.
type boundedBuilder struct {
	strings.Builder
	max int
}

func (b *boundedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errRenderedTooLarge
	}
	return b.Builder.Write(p)
}

func (b *boundedBuilder) WriteString(s string) (int, error) {
	if b.Len()+len(s) > b.max {
		return 0, errRenderedTooLarge
	}
	return b.Builder.WriteString(s)
}

// checkReplace fails a replace that would produce more than
// MaxRenderedSize bytes, before it allocates them.
func checkReplace(s, old, new string, n int) error {
	if len(new) <= len(old) {
		return nil
	}
	count := strings.Count(s, old)
	if old == "" {
		count = utf8.RuneCountInString(s) + 1
	}
	if n >= 0 && n < count {
		count = n
	}
	if len(s)+count*(len(new)-len(old)) > MaxRenderedSize || count > MaxRenderedSize {
		return errRenderedTooLarge
	}
	return nil
}

// keepFields makes every top-level field reference {{.X}} under n render
// as itself.
func keepFields(n parse.Node, data map[string]any) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				keepFields(c, data)
			}
		}
	case *parse.ActionNode:
		keepFields(n.Pipe, data)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				keepFields(c, data)
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			keepFields(a, data)
		}
	case *parse.FieldNode:
		if len(n.Ident) > 0 {
			data[n.Ident[0]] = "{{." + n.Ident[0] + "}}"
		}
	case *parse.IfNode:
		keepFields(n.Pipe, data)
		keepFields(n.List, data)
		keepFields(n.ElseList, data)
	case *parse.RangeNode:
		keepFields(n.Pipe, data)
		keepFields(n.List, data)
		keepFields(n.ElseList, data)
	case *parse.WithNode:
		keepFields(n.Pipe, data)
		keepFields(n.List, data)
		keepFields(n.ElseList, data)
	}
}

// tmplPrefix is how text/template starts its messages; it only repeats the
// template name, which is empty here.
var tmplPrefix = regexp.MustCompile(`^template: [^:]*:\d+(:\d+)?: (executing "[^"]*" )?`)

// cleanError is a text/template error with its noisy prefix removed. It
// unwraps to the original, so errors from the functions stay reachable.
type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

func renderError(key string, err error) error {
	return &Error{Kind: ErrRender, Msg: key, Err: &cleanError{msg: tmplPrefix.ReplaceAllString(err.Error(), ""), err: err}}
}

// RenderConfig is RenderConfigAt with no prefix.
func (c *Context) RenderConfig(cfg map[string]any) (map[string]any, error) {
	return c.RenderConfigAt("", cfg)
}

// RenderConfigAt returns a copy of cfg with every string value rendered,
// walking nested maps and slices; keys and other values are copied as
// they are. Errors are collected into an [ErrorList] whose messages start
// with the key path, prefix first, e.g. "builders[0].tags.Name" or
// "builders[0].files[2]". cfg is not modified.
func (c *Context) RenderConfigAt(prefix string, cfg map[string]any) (map[string]any, error) {
	var errs ErrorList
	total := 0
	out := c.renderValue(prefix, cfg, &errs, &total).(map[string]any)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// renderValue renders v; total counts the bytes rendered so far, which may
// not pass MaxRenderedTotal.
func (c *Context) renderValue(path string, v any, errs *ErrorList, total *int) any {
	switch v := v.(type) {
	case string:
		s, err := c.render(path, v)
		if err == nil && *total+len(s) > MaxRenderedTotal {
			err = &Error{Kind: ErrRender, Msg: path, Err: errTotalTooLarge}
		}
		if err != nil {
			var e *Error
			errors.As(err, &e)
			*errs = append(*errs, e)
			return v
		}
		*total += len(s)
		return s
	case map[string]any:
		out := make(map[string]any, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[k] = c.renderValue(p, v[k], errs, total)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = c.renderValue(fmt.Sprintf("%s[%d]", path, i), e, errs, total)
		}
		return out
	}
	return v
}

// funcs returns the template functions bound to c.
func (c *Context) funcs() template.FuncMap {
	return template.FuncMap{
		"user": func(name string) (string, error) {
			if c.user != nil {
				return c.user(name)
			}
			v, ok := c.UserVars[name]
			if !ok {
				return "", fmt.Errorf("unknown variable %q", name)
			}
			return v, nil
		},
		"env": func(name string) (string, error) {
			if c.getenv == nil {
				return "", errors.New("env is only allowed in variable defaults; declare a variable with {{env `" + name + "`}} as its default and use {{user `...`}}")
			}
			return c.getenv(name), nil
		},
		"build_name": func() (string, error) {
			if c.BuildName == "" {
				return "", errors.New("build_name is not available here")
			}
			return c.BuildName, nil
		},
		"build_type": func() (string, error) {
			if c.BuildType == "" {
				return "", errors.New("build_type is not available here")
			}
			return c.BuildType, nil
		},
		"build": func(name string) (any, error) {
			if c.Build == nil {
				if c.BuildName == "" {
					return "", fmt.Errorf("build %q is not available here", name)
				}
				return BuildPlaceholder(name), nil
			}
			v, ok := c.Build[name]
			if !ok {
				return "", fmt.Errorf("builder %q shares no value %q (it shares: %s)", c.BuildName, name, strings.Join(slices.Sorted(maps.Keys(c.Build)), ", "))
			}
			if v == nil {
				return "", nil // a null value renders empty, not "<no value>"
			}
			return v, nil
		},
		"timestamp": func() string {
			return strconv.FormatInt(c.Timestamp.UTC().Unix(), 10)
		},
		"isotime": func(layout ...string) (string, error) {
			switch len(layout) {
			case 0:
				return c.Timestamp.UTC().Format(time.RFC3339), nil
			case 1:
				return c.Timestamp.UTC().Format(layout[0]), nil
			}
			return "", fmt.Errorf("isotime takes at most one layout, got %d", len(layout))
		},
		// strftime formats with C's % directives, through the library
		// Packer itself uses, so the same template gives the same string.
		"strftime": func(format string) string {
			return strftime.Format(format, c.Timestamp.UTC())
		},
		"uuid": newUUID,
		"pwd":  os.Getwd,
		"template_dir": func() (string, error) {
			if c.TemplateDir == "" {
				return "", errors.New("template_dir is not available here")
			}
			return c.TemplateDir, nil
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"replace": func(old, new string, n int, s string) (string, error) {
			if err := checkReplace(s, old, new, n); err != nil {
				return "", err
			}
			return strings.Replace(s, old, new, n), nil
		},
		"replace_all": func(old, new, s string) (string, error) {
			if err := checkReplace(s, old, new, -1); err != nil {
				return "", err
			}
			return strings.ReplaceAll(s, old, new), nil
		},
		"split": func(s, sep string, i int) (string, error) {
			parts := strings.Split(s, sep)
			if i < 0 || i >= len(parts) {
				return "", fmt.Errorf("split: index %d out of range: %q split at %q has %d parts", i, s, sep, len(parts))
			}
			return parts[i], nil
		},
		"packer_version": func() string { return c.PackerVersion },
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
