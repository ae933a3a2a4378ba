package hcl2

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// errUnknown is a configuration value that is not known before the build
// runs.
var errUnknown = fmt.Errorf("value is not known yet")

// toGo converts a known value into what JSON templates decode to: string,
// json.Number, bool, nil, []any and map[string]any. Null attributes of an
// object are left out, so that the plugin's defaults apply.
func toGo(v cty.Value) (any, error) {
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsWhollyKnown() {
		return nil, errUnknown
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Number:
		return json.Number(v.AsBigFloat().Text('f', -1)), nil
	case t == cty.Bool:
		return v.True(), nil
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, err := toGo(e)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	case t.IsMapType() || t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() {
				continue
			}
			g, err := toGo(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.AsString(), err)
			}
			out[k.AsString()] = g
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot use a value of type %s", t.FriendlyName())
}

// fromJSON converts a decoded JSON value (as encoding/json gives it) into
// a cty value of its implied type.
func fromJSON(v any) (cty.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return cty.NilVal, err
	}
	t, err := ctyjson.ImpliedType(b)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(b, t)
}

// display renders a value for inspect and for packer_user_variables:
// strings as they are, everything else in JSON.
func display(v cty.Value) string {
	v, _ = v.UnmarkDeep()
	switch {
	case v.IsNull():
		return ""
	case !v.IsWhollyKnown():
		return "<unknown>"
	case v.Type() == cty.String:
		return v.AsString()
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return v.GoString()
	}
	return string(b)
}

// secrets returns every primitive value inside v as a string, for the
// masker: a sensitive list or object hides each of its elements.
func secrets(v cty.Value) []string {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	if t.IsPrimitiveType() {
		s := display(v)
		if t == cty.Bool {
			return nil // masking "true" everywhere hides nothing secret
		}
		return []string{s}
	}
	var out []string
	if t.IsCollectionType() || t.IsObjectType() || t.IsTupleType() {
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, secrets(e)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
