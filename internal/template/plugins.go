package template

import (
	"fmt"
	"slices"
	"strings"
)

// RequiredPlugin is one entry of the required_plugins root key:
//
//	"required_plugins": {"notes": ">= 1.2.0"}
//
// NAME is the NAME of an installed packer-plugin-NAME (see packer plugins
// install); the value is a minimum version, written ">= X.Y.Z" or just
// "X.Y.Z". Versions are dotted numbers with an optional leading "v"; a
// "-suffix" is ignored.
type RequiredPlugin struct {
	Name string
	// MinVersion is the version after ">=", as written.
	MinVersion string
	Pos        Pos
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
		min, err := parseConstraint(s)
		if err != nil {
			p.errorf(m.val.off, ErrInvalid, "required_plugins.%s: %v", m.key, err)
			continue
		}
		p.t.RequiredPlugins = append(p.t.RequiredPlugins, &RequiredPlugin{Name: m.key, MinVersion: min, Pos: p.src.pos(m.keyOff)})
	}
}

// parseConstraint accepts ">= VERSION" or "VERSION" and returns VERSION.
func parseConstraint(s string) (string, error) {
	v := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(v, ">="); ok {
		v = strings.TrimSpace(rest)
	}
	if _, err := parseVersion(v); err != nil || v == "" {
		return "", fmt.Errorf(`invalid constraint %q: want ">= X.Y.Z"`, s)
	}
	return v, nil
}

// CompareVersions compares two versions as min_packer_version and
// required_plugins read them: -1 when a is older than b, 0 when equal, +1
// when newer. It returns an error when either is not a version.
func CompareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	return slices.Compare(va, vb), nil
}
