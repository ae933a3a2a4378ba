package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// schemaNode is the part of a JSON Schema that describe shows to people.
type schemaNode struct {
	Type        any                    `json:"type"`
	Description string                 `json:"description"`
	Default     any                    `json:"default"`
	Enum        []any                  `json:"enum"`
	Items       *schemaNode            `json:"items"`
	Properties  map[string]*schemaNode `json:"properties"`
	Required    []string               `json:"required"`
	OneOf       []*schemaNode          `json:"oneOf"`
	AnyOf       []*schemaNode          `json:"anyOf"`
	AllOf       []*schemaNode          `json:"allOf"`
	Ref         string                 `json:"$ref"`
	Additional  any                    `json:"additionalProperties"`
}

// typeName is a short name of the node's type: "string", "array of string",
// "map of string", "one of: a, b".
func (n *schemaNode) typeName() string {
	if n == nil {
		return "any"
	}
	if len(n.Enum) > 0 {
		vals := make([]string, len(n.Enum))
		for i, v := range n.Enum {
			b, _ := json.Marshal(v)
			vals[i] = string(b)
		}
		return "one of " + strings.Join(vals, ", ")
	}
	var t string
	switch v := n.Type.(type) {
	case string:
		t = v
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		t = strings.Join(parts, " or ")
	}
	switch t {
	case "array":
		return "array of " + n.Items.typeName()
	case "object":
		if add, ok := n.Additional.(map[string]any); ok && len(n.Properties) == 0 {
			b, _ := json.Marshal(add)
			var sub schemaNode
			if json.Unmarshal(b, &sub) == nil {
				return "map of " + sub.typeName()
			}
		}
		return "object"
	case "":
		if n.Ref != "" {
			return "object"
		}
		return "any"
	}
	return t
}

// writeDescription prints a component's configuration for people: the
// required keys, then the optional ones, each with its type, default and
// description, and the rules that tie keys together. The packer_* keys that
// packer itself sends every component are left out.
func writeDescription(w io.Writer, typ, name, from string, raw json.RawMessage) error {
	var root schemaNode
	if err := json.Unmarshal(raw, &root); err != nil {
		return fmt.Errorf("the plugin's schema is not a JSON Schema object: %w", err)
	}
	fmt.Fprintf(w, "%s %s (%s)\n", typ, name, from)
	if root.Description != "" {
		fmt.Fprintf(w, "\n%s\n", root.Description)
	}
	var keys []string
	for k := range root.Properties {
		if !strings.HasPrefix(k, "packer_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var required, optional []string
	for _, k := range keys {
		if slices.Contains(root.Required, k) {
			required = append(required, k)
		} else {
			optional = append(optional, k)
		}
	}
	section := func(title string, keys []string) {
		if len(keys) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n\n", title)
		for _, k := range keys {
			p := root.Properties[k]
			line := fmt.Sprintf("  %s (%s)", k, p.typeName())
			if p.Default != nil {
				b, _ := json.Marshal(p.Default)
				line += " default " + string(b)
			}
			fmt.Fprintln(w, line)
			if p.Description != "" {
				fmt.Fprintf(w, "      %s\n", p.Description)
			}
		}
	}
	section("Required", required)
	section("Optional", optional)
	if len(keys) == 0 {
		fmt.Fprintf(w, "\nNo configuration keys.\n")
	}
	// Rules are the schema's oneOf and anyOf, and those of its allOf's
	// items (where pluginkit writes key rules, SPEC §6.1).
	type rule struct {
		what string
		alts []*schemaNode
	}
	found := []rule{{"exactly one of", root.OneOf}, {"at least one of", root.AnyOf}}
	for _, item := range root.AllOf {
		if item != nil {
			found = append(found, rule{"exactly one of", item.OneOf}, rule{"at least one of", item.AnyOf})
		}
	}
	var rules []string
	for _, r := range found {
		var sets []string
		for _, alt := range r.alts {
			if alt != nil && len(alt.Required) > 0 {
				sets = append(sets, strings.Join(alt.Required, " and "))
			}
		}
		if len(sets) > 0 {
			rules = append(rules, r.what+": "+strings.Join(sets, "; "))
		}
	}
	if len(rules) > 0 {
		fmt.Fprintf(w, "\nRules:\n")
		for _, r := range rules {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	return nil
}
