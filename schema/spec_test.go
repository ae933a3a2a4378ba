package schema_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// specPath is SPEC.md, relative to this package's directory.
const specPath = "../SPEC.md"

// specDoc is SPEC.md split into what the tests look at.
type specDoc struct {
	lines    []string
	headings []heading
	blocks   []block // transcript blocks
}

type heading struct {
	line  int // index into lines
	level int
	text  string
}

type block struct {
	line  int // index of the first line inside the fence
	lines []string
}

func readSpec(t *testing.T) *specDoc {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	d := &specDoc{lines: strings.Split(string(b), "\n")}
	inFence, transcript := false, false
	var cur *block
	for i, l := range d.lines {
		if strings.HasPrefix(l, "```") {
			if !inFence {
				inFence = true
				transcript = strings.TrimSpace(strings.TrimPrefix(l, "```")) == "transcript"
				if transcript {
					d.blocks = append(d.blocks, block{line: i + 1})
					cur = &d.blocks[len(d.blocks)-1]
				}
			} else {
				inFence, transcript, cur = false, false, nil
			}
			continue
		}
		if inFence {
			if transcript {
				cur.lines = append(cur.lines, l)
			}
			continue
		}
		if strings.HasPrefix(l, "#") {
			level := len(l) - len(strings.TrimLeft(l, "#"))
			d.headings = append(d.headings, heading{line: i, level: level, text: strings.TrimSpace(l[level:])})
		}
	}
	if inFence {
		t.Fatalf("SPEC.md: unterminated code fence")
	}
	return d
}

// section returns the text of the section under h: up to the next heading
// of the same or a higher level.
func (d *specDoc) section(h heading) string {
	end := len(d.lines)
	for _, o := range d.headings {
		if o.line > h.line && o.level <= h.level {
			end = o.line
			break
		}
	}
	return strings.Join(d.lines[h.line:end], "\n")
}

// TestSpecSectionsLinkSchemas checks that every method has a section in
// SPEC.md whose heading names it in backquotes and whose text links its
// schema files, and that every schema link in SPEC.md names a real file.
func TestSpecSectionsLinkSchemas(t *testing.T) {
	d := readSpec(t)
	for _, m := range schema.Methods {
		var found []heading
		for _, h := range d.headings {
			if strings.Contains(h.text, "`"+m.Name+"`") {
				found = append(found, h)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: want exactly one SPEC.md heading naming `%s`, found %d", m.Name, m.Name, len(found))
			continue
		}
		text := d.section(found[0])
		files := []string{m.ParamsFile()}
		if f := m.ResultFile(); f != "" {
			files = append(files, f)
		}
		for _, f := range files {
			if !strings.Contains(text, "](schema/"+f+")") {
				t.Errorf("%s: section %q does not link schema/%s", m.Name, found[0].text, f)
			}
		}
	}
	links := regexp.MustCompile(`\]\(schema/([^)]*)\)`).FindAllStringSubmatch(strings.Join(d.lines, "\n"), -1)
	if len(links) == 0 {
		t.Fatal("SPEC.md links no schema file")
	}
	for _, l := range links {
		if l[1] == "" {
			continue // the directory itself
		}
		if _, err := fs.Stat(schema.FS, l[1]); err != nil {
			t.Errorf("SPEC.md links schema/%s, which does not exist", l[1])
		}
	}
}

// TestSpecErrorTable checks that SPEC.md's table of error codes lists
// exactly the Code* constants of protocol/errors.go, each with the
// constant's number, its name without the Code prefix, and the message of
// the sentinel error built from it.
func TestSpecErrorTable(t *testing.T) {
	codes := protocolConsts(t, "errors.go", "Code")
	messages := sentinelMessages(t)
	type row struct{ Name, Message string }
	want := map[string]row{}
	for name, value := range codes {
		want[value] = row{Name: strings.TrimPrefix(name, "Code"), Message: messages[name]}
	}
	got := map[string]row{}
	rowRE := regexp.MustCompile(`^\|\s*(-32\d{3})\s*\|([^|]*)\|([^|]*)\|`)
	for _, l := range readSpec(t).lines {
		m := rowRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		clean := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
		if _, dup := got[m[1]]; dup {
			t.Errorf("SPEC.md: code %s has two rows", m[1])
		}
		got[m[1]] = row{Name: clean(m[2]), Message: clean(m[3])}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SPEC.md error table does not match protocol/errors.go (-errors.go +SPEC.md):\n%s", diff)
	}
}

// sentinelMessages maps each Code* constant to the message of the Err*
// variable protocol/errors.go builds from it with NewError.
func sentinelMessages(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../protocol/errors.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	re := regexp.MustCompile(`(?m)^var Err\w+ = NewError\((Code\w+), ("[^"]*")\)`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		s, err := strconv.Unquote(m[2])
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]] = s
	}
	if len(out) == 0 {
		t.Fatal("no NewError sentinels found in protocol/errors.go")
	}
	return out
}

// transcriptLine is one message line of a transcript block.
type transcriptLine struct {
	where string // "SPEC.md:LINE"
	label string // "[B]", "[P]" or ""
	dir   string // "→" host to plugin, "←" plugin to host
	bad   bool   // marked with "!": deliberately malformed or refused
	text  string // the JSON line
}

var lineRE = regexp.MustCompile(`^(\[[A-Z]\] )?(→|←)(!?) (.*)$`)

func parseBlock(t *testing.T, b block) []transcriptLine {
	t.Helper()
	var out []transcriptLine
	for i, l := range b.lines {
		where := fmt.Sprintf("SPEC.md:%d", b.line+i+1)
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("%s: transcript line is neither a comment nor `→ JSON`/`← JSON`: %q", where, l)
			continue
		}
		out = append(out, transcriptLine{where: where, label: strings.TrimSpace(m[1]), dir: m[2], bad: m[3] == "!", text: m[4]})
	}
	return out
}

// validator validates documents against the committed schemas.
type validator struct {
	t       *testing.T
	schemas map[string]*jsonschema.Schema
}

func (v validator) check(file string, doc any) error {
	s := v.schemas[file]
	if s == nil {
		v.t.Fatalf("no schema %s", file)
	}
	return s.Validate(doc)
}

// message is a decoded transcript line.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code int64           `json:"code"`
		Data json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeInstance(raw []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(raw))
}

// problem returns why a transcript line is not a valid message of the
// protocol in its direction, or "" when it is one. For a request it also
// returns the method.
func (v validator) problem(l transcriptLine) (string, *message) {
	raw := []byte(l.text)
	doc, err := decodeInstance(raw)
	if err != nil {
		return "not JSON: " + err.Error(), nil
	}
	if err := v.check(schema.EnvelopeMessage, doc); err != nil {
		return "not a JSON-RPC message: " + err.Error(), nil
	}
	var msg message
	if err := json.Unmarshal(raw, &msg); err != nil {
		return "cannot decode: " + err.Error(), nil
	}
	if msg.Method == nil {
		return "", &msg // a response; checked against its request by the caller
	}
	m, ok := schema.Lookup(*msg.Method)
	if !ok {
		return "unknown method " + *msg.Method, &msg
	}
	isNotification := msg.ID == nil
	if isNotification != m.Notification {
		return fmt.Sprintf("%s sent as notification=%v", m.Name, isNotification), &msg
	}
	switch {
	case l.dir == "→" && m.Direction == schema.PluginToHost:
		return m.Name + " is plugin → host only", &msg
	case l.dir == "←" && m.Direction == schema.HostToPlugin:
		return m.Name + " is host → plugin only", &msg
	}
	if msg.Params == nil {
		if m.Params != nil {
			return m.Name + ": params missing", &msg
		}
		return "", &msg
	}
	params, err := decodeInstance(msg.Params)
	if err != nil {
		return err.Error(), &msg
	}
	if err := v.check(m.ParamsFile(), params); err != nil {
		return m.Name + " params: " + err.Error(), &msg
	}
	return "", &msg
}

// TestSpecTranscripts validates every line of every transcript block of
// SPEC.md: messages against the envelope and their method's params schema,
// answers against the result schema of the request they answer (matched by
// connection, direction and id) or, for errors, the data schema of their
// code. Lines marked as malformed must indeed fail. Together the blocks
// must show every method and every error code that has data.
func TestSpecTranscripts(t *testing.T) {
	d := readSpec(t)
	if len(d.blocks) < 15 {
		t.Fatalf("SPEC.md has %d transcript blocks; every flow needs one", len(d.blocks))
	}
	v := validator{t: t, schemas: compileAll(t)}
	shown := map[string]bool{}
	for _, b := range d.blocks {
		lines := parseBlock(t, b)
		if len(lines) == 0 {
			t.Errorf("SPEC.md:%d: empty transcript block", b.line)
		}
		// pending maps connection label, direction of the request and the
		// id's JSON text to the method of a request awaiting its answer.
		pending := map[string]string{}
		key := func(label, dir string, id json.RawMessage) string {
			var buf bytes.Buffer
			if err := json.Compact(&buf, id); err != nil {
				return label + dir + string(id)
			}
			return label + dir + buf.String()
		}
		opposite := map[string]string{"→": "←", "←": "→"}
		for _, l := range lines {
			why, msg := v.problem(l)
			if l.bad {
				if why == "" && (msg == nil || msg.Method != nil) {
					t.Errorf("%s: line is marked malformed (%s!) but is a valid message: %s", l.where, l.dir, l.text)
				}
				if id := refusedID(l.text); id != nil {
					pending[key(l.label, l.dir, id)] = "" // refused: its answer is an error
				}
				if msg != nil && msg.Method == nil {
					if why == "" {
						t.Errorf("%s: line is marked malformed but is a valid response: %s", l.where, l.text)
					}
				}
				continue
			}
			if why != "" {
				t.Errorf("%s: %s\n\t%s", l.where, why, l.text)
				continue
			}
			if msg.Method != nil {
				shown[*msg.Method] = true
				if msg.ID != nil {
					k := key(l.label, l.dir, msg.ID)
					if _, dup := pending[k]; dup {
						t.Errorf("%s: id %s is already in flight in this direction", l.where, msg.ID)
					}
					pending[k] = *msg.Method
				}
				continue
			}
			v.checkResponse(l, msg, pending, key(l.label, opposite[l.dir], msg.ID), shown)
		}
		for k, method := range pending {
			if method != "" {
				t.Errorf("SPEC.md:%d: request %s (%s) is never answered in its transcript", b.line, k, method)
			}
		}
	}
	for _, m := range schema.Methods {
		if !shown[m.Name] {
			t.Errorf("no transcript in SPEC.md shows %s", m.Name)
		}
	}
	for _, e := range schema.ErrorData {
		if !shown[strconv.FormatInt(e.Code, 10)] {
			t.Errorf("no transcript in SPEC.md shows an error %d with its data", e.Code)
		}
	}
}

// checkResponse validates a response line against the request it answers.
func (v validator) checkResponse(l transcriptLine, msg *message, pending map[string]string, k string, shown map[string]bool) {
	t := v.t
	method, ok := pending[k]
	isNullID := string(msg.ID) == "null"
	switch {
	case ok:
		delete(pending, k)
	case isNullID && msg.Error != nil:
		// The answer to a line whose id could not be read.
	default:
		t.Errorf("%s: response answers no request in flight in its transcript: %s", l.where, l.text)
		return
	}
	if msg.Error != nil {
		ed, has := schema.LookupErrorData(msg.Error.Code)
		if !has {
			return
		}
		if msg.Error.Data == nil {
			t.Errorf("%s: error %d must carry data", l.where, msg.Error.Code)
			return
		}
		data, err := decodeInstance(msg.Error.Data)
		if err == nil {
			err = v.check(ed.File(), data)
		}
		if err != nil {
			t.Errorf("%s: error %d data: %v", l.where, msg.Error.Code, err)
		}
		shown[strconv.FormatInt(msg.Error.Code, 10)] = true
		return
	}
	if method == "" {
		t.Errorf("%s: a refused request is answered with a result: %s", l.where, l.text)
		return
	}
	m, _ := schema.Lookup(method)
	res, err := decodeInstance(msg.Result)
	if err == nil {
		err = v.check(m.ResultFile(), res)
	}
	if err != nil {
		t.Errorf("%s: %s result: %v", l.where, method, err)
		return
	}
	if method == "initialize" {
		checkConfigSchemas(t, l.where, msg.Result)
	}
}

// packerKeys are the keys every component's config_schema declares.
var packerKeys = []string{"packer_build_name", "packer_builder_type", "packer_debug", "packer_force",
	"packer_on_error", "packer_user_variables", "packer_sensitive_variables"}

// checkConfigSchemas checks that every config_schema in an initialize
// result compiles as draft 2020-12 and declares the packer_* keys.
func checkConfigSchemas(t *testing.T, where string, result json.RawMessage) {
	t.Helper()
	var res struct {
		Components []struct {
			Name         string          `json:"name"`
			ConfigSchema json.RawMessage `json:"config_schema"`
		} `json:"components"`
	}
	if err := json.Unmarshal(result, &res); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, c := range res.Components {
		doc, err := decodeInstance(c.ConfigSchema)
		if err != nil {
			t.Errorf("%s: %s: %v", where, c.Name, err)
			continue
		}
		comp := jsonschema.NewCompiler()
		comp.DefaultDraft(jsonschema.Draft2020)
		if err := comp.AddResource("config.json", doc); err != nil {
			t.Errorf("%s: %s: %v", where, c.Name, err)
			continue
		}
		if _, err := comp.Compile("config.json"); err != nil {
			t.Errorf("%s: %s: config_schema does not compile: %v", where, c.Name, err)
		}
		var s struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		json.Unmarshal(c.ConfigSchema, &s) //nolint:errcheck // compiled above
		var missing []string
		for _, k := range packerKeys {
			if _, ok := s.Properties[k]; !ok {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: %s: config_schema lacks %v", where, c.Name, missing)
		}
	}
}

// refusedID returns the id of a malformed line that is not a response, as
// the receiver echoes it in its error answer, or nil when it has none.
func refusedID(line string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &m) != nil {
		return nil
	}
	_, isResult := m["result"]
	_, isError := m["error"]
	id := m["id"]
	if id == nil || string(id) == "null" || ((isResult || isError) && m["method"] == nil) {
		return nil
	}
	return id
}

// TestSpecMethodTable checks that the method table of SPEC.md §1.2 gives
// every method the direction and kind schema.Methods gives it.
func TestSpecMethodTable(t *testing.T) {
	want := map[string]string{}
	for _, m := range schema.Methods {
		kind := "request"
		if m.Notification {
			kind = "notification"
		}
		dir := map[schema.Direction]string{schema.HostToPlugin: "host → plugin", schema.PluginToHost: "plugin → host", schema.Either: "either"}[m.Direction]
		want[m.Name] = dir + " " + kind
	}
	got := map[string]string{}
	rowRE := regexp.MustCompile("^\\| (`[^|]*`) \\| ([^|]*) \\| ([^|]*) \\| §")
	nameRE := regexp.MustCompile("`([^`]*)`")
	for _, l := range readSpec(t).lines {
		m := rowRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, n := range nameRE.FindAllStringSubmatch(m[1], -1) {
			if _, dup := got[n[1]]; dup {
				t.Errorf("SPEC.md method table lists %s twice", n[1])
			}
			got[n[1]] = strings.TrimSpace(m[2]) + " " + strings.TrimSpace(m[3])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SPEC.md §1.2 method table (-schema.Methods +SPEC.md):\n%s", diff)
	}
}
