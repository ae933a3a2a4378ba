package template

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/template"
	"time"
)

// ResolveVariables is [Context.ResolveVariables] with the context of
// NewContext(t, "", time.Now()).
func ResolveVariables(t *Template, cliVars map[string]string, varFiles []string, getenv func(string) string) (map[string]string, error) {
	return (&Context{TemplateDir: t.Dir}).withNow().ResolveVariables(t, cliVars, varFiles, getenv)
}

// ResolveVariables computes the user variables of a run of t and returns
// them; it does not modify c. Values come from, later winning:
//
//  1. the defaults declared in t;
//  2. each file of varFiles in order (-var-file): a JSON object of string
//     values; keys it sets that t does not declare are kept, as in Packer,
//     so that one file can serve several templates;
//  3. cliVars (-var, the caller applies "later wins"). As in Packer 1.x,
//     a name t does not declare is accepted; [UndeclaredVars] lists such
//     names so that the caller can warn about a likely typo.
//
// Then every value is interpolated with c's functions plus env, which reads
// getenv (os.Getenv when nil), and user, which may refer to another
// variable, resolved first; cycles are errors. Like Packer, this
// interpolates values given by -var and -var-file too.
//
// All variables declared with a null default and not set are reported in
// one error. Errors wrap [ErrVariable],
// or [ErrRender] for a failed interpolation.
func (c *Context) ResolveVariables(t *Template, cliVars map[string]string, varFiles []string, getenv func(string) string) (map[string]string, error) {
	raw := make(map[string]string)
	declared := make(map[string]bool)
	for _, v := range t.Variables {
		declared[v.Name] = true
		if !v.Required {
			raw[v.Name] = v.Default
		}
	}
	for _, f := range varFiles {
		members, _, err := parseVarFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			raw[m.key] = m.val.val.(string)
		}
	}
	for name, v := range cliVars {
		raw[name] = v
	}
	var errs ErrorList
	var missing []string
	for _, v := range t.Variables {
		if _, ok := raw[v.Name]; !ok {
			missing = append(missing, v.Name)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, &Error{File: t.Path, Kind: ErrVariable,
			Msg: fmt.Sprintf("required variables not set: %s (set them with -var name=value or -var-file)", strings.Join(missing, ", "))})
	}
	if len(errs) > 0 {
		return nil, errs
	}

	if getenv == nil {
		getenv = os.Getenv
	}
	r := &resolver{raw: raw, done: make(map[string]string), busy: make(map[string]bool)}
	rc := *c
	rc.getenv = getenv
	rc.user = r.user
	r.ctx = &rc
	// Declared variables first, in template order, then the rest sorted,
	// so that errors come out in a stable order.
	order := make([]string, 0, len(raw))
	for _, v := range t.Variables {
		order = append(order, v.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if !declared[name] {
			order = append(order, name)
		}
	}
	for _, name := range order {
		_, err := r.resolve(name)
		var dep errDependency
		if err == nil || errors.As(err, &dep) {
			continue // a variable it refers to failed and is reported
		}
		e := err.(*Error)
		e.File = t.Path
		errs = append(errs, e)
		if errors.Is(e, ErrTooLarge) {
			break // the variables after it would only say the same
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return r.done, nil
}

// UndeclaredVars returns, sorted, the names in cliVars (-var) that t does
// not declare, and a sentence for a warning that names them and the
// declared ones; both are empty when every name is declared. Packer 1.x
// accepts such names in JSON templates, and so does [ResolveVariables]; a
// typo in a -var name would otherwise go unnoticed.
func UndeclaredVars(t *Template, cliVars map[string]string) ([]string, string) {
	var unknown []string
	for _, name := range slices.Sorted(maps.Keys(cliVars)) {
		if !slices.ContainsFunc(t.Variables, func(v *Variable) bool { return v.Name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil, ""
	}
	return unknown, fmt.Sprintf("-var sets variables the template does not declare: %s (it declares: %s)", strings.Join(unknown, ", "), declaredList(t))
}

func (c *Context) withNow() *Context {
	c.Timestamp = time.Now()
	return c
}

func declaredList(t *Template) string {
	if len(t.Variables) == 0 {
		return "none"
	}
	names := make([]string, len(t.Variables))
	for i, v := range t.Variables {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// resolver interpolates variables on demand, depth first.
type resolver struct {
	ctx  *Context
	raw  map[string]string
	done map[string]string
	busy map[string]bool
	// failed remembers variables whose interpolation failed, so that the
	// error is reported once, for the variable that has it.
	failed map[string]error
	stack  []string
	// base holds ctx's functions for every variable's template.
	base *template.Template
	// total is the size of all values resolved so far.
	total int
}

func (r *resolver) user(name string) (string, error) {
	if _, ok := r.raw[name]; !ok {
		return "", fmt.Errorf("unknown variable %q", name)
	}
	v, err := r.resolve(name)
	var cycle cycleError
	if errors.As(err, &cycle) && r.busy[name] {
		return "", err
	}
	if err != nil {
		return "", errDependency{name}
	}
	return v, nil
}

// errDependency marks a variable that refers to one that failed.
type errDependency struct{ name string }

func (e errDependency) Error() string {
	return fmt.Sprintf("variable %q could not be resolved", e.name)
}

// cycleError is a variable that refers to itself through others.
type cycleError struct{ path []string }

func (e cycleError) Error() string {
	return "variables refer to each other in a cycle: " + strings.Join(e.path, " -> ")
}

func (r *resolver) resolve(name string) (string, error) {
	if v, ok := r.done[name]; ok {
		return v, nil
	}
	if err, ok := r.failed[name]; ok {
		return "", err
	}
	if r.busy[name] {
		i := slices.Index(r.stack, name)
		cycle := append(slices.Clone(r.stack[i:]), name)
		return "", cycleError{cycle}
	}
	r.busy[name] = true
	r.stack = append(r.stack, name)
	if r.base == nil {
		r.base = r.ctx.newBase()
	}
	v, err := r.ctx.renderIn(r.base, "variables."+name, r.raw[name])
	r.stack = r.stack[:len(r.stack)-1]
	delete(r.busy, name)
	if err != nil {
		if r.failed == nil {
			r.failed = make(map[string]error)
		}
		r.failed[name] = err
		return "", err
	}
	if r.total += len(v); r.total > MaxRenderedTotal {
		err := &Error{Kind: ErrRender, Msg: "variables." + name, Err: errTotalTooLarge}
		if r.failed == nil {
			r.failed = make(map[string]error)
		}
		r.failed[name] = err
		return "", err
	}
	r.done[name] = v
	return v, nil
}
