package template

import (
	"fmt"

	"github.com/hashicorp/go-version"
)

// RequiredPlugin is one entry of the required_plugins root key:
//
//	"required_plugins": {"notes": ">= 1.2.0"}
//
// NAME is the NAME of an installed packer-plugin-NAME (see packer plugins
// install); the value is a version constraint in Packer's syntax
// (hashicorp/go-version): comma-separated conditions with the operators =,
// !=, >, >=, <, <= and ~> ("~> 1.2" is ">= 1.2, < 2"); a bare version means
// exactly that version. As in Packer, a pre-release such as 1.3.0-beta
// matches only a constraint that names a pre-release of the same version.
type RequiredPlugin struct {
	Name string
	// Constraint is the constraint as written.
	Constraint string
	Pos        Pos

	constraints version.Constraints
}

func (p *parser) requiredPlugins(n *node) {
	obj, ok := want[*object](p, "required_plugins", n, "an object")
	if !ok {
		return
	}
	for _, m := range obj.members {
		s, ok := want[string](p, "required_plugins."+m.key, m.val, `a version constraint such as ">= 1.2.0"`)
		if !ok {
			continue
		}
		c, err := version.NewConstraint(s)
		if err != nil {
			p.errorf(m.val.off, ErrInvalid, `required_plugins.%s: %q is not a version constraint such as ">= 1.2.0" or "~> 1.2"`, m.key, s)
			continue
		}
		p.t.RequiredPlugins = append(p.t.RequiredPlugins, &RequiredPlugin{Name: m.key, Constraint: s, Pos: p.src.pos(m.keyOff), constraints: c})
	}
}

// NewRequiredPlugin returns the requirement that plugin name satisfy
// constraint (Packer's syntax, see [RequiredPlugin]), written at pos; an
// error says when constraint is not one. Front ends other than JSON (HCL2's
// packer block) use it, so that both read constraints the same way.
func NewRequiredPlugin(name, constraint string, pos Pos) (*RequiredPlugin, error) {
	c, err := version.NewConstraint(constraint)
	if err != nil {
		return nil, fmt.Errorf("%q is not a version constraint such as \">= 1.2.0\" or \"~> 1.2\"", constraint)
	}
	return &RequiredPlugin{Name: name, Constraint: constraint, Pos: pos, constraints: c}, nil
}

// PackerVersionAllows reports whether packerVersion satisfies constraint
// (required_version in HCL2's packer block). As for min_packer_version,
// packer's core version is compared: a 1.2.0-dev build satisfies ">= 1.2.0".
func PackerVersionAllows(packerVersion, constraint string) (bool, error) {
	c, err := version.NewConstraint(constraint)
	if err != nil {
		return false, fmt.Errorf("%q is not a version constraint such as \">= 1.2.0\"", constraint)
	}
	v, err := version.NewVersion(packerVersion)
	if err != nil {
		return false, fmt.Errorf("packer version %q is not a version", packerVersion)
	}
	return c.Check(v.Core()), nil
}

// Allows reports whether the plugin version v satisfies the constraint. It
// returns an error when v is not a version (a plain "go build" of a Go
// plugin reports "(devel)").
func (r *RequiredPlugin) Allows(v string) (bool, error) {
	have, err := version.NewVersion(v)
	if err != nil {
		return false, fmt.Errorf("%q is not a version", v)
	}
	c := r.constraints
	if c == nil { // a RequiredPlugin built by hand
		if c, err = version.NewConstraint(r.Constraint); err != nil {
			return false, fmt.Errorf("%q is not a version constraint", r.Constraint)
		}
	}
	return c.Check(have), nil
}
