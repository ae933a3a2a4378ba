// Package schemacheck validates JSON documents against a JSON Schema
// (draft 2020-12) and reports every violation at once, each with the JSON
// Pointer of the instance location it concerns.
//
// It exists so that a plugin binary does not pay a general validator's
// package initialisation at every start (santhosh-tekuri/jsonschema compiles
// the meta-schemas of five drafts in its init, about 8 ms): this package has
// no init work at all, and compiles a schema when [Compile] is called.
//
// It implements the assertion keywords of draft 2020-12 except the dynamic
// and unevaluated ones: [Compile] refuses a schema that uses $dynamicRef,
// unevaluatedProperties, unevaluatedItems or a $ref outside the document,
// rather than ignore them. Annotations (title, description, default,
// examples, format, content*) are not asserted, as draft 2020-12 specifies
// by default. Its messages are those of santhosh-tekuri/jsonschema v6
// ("got number, want string", "value must be one of 'a', 'b'",
// "maximum: got 10, want 9"), which pluginkit reported before, with two
// rewrites at the key's own path: an unknown key ("unknown key") and a
// missing required key ("missing required key"), and two that name the
// keys a rule ties together rather than the object holding them: a key
// that dependentRequired asks for is reported missing at its own path, and
// a broken key rule (an anyOf or oneOf whose alternatives each require one
// key, see keyRuleKeys) at the path of each key concerned, all with one
// message ("one of source or content is required", "only one of source and
// content may be set; source and content are set").
package schemacheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrUnsupported is returned by [Compile] for a schema that uses a keyword
// or reference this package does not implement.
var ErrUnsupported = errors.New("unsupported schema keyword")

// Schema is a compiled schema. It is safe for concurrent use.
type Schema struct {
	root *node
}

// node is one compiled schema object (or boolean schema).
type node struct {
	boolean *bool // set for the schemas true and false

	types    typeSet
	enum     []any
	hasEnum  bool
	constant any
	hasConst bool
	ref      *node

	// objects
	properties        map[string]*node
	patternProperties []patternNode
	additional        *node
	propertyNames     *node
	required          []string
	dependentRequired []dependency
	dependentSchemas  []dependentSchema
	minProperties     *int
	maxProperties     *int

	// arrays
	prefixItems []*node
	items       *node
	contains    *node
	minContains *int
	maxContains *int
	minItems    *int
	maxItems    *int
	uniqueItems bool

	// strings
	minLength *int
	maxLength *int
	pattern   *regexp.Regexp

	// numbers
	minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf *big.Rat

	// applicators
	allOf, anyOf, oneOf []*node
	// anyOfKeys and oneOfKeys are set when anyOf or oneOf is a key rule
	// (see [keyRuleKeys]): the key each alternative requires, in order.
	anyOfKeys, oneOfKeys []string
	not                  *node
	ifN, thenN, elseN    *node
}

type patternNode struct {
	re *regexp.Regexp
	n  *node
}

type dependency struct {
	prop     string
	required []string
}

type dependentSchema struct {
	prop string
	n    *node
}

// typeSet is a set of JSON types; the bit order is the order types are
// named in messages.
type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeNames = []struct {
	t    typeSet
	name string
}{
	{tNull, "null"}, {tBoolean, "boolean"}, {tNumber, "number"}, {tInteger, "integer"},
	{tString, "string"}, {tArray, "array"}, {tObject, "object"},
}

func (ts typeSet) names() []string {
	var out []string
	for _, tn := range typeNames {
		if ts&tn.t != 0 {
			out = append(out, tn.name)
		}
	}
	return out
}

// Compile compiles a draft 2020-12 schema document. It fails with an error
// naming the keyword's location when the document is not a valid schema,
// and with one wrapping [ErrUnsupported] when it uses a keyword or
// reference this package does not implement.
func Compile(doc []byte) (*Schema, error) {
	v, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("decoding schema: %w", err)
	}
	if m, ok := v.(map[string]any); ok {
		if d, ok := m["$schema"].(string); ok && d != "https://json-schema.org/draft/2020-12/schema" {
			return nil, fmt.Errorf("%w: $schema %q (only draft 2020-12 is implemented)", ErrUnsupported, d)
		}
	}
	c := &compiler{doc: v, nodes: map[string]*node{}}
	root, err := c.compile("", v)
	if err != nil {
		return nil, err
	}
	return &Schema{root: root}, nil
}

// decode parses one JSON value, keeping numbers as json.Number.
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("invalid character after top-level value")
	}
	return v, nil
}

type compiler struct {
	doc   any
	nodes map[string]*node // by JSON Pointer into doc, so $ref cycles end
}

func (c *compiler) compile(ptr string, v any) (*node, error) {
	if n, ok := c.nodes[ptr]; ok {
		return n, nil
	}
	n := &node{}
	c.nodes[ptr] = n
	switch v := v.(type) {
	case bool:
		n.boolean = &v
		return n, nil
	case map[string]any:
		return n, c.fill(n, ptr, v)
	default:
		return nil, fmt.Errorf("schema at %q: got %s, want an object or a boolean", "#"+ptr, kindOf(v))
	}
}

func (c *compiler) fill(n *node, ptr string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		at := ptr + "/" + escape(k)
		bad := func(want string) error {
			return fmt.Errorf("schema at %q: got %s, want %s", "#"+at, kindOf(v), want)
		}
		sub := func() (*node, error) { return c.compile(at, v) }
		subs := func() ([]*node, error) {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return nil, bad("a non-empty array of schemas")
			}
			out := make([]*node, len(arr))
			for i, e := range arr {
				s, err := c.compile(at+"/"+strconv.Itoa(i), e)
				if err != nil {
					return nil, err
				}
				out[i] = s
			}
			return out, nil
		}
		count := func() (*int, error) {
			num, ok := v.(json.Number)
			if !ok {
				return nil, bad("a non-negative integer")
			}
			i, err := strconv.Atoi(num.String())
			if err != nil || i < 0 {
				return nil, bad("a non-negative integer")
			}
			return &i, nil
		}
		number := func() (*big.Rat, error) {
			num, ok := v.(json.Number)
			if !ok {
				return nil, bad("a number")
			}
			r, ok := new(big.Rat).SetString(num.String())
			if !ok {
				return nil, bad("a number")
			}
			return r, nil
		}
		var err error
		switch k {
		case "type":
			n.types, err = compileTypes(v)
			if err != nil {
				return fmt.Errorf("schema at %q: %w", "#"+at, err)
			}
		case "enum":
			arr, ok := v.([]any)
			if !ok {
				return bad("an array")
			}
			n.enum, n.hasEnum = arr, true
		case "const":
			n.constant, n.hasConst = v, true
		case "$ref":
			s, ok := v.(string)
			if !ok {
				return bad("a string")
			}
			n.ref, err = c.resolve(at, s)
		case "properties":
			obj, ok := v.(map[string]any)
			if !ok {
				return bad("an object")
			}
			n.properties = make(map[string]*node, len(obj))
			for p, ps := range obj {
				if n.properties[p], err = c.compile(at+"/"+escape(p), ps); err != nil {
					return err
				}
			}
		case "patternProperties":
			obj, ok := v.(map[string]any)
			if !ok {
				return bad("an object")
			}
			pats := make([]string, 0, len(obj))
			for p := range obj {
				pats = append(pats, p)
			}
			slices.Sort(pats)
			for _, p := range pats {
				re, err := regexp.Compile(p)
				if err != nil {
					return fmt.Errorf("schema at %q: %w", "#"+at, err)
				}
				s, err := c.compile(at+"/"+escape(p), obj[p])
				if err != nil {
					return err
				}
				n.patternProperties = append(n.patternProperties, patternNode{re, s})
			}
		case "additionalProperties":
			n.additional, err = sub()
		case "propertyNames":
			n.propertyNames, err = sub()
		case "required":
			n.required, err = stringList(v)
			if err != nil {
				return bad("an array of strings")
			}
		case "dependentRequired":
			obj, ok := v.(map[string]any)
			if !ok {
				return bad("an object")
			}
			for _, p := range sortedKeys(obj) {
				req, err := stringList(obj[p])
				if err != nil {
					return fmt.Errorf("schema at %q: want an array of strings", "#"+at+"/"+escape(p))
				}
				n.dependentRequired = append(n.dependentRequired, dependency{p, req})
			}
		case "dependentSchemas":
			obj, ok := v.(map[string]any)
			if !ok {
				return bad("an object")
			}
			for _, p := range sortedKeys(obj) {
				s, err := c.compile(at+"/"+escape(p), obj[p])
				if err != nil {
					return err
				}
				n.dependentSchemas = append(n.dependentSchemas, dependentSchema{p, s})
			}
		case "minProperties":
			n.minProperties, err = count()
		case "maxProperties":
			n.maxProperties, err = count()
		case "prefixItems":
			n.prefixItems, err = subs()
		case "items":
			n.items, err = sub()
		case "contains":
			n.contains, err = sub()
		case "minContains":
			n.minContains, err = count()
		case "maxContains":
			n.maxContains, err = count()
		case "minItems":
			n.minItems, err = count()
		case "maxItems":
			n.maxItems, err = count()
		case "uniqueItems":
			b, ok := v.(bool)
			if !ok {
				return bad("a boolean")
			}
			n.uniqueItems = b
		case "minLength":
			n.minLength, err = count()
		case "maxLength":
			n.maxLength, err = count()
		case "pattern":
			s, ok := v.(string)
			if !ok {
				return bad("a string")
			}
			if n.pattern, err = regexp.Compile(s); err != nil {
				return fmt.Errorf("schema at %q: %w", "#"+at, err)
			}
		case "minimum":
			n.minimum, err = number()
		case "maximum":
			n.maximum, err = number()
		case "exclusiveMinimum":
			n.exclusiveMinimum, err = number()
		case "exclusiveMaximum":
			n.exclusiveMaximum, err = number()
		case "multipleOf":
			n.multipleOf, err = number()
			if err == nil && n.multipleOf.Sign() <= 0 {
				return bad("a number above 0")
			}
		case "allOf":
			n.allOf, err = subs()
		case "anyOf":
			n.anyOf, err = subs()
			n.anyOfKeys = keyRuleKeys(v)
		case "oneOf":
			n.oneOf, err = subs()
			n.oneOfKeys = keyRuleKeys(v)
		case "not":
			n.not, err = sub()
		case "if":
			n.ifN, err = sub()
		case "then":
			n.thenN, err = sub()
		case "else":
			n.elseN, err = sub()
		case "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "unevaluatedProperties", "unevaluatedItems":
			return fmt.Errorf("%w: %s at %q", ErrUnsupported, k, "#"+at)
		default:
			// Annotations ($schema, $id, $defs, title, description,
			// default, examples, format, content*...) and unknown
			// keywords: draft 2020-12 asserts nothing for them.
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keyRuleKeys returns the keys of a key rule, or nil when alts (the value
// of anyOf or oneOf) is not one. A key rule has two or more alternatives,
// each an object with "required" naming one key and, optionally,
// "properties" holding only that key (what value counts as set), no two
// naming the same key:
//
//	"oneOf": [{"required": ["source"], "properties": {"source": {"minLength": 1}}},
//	          {"required": ["content"]}]
func keyRuleKeys(alts any) []string {
	arr, ok := alts.([]any)
	if !ok || len(arr) < 2 {
		return nil
	}
	keys := make([]string, 0, len(arr))
	for _, a := range arr {
		m, ok := a.(map[string]any)
		if !ok {
			return nil
		}
		req, err := stringList(m["required"])
		if err != nil || len(req) != 1 || slices.Contains(keys, req[0]) {
			return nil
		}
		for k, v := range m {
			switch k {
			case "required":
			case "properties":
				props, ok := v.(map[string]any)
				if !ok {
					return nil
				}
				for p := range props {
					if p != req[0] {
						return nil
					}
				}
			default:
				return nil
			}
		}
		keys = append(keys, req[0])
	}
	return keys
}

// resolve compiles the target of a $ref: "#" or "#/json/pointer" into the
// same document.
func (c *compiler) resolve(at, ref string) (*node, error) {
	if ref != "#" && !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("%w: $ref %q at %q (only references into the same document, #/...)", ErrUnsupported, ref, "#"+at)
	}
	ptr := ref[1:]
	v := c.doc
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[tok]
			if !ok {
				return nil, fmt.Errorf("schema at %q: $ref %q points at nothing", "#"+at, ref)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur) {
				return nil, fmt.Errorf("schema at %q: $ref %q points at nothing", "#"+at, ref)
			}
			v = cur[i]
		default:
			return nil, fmt.Errorf("schema at %q: $ref %q points at nothing", "#"+at, ref)
		}
	}
	return c.compile(ptr, v)
}

func compileTypes(v any) (typeSet, error) {
	var names []string
	switch v := v.(type) {
	case string:
		names = []string{v}
	case []any:
		var err error
		if names, err = stringList(v); err != nil {
			return 0, errors.New("type: want a string or an array of strings")
		}
	default:
		return 0, errors.New("type: want a string or an array of strings")
	}
	var ts typeSet
next:
	for _, name := range names {
		for _, tn := range typeNames {
			if tn.name == name {
				ts |= tn.t
				continue next
			}
		}
		return 0, fmt.Errorf("type: unknown type %q", name)
	}
	return ts, nil
}

func stringList(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("not an array")
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("not a string")
		}
		out[i] = s
	}
	return out, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// kindOf names the JSON type of a decoded value.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// escape escapes one JSON Pointer reference token (RFC 6901).
func escape(tok string) string {
	if !strings.ContainsAny(tok, "~/") {
		return tok
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}
