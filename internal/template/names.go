package template

import (
	"errors"
	"fmt"
)

// RenderBuilderNames interpolates every builder's name with c, as Packer
// does before anything else looks at the names (-only, -except, only and
// except of provisioners and post-processors, build_name): a name such as
// "{{user `os`}}-image" becomes the build's name. c is the run's context
// with its user variables resolved; build_name and build_type are not
// available in a name. Errors name the builder's key; two builders whose
// names render the same are an error, as duplicate names are.
func (t *Template) RenderBuilderNames(c *Context) error {
	var errs ErrorList
	seen := map[string]*Builder{}
	for _, b := range t.Builders {
		name, err := c.render(b.Key+".name", b.Name)
		if err != nil {
			e := &Error{Kind: ErrRender, Msg: b.Key + ".name", Err: err}
			errors.As(err, &e) // render's errors are *Error already
			e.File, e.Pos = t.Path, b.Pos
			errs = append(errs, e)
			continue
		}
		if name == "" {
			errs = append(errs, &Error{File: t.Path, Pos: b.Pos, Kind: ErrInvalid, Msg: fmt.Sprintf("%s.name: %q renders to an empty name", b.Key, b.Name)})
			continue
		}
		if prev, ok := seen[name]; ok {
			errs = append(errs, &Error{File: t.Path, Pos: b.Pos, Kind: ErrInvalid,
				Msg: fmt.Sprintf("%s.name: %q is the name of %s too; build names must be unique", b.Key, name, prev.Key)})
			continue
		}
		seen[name] = b
		b.Name = name
	}
	return errs.err()
}
