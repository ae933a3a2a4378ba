package template

import (
	"strconv"
	"strings"
)

// Locate returns where, in the template's file, the configuration key at
// pointer (a JSON Pointer, RFC 6901, into the configuration of the
// component at key, such as "builders[0]" or "post-processors[1][0]")
// is written: the member's key when the pointer ends at an object member,
// the value otherwise. When the pointer leads nowhere in the file (a key
// the template does not have, such as a missing required one, or one that
// an override supplies), it returns the position of the deepest part that
// exists, down to the component itself. It returns the zero Pos for a
// template that was not parsed from a file or a component key it lacks.
func (t *Template) Locate(key, pointer string) Pos {
	if t.root == nil || t.src == nil {
		return Pos{}
	}
	p := &parser{src: t.src, t: t}
	n := p.find(t.root, key)
	if n == nil {
		return Pos{}
	}
	best := n.off
	if pointer == "" {
		return t.src.pos(best)
	}
	for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if list, ok := n.val.([]*node); ok {
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(list) {
				break
			}
			n = list[i]
			best = n.off
			continue
		}
		m, ok := lookup(n, seg)
		if !ok {
			break
		}
		n, best = m.val, m.keyOff
	}
	return t.src.pos(best)
}

// Place says where a component is written in a template that a front end
// without a JSON document for [Template.Locate] (HCL2) produced: its
// block, and the attribute or nested block of each top-level key of its
// configuration, each as "file:line:col".
type Place struct {
	Block string
	Keys  map[string]string
}

// Where returns where the configuration key at pointer (a JSON Pointer,
// RFC 6901, into the component's configuration) is written: at the
// top-level key the pointer starts with when p knows it, and otherwise
// (a key the template lacks, or the pointer "") at the block. It returns
// "" for a nil Place.
func (p *Place) Where(pointer string) string {
	if p == nil {
		return ""
	}
	if pointer != "" {
		first, _, _ := strings.Cut(strings.TrimPrefix(pointer, "/"), "/")
		first = strings.ReplaceAll(strings.ReplaceAll(first, "~1", "/"), "~0", "~")
		if at, ok := p.Keys[first]; ok {
			return at
		}
	}
	return p.Block
}
