package schemacheck

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Violation is one way an instance breaks the schema: Path is the JSON
// Pointer (RFC 6901) of the instance location, "" for the whole document.
type Violation struct {
	Path    string
	Message string
}

// Validate checks the JSON document instance and returns every violation,
// sorted by path (violations at the same path keep the order in which the
// schema's keywords found them). It returns an error only when instance is
// not one JSON value.
func (s *Schema) Validate(instance []byte) ([]Violation, error) {
	v, err := decode(instance)
	if err != nil {
		return nil, fmt.Errorf("decoding instance: %w", err)
	}
	out := s.root.check(v, nil)
	slices.SortStableFunc(out, func(a, b Violation) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// check returns the violations of v at the location loc (reference tokens,
// unescaped). Keywords are checked in the order santhosh-tekuri/jsonschema
// checks them, and a wrong type, const or enum ends the checks at this
// location, as there.
func (n *node) check(v any, loc []string) []Violation {
	if n.boolean != nil {
		if *n.boolean {
			return nil
		}
		return at(loc, "false schema")
	}
	if n.types != 0 && !n.types.has(v) {
		return at(loc, "got %s, want %s", kindOf(v), strings.Join(n.types.names(), " or "))
	}
	if n.hasConst && !equal(v, n.constant) {
		if isPrimitive(n.constant) {
			return at(loc, "value must be %s", display(n.constant))
		}
		return at(loc, "'const' failed")
	}
	if n.hasEnum && !slices.ContainsFunc(n.enum, func(e any) bool { return equal(v, e) }) {
		if !slices.ContainsFunc(n.enum, func(e any) bool { return !isPrimitive(e) }) {
			if len(n.enum) == 1 {
				return at(loc, "value must be %s", display(n.enum[0]))
			}
			want := make([]string, len(n.enum))
			for i, e := range n.enum {
				want[i] = display(e)
			}
			return at(loc, "value must be one of %s", strings.Join(want, ", "))
		}
		return at(loc, "'enum' failed")
	}
	var out []Violation
	if n.ref != nil {
		out = append(out, n.ref.check(v, loc)...)
	}
	switch v := v.(type) {
	case map[string]any:
		out = append(out, n.checkObject(v, loc)...)
	case []any:
		out = append(out, n.checkArray(v, loc)...)
	case string:
		out = append(out, n.checkString(v, loc)...)
	case json.Number:
		out = append(out, n.checkNumber(v, loc)...)
	}
	return append(out, n.checkApplicators(v, loc)...)
}

func (n *node) checkObject(obj map[string]any, loc []string) []Violation {
	var out []Violation
	if n.minProperties != nil && len(obj) < *n.minProperties {
		out = append(out, at(loc, "minProperties: got %s, want %s", intText(len(obj)), intText(*n.minProperties))...)
	}
	if n.maxProperties != nil && len(obj) > *n.maxProperties {
		out = append(out, at(loc, "maxProperties: got %s, want %s", intText(len(obj)), intText(*n.maxProperties))...)
	}
	for _, r := range n.required {
		if _, ok := obj[r]; !ok {
			out = append(out, at(child(loc, r), "missing required key")...)
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		pv := obj[k]
		evaluated := false
		if s, ok := n.properties[k]; ok {
			evaluated = true
			out = append(out, s.check(pv, child(loc, k))...)
		}
		for _, pp := range n.patternProperties {
			if pp.re.MatchString(k) {
				evaluated = true
				out = append(out, pp.n.check(pv, child(loc, k))...)
			}
		}
		if !evaluated && n.additional != nil {
			if b := n.additional.boolean; b != nil && !*b {
				out = append(out, at(child(loc, k), "unknown key")...)
			} else {
				out = append(out, n.additional.check(pv, child(loc, k))...)
			}
		}
	}
	if n.propertyNames != nil {
		for _, k := range keys {
			for _, e := range n.propertyNames.check(k, nil) {
				out = append(out, at(child(loc, k), "invalid key: %s", e.Message)...)
			}
		}
	}
	for _, d := range n.dependentSchemas {
		if _, ok := obj[d.prop]; ok {
			out = append(out, d.n.check(obj, loc)...)
		}
	}
	for _, d := range n.dependentRequired {
		if _, ok := obj[d.prop]; !ok {
			continue
		}
		for _, r := range d.required {
			if _, ok := obj[r]; !ok {
				out = append(out, at(child(loc, r), "missing key, required when %s is present", d.prop)...)
			}
		}
	}
	return out
}

func (n *node) checkArray(arr []any, loc []string) []Violation {
	var out []Violation
	if n.minItems != nil && len(arr) < *n.minItems {
		out = append(out, at(loc, "minItems: got %s, want %s", intText(len(arr)), intText(*n.minItems))...)
	}
	if n.maxItems != nil && len(arr) > *n.maxItems {
		out = append(out, at(loc, "maxItems: got %s, want %s", intText(len(arr)), intText(*n.maxItems))...)
	}
	if n.uniqueItems {
		seen := make(map[string]int, len(arr))
		for i, e := range arr {
			k := canonical(e)
			if j, ok := seen[k]; ok {
				out = append(out, at(loc, "items at %s and %s are equal", intText(j), intText(i))...)
				break
			}
			seen[k] = i
		}
	}
	prefix := min(len(n.prefixItems), len(arr))
	for i := range prefix {
		out = append(out, n.prefixItems[i].check(arr[i], child(loc, strconv.Itoa(i)))...)
	}
	if n.items != nil {
		for i := prefix; i < len(arr); i++ {
			out = append(out, n.items.check(arr[i], child(loc, strconv.Itoa(i)))...)
		}
	}
	if n.contains != nil {
		var misses []Violation
		var matched []int
		for i, e := range arr {
			if errs := n.contains.check(e, child(loc, strconv.Itoa(i))); errs != nil {
				misses = append(misses, errs...)
			} else {
				matched = append(matched, i)
			}
		}
		switch {
		case n.minContains != nil && len(matched) < *n.minContains:
			if misses == nil {
				if len(matched) == 0 {
					misses = at(loc, "min %s items required to match contains schema, but none matched", intText(*n.minContains))
				} else {
					misses = at(loc, "min %s items required to match contains schema, but matched %s items at %s", intText(*n.minContains), intText(len(matched)), indexList(matched))
				}
			}
			out = append(out, misses...)
		case n.minContains == nil && len(matched) == 0:
			if misses == nil {
				misses = at(loc, "no items match contains schema")
			}
			out = append(out, misses...)
		}
		if n.maxContains != nil && len(matched) > *n.maxContains {
			out = append(out, at(loc, "max %s items required to match contains schema, but matched %s items at %s", intText(*n.maxContains), intText(len(matched)), indexList(matched))...)
		}
	}
	return out
}

func (n *node) checkString(s string, loc []string) []Violation {
	var out []Violation
	if n.minLength != nil || n.maxLength != nil {
		l := utf8.RuneCountInString(s)
		if n.minLength != nil && l < *n.minLength {
			out = append(out, at(loc, "minLength: got %s, want %s", intText(l), intText(*n.minLength))...)
		}
		if n.maxLength != nil && l > *n.maxLength {
			out = append(out, at(loc, "maxLength: got %s, want %s", intText(l), intText(*n.maxLength))...)
		}
	}
	if n.pattern != nil && !n.pattern.MatchString(s) {
		out = append(out, at(loc, "%s does not match pattern %s", quote(s), quote(n.pattern.String()))...)
	}
	return out
}

func (n *node) checkNumber(num json.Number, loc []string) []Violation {
	if n.minimum == nil && n.maximum == nil && n.exclusiveMinimum == nil && n.exclusiveMaximum == nil && n.multipleOf == nil {
		return nil
	}
	r, ok := new(big.Rat).SetString(num.String())
	if !ok {
		return nil
	}
	var out []Violation
	bound := func(kw string, want *big.Rat, fails func(c int) bool) {
		if want != nil && fails(r.Cmp(want)) {
			out = append(out, at(loc, "%s: got %s, want %s", kw, numText(r), numText(want))...)
		}
	}
	bound("minimum", n.minimum, func(c int) bool { return c < 0 })
	bound("maximum", n.maximum, func(c int) bool { return c > 0 })
	bound("exclusiveMinimum", n.exclusiveMinimum, func(c int) bool { return c <= 0 })
	bound("exclusiveMaximum", n.exclusiveMaximum, func(c int) bool { return c >= 0 })
	if n.multipleOf != nil && !new(big.Rat).Quo(r, n.multipleOf).IsInt() {
		out = append(out, at(loc, "multipleOf: got %s, want %s", numText(r), numText(n.multipleOf))...)
	}
	return out
}

// checkApplicators checks not, allOf, anyOf, oneOf and if/then/else. A
// failed anyOf or oneOf reports what each of its subschemas found.
func (n *node) checkApplicators(v any, loc []string) []Violation {
	var out []Violation
	if n.not != nil && n.not.check(v, loc) == nil {
		out = append(out, at(loc, "'not' failed")...)
	}
	for _, s := range n.allOf {
		out = append(out, s.check(v, loc)...)
	}
	obj, isObject := v.(map[string]any)
	if len(n.anyOf) > 0 && n.anyOfKeys != nil && isObject {
		out = append(out, keyRule(n.anyOf, n.anyOfKeys, false, obj, loc)...)
	} else if len(n.anyOf) > 0 {
		var misses []Violation
		matched := false
		for _, s := range n.anyOf {
			errs := s.check(v, loc)
			if errs == nil {
				matched = true
				break
			}
			misses = append(misses, errs...)
		}
		if !matched {
			out = append(out, misses...)
		}
	}
	if len(n.oneOf) > 0 && n.oneOfKeys != nil && isObject {
		out = append(out, keyRule(n.oneOf, n.oneOfKeys, true, obj, loc)...)
	} else if len(n.oneOf) > 0 {
		var misses []Violation
		first := -1
		for i, s := range n.oneOf {
			errs := s.check(v, loc)
			if errs != nil {
				if first == -1 {
					misses = append(misses, errs...)
				}
				continue
			}
			if first != -1 {
				out = append(out, at(loc, "'oneOf' failed, subschemas %s, %s matched", intText(first), intText(i))...)
				break
			}
			first = i
		}
		if first == -1 {
			out = append(out, misses...)
		}
	}
	if n.ifN != nil {
		if n.ifN.check(v, loc) == nil {
			if n.thenN != nil {
				out = append(out, n.thenN.check(v, loc)...)
			}
		} else if n.elseN != nil {
			out = append(out, n.elseN.check(v, loc)...)
		}
	}
	return out
}

// keyRule checks the key rule whose alternatives alts each require one of
// keys (anyOf, or oneOf when exactlyOne) against the object obj at loc. A
// broken rule is reported at the keys it concerns, every one with the
// same message: when no alternative matches, at each key's (would-be)
// pointer; when several match a oneOf, at the pointer of each key set.
func keyRule(alts []*node, keys []string, exactlyOne bool, obj map[string]any, loc []string) []Violation {
	var set []string
	for i, a := range alts {
		if a.check(obj, loc) == nil {
			set = append(set, keys[i])
		}
	}
	var msg string
	var involved []string
	switch {
	case len(set) == 0 && exactlyOne:
		msg, involved = fmt.Sprintf("one of %s is required", listWords(keys, "or")), keys
	case len(set) == 0:
		msg, involved = fmt.Sprintf("at least one of %s is required", listWords(keys, "or")), keys
	case len(set) > 1 && exactlyOne:
		msg, involved = fmt.Sprintf("only one of %s may be set; %s are set", listWords(keys, "and"), listWords(set, "and")), set
	default:
		return nil
	}
	out := make([]Violation, len(involved))
	for i, k := range involved {
		out[i] = Violation{Path: pointer(child(loc, k)), Message: msg}
	}
	return out
}

// listWords joins words as English does: "a", "a or b", "a, b or c".
func listWords(words []string, conj string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

func (ts typeSet) has(v any) bool {
	switch v := v.(type) {
	case nil:
		return ts&tNull != 0
	case bool:
		return ts&tBoolean != 0
	case string:
		return ts&tString != 0
	case []any:
		return ts&tArray != 0
	case map[string]any:
		return ts&tObject != 0
	case json.Number:
		if ts&tNumber != 0 {
			return true
		}
		if ts&tInteger == 0 {
			return false
		}
		r, ok := new(big.Rat).SetString(v.String())
		return ok && r.IsInt()
	}
	return false
}

// at returns one violation at loc.
func at(loc []string, format string, args ...any) []Violation {
	return []Violation{{Path: pointer(loc), Message: fmt.Sprintf(format, args...)}}
}

// child returns loc extended by tok, never sharing loc's backing array.
func child(loc []string, tok string) []string {
	return append(loc[:len(loc):len(loc)], tok)
}

func pointer(loc []string) string {
	var b strings.Builder
	for _, t := range loc {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

// equal is JSON equality: numbers by value (1 equals 1.0), objects
// regardless of member order.
func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !equal(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equal)
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		ra, oka := new(big.Rat).SetString(a.String())
		rb, okb := new(big.Rat).SetString(b.String())
		return oka && okb && ra.Cmp(rb) == 0
	default: // nil, bool, string
		return a == b
	}
}

// canonical returns a key that is the same for two values exactly when
// they are equal.
func canonical(v any) string {
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String()
}

func writeCanonical(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any:
		b.WriteByte('{')
		for _, k := range sortedKeys(v) {
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			writeCanonical(b, v[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for _, e := range v {
			writeCanonical(b, e)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case json.Number:
		if r, ok := new(big.Rat).SetString(v.String()); ok {
			b.WriteString(r.RatString())
		} else {
			b.WriteString(v.String())
		}
	case string:
		b.WriteString(strconv.Quote(v))
	default:
		fmt.Fprint(b, v)
	}
}

func isPrimitive(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return false
	}
	return true
}

// display formats a primitive value for a message: strings single-quoted,
// numbers as written, null as <nil> (as santhosh-tekuri/jsonschema does).
func display(v any) string {
	if s, ok := v.(string); ok {
		return quote(s)
	}
	return fmt.Sprintf("%v", v)
}

// quote single-quotes s, escaping as Go does but leaving double quotes
// alone and escaping single ones.
func quote(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, `\"`, `"`)
	q = strings.ReplaceAll(q, `'`, `\'`)
	return "'" + q[1:len(q)-1] + "'"
}

// numText formats r as santhosh-tekuri/jsonschema's messages do (through an
// English golang.org/x/text printer): Go's %v of the nearest float64, the
// integer part grouped by thousands, an exponent as "1.5×10²¹" (golang.org/x/text
// v0.44 writes no spaces around the sign).
func numText(r *big.Rat) string {
	f, _ := r.Float64()
	s := strconv.FormatFloat(f, 'g', -1, 64)
	mant, exp, sci := strings.Cut(s, "e")
	if !sci {
		return group(s)
	}
	var b strings.Builder
	b.WriteString(mant)
	b.WriteString("×10")
	for _, c := range exp {
		switch {
		case c == '-':
			b.WriteRune('⁻')
		case c >= '0' && c <= '9':
			b.WriteRune([]rune("⁰¹²³⁴⁵⁶⁷⁸⁹")[c-'0'])
		}
	}
	return b.String()
}

// intText formats an integer as those messages do: grouped by thousands.
func intText(i int) string { return group(strconv.Itoa(i)) }

// group puts a comma between each group of three digits of the integer
// part of the decimal number s.
func group(s string) string {
	sign, digits := "", s
	if strings.HasPrefix(s, "-") {
		sign, digits = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(digits, ".")
	if len(whole) <= 3 {
		return s
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

func indexList(is []int) string {
	s := fmt.Sprint(is)
	return s[1 : len(s)-1]
}
