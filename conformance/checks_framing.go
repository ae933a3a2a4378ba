package conformance

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

var framingChecks = []Check{
	{
		ID: "framing/parse-error", Section: "§4.1", Level: Must,
		Title: "a line that is not JSON gets -32700 with a null id, and the connection stays usable",
		run: probe(`{"jsonrpc":"2.0","id":3,"method":`+"\n",
			protocol.CodeParseError, "null"),
	},
	{
		ID: "framing/invalid-utf8", Section: "§4.1", Level: Must,
		Title: "a line that is not UTF-8 gets -32700 with a null id, and the connection stays usable",
		run: probe(`{"jsonrpc":"2.0","id":4,"method":"conformance/`+"\xff\xfe"+`"}`+"\n",
			protocol.CodeParseError, "null"),
	},
	{
		ID: "framing/invalid-request", Section: "§4.1", Level: Must,
		Title: "JSON that is not a valid request gets -32600, echoing the id when it can be read",
		run:   checkInvalidRequest,
	},
	{
		ID: "framing/batch", Section: "§4.1", Level: Must,
		Title: "a batch gets exactly one -32600 with a null id and none of its requests run",
		run:   checkBatch,
	},
	{
		ID: "framing/unknown-method", Section: "§4.1", Level: Must,
		Title: "a request for an unknown method gets -32601 with its id",
		run: probe(`{"jsonrpc":"2.0","id":13,"method":"conformance/no-such-method","params":{}}`+"\n",
			protocol.CodeMethodNotFound, "13"),
	},
	{
		ID: "framing/invalid-params", Section: "§4.1", Level: Must,
		Title: "params of the wrong type or with unknown members get -32602",
		run:   checkInvalidParams,
	},
	{
		ID: "framing/notification-unanswered", Section: "§4.1", Level: Must,
		Title: "notifications, known or not, are never answered",
		run:   checkNotificationUnanswered,
	},
	{
		ID: "framing/id-types", Section: "§4.1", Level: Must,
		Title: "answers echo string and integer ids with their exact JSON type and digits",
		run:   checkIDTypes,
	},
	{
		ID: "framing/invalid-id", Section: "§4.1", Level: Must,
		Title: "a request whose id is null, negative, fractional or not a string or number gets -32600 (numbers echoed, others null)",
		run:   checkInvalidID,
	},
	{
		ID: "framing/line-endings", Section: "§3.1", Level: Must,
		Title: `"\r\n" line endings are accepted and empty lines are skipped`,
		run:   checkLineEndings,
	},
	{
		ID: "framing/oversize", Section: "§3.2", Level: Must,
		Title: "a line over the declared limit gets -32009 with a null id, and the connection stays usable",
		run:   checkOversize,
	},
}

// probe returns a check that, after the handshake, sends line and expects
// one error answer with code and id (compact JSON), then a ping answer.
func probe(line string, code int64, id string) func(c *checkCtx) error {
	return func(c *checkCtx) error {
		s, _, err := c.ready()
		if err != nil {
			return err
		}
		m, err := c.rawAnswer(s, line)
		if err != nil {
			return err
		}
		if err := expectCode(m, code, id); err != nil {
			return err
		}
		return c.ping(s, "after the bad line")
	}
}

func checkInvalidRequest(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	probes := []struct{ line, id, why string }{
		{`{"jsonrpc":"2.0","id":7}`, "7", "neither method nor result"},
		{`{"jsonrpc":"1.0","id":8,"method":"conformance/ping"}`, "8", `"jsonrpc" is not "2.0"`},
		{`{"id":9,"method":"conformance/ping"}`, "9", `"jsonrpc" is missing`},
		{`{"jsonrpc":"2.0","id":10,"method":5}`, "10", `"method" is not a string`},
		{`{"jsonrpc":"2.0","id":11,"method":"conformance/ping","params":3}`, "11", `"params" is a number`},
		{`"conformance"`, "null", "not an object"},
	}
	for _, p := range probes {
		m, err := c.rawAnswer(s, p.line+"\n")
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidRequest, p.id); err != nil {
			return failf("%s (%s): %v", p.line, p.why, err)
		}
	}
	return c.ping(s, "after invalid requests")
}

func checkBatch(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	batch := `[{"jsonrpc":"2.0","id":21,"method":"conformance/ping"},{"jsonrpc":"2.0","id":22,"method":"conformance/ping"}]` + "\n"
	if err := s.sendRaw([]byte(batch)); err != nil {
		return err
	}
	if err := c.ping(s, "after a batch"); err != nil {
		return err
	}
	if err := c.ping(s, "after a batch"); err != nil { // room for late answers
		return err
	}
	got := s.takeInbox()
	if len(got) != 1 {
		var d []string
		for _, m := range got {
			d = append(d, printable(m.Raw))
		}
		return failf("want exactly one answer to a batch, got %d: %s", len(got), strings.Join(d, " | "))
	}
	return expectCode(got[0], protocol.CodeInvalidRequest, "null")
}

func checkInvalidParams(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	probes := []struct {
		method string
		params string
		why    string
	}{
		{protocol.MethodPrepare, `{"type":"builder","name":"conformance","configs":[],"conformance_unknown":true}`, "an unknown member"},
		{protocol.MethodPrepare, `{"type":5,"name":"conformance","configs":[]}`, `"type" is a number`},
		{protocol.MethodBuilderRun, `{"instance":["i1"]}`, `"instance" is an array`},
	}
	for _, p := range probes {
		m, err := s.call(c.ctx, p.method, json.RawMessage(p.params))
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidParams, ""); err != nil {
			return failf("%s with %s (%s): %v", p.method, p.params, p.why, err)
		}
	}
	return nil
}

func checkNotificationUnanswered(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	notes := []string{
		`{"jsonrpc":"2.0","method":"conformance/notification","params":{}}`,
		`{"jsonrpc":"2.0","method":"component/prepare","params":{"type":"builder","name":"conformance","configs":[]}}`,
		`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":12345}}`,
	}
	if err := s.sendRaw([]byte(strings.Join(notes, "\n") + "\n")); err != nil {
		return err
	}
	if err := c.ping(s, "after notifications"); err != nil {
		return err
	}
	if err := c.ping(s, "after notifications"); err != nil { // room for late answers
		return err
	}
	if got := s.takeInbox(); len(got) > 0 {
		return failf("a notification was answered: %s", printable(got[0].Raw))
	}
	return nil
}

func checkIDTypes(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	for _, id := range []string{`"1"`, `1`, `0`, `9007199254740993`, `9223372036854775807`, `"é \"x\""`, `""`} {
		m, err := c.rawAnswer(s, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"conformance/ping"}`+"\n", id))
		if err != nil {
			return err
		}
		if !idEqual(m.ID, json.RawMessage(id)) {
			return failf("request with id %s was answered with id %s", id, printable(m.ID))
		}
	}
	return nil
}

func checkInvalidID(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	// SPEC §4.1 step 4: a refused number is echoed byte for byte; null
	// and other types are answered with a null id.
	probes := []struct{ id, echo string }{
		{`null`, "null"}, {`-1`, "-1"}, {`1.5`, "1.5"}, {`1e3`, "1e3"}, {`9223372036854775808`, "9223372036854775808"},
		{`true`, "null"}, {`{}`, "null"}, {`[1]`, "null"},
	}
	for _, p := range probes {
		m, err := c.rawAnswer(s, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"conformance/ping"}`+"\n", p.id))
		if err != nil {
			return err
		}
		if err := expectCode(m, protocol.CodeInvalidRequest, p.echo); err != nil {
			return failf("request with id %s: %v", p.id, err)
		}
	}
	return c.ping(s, "after invalid ids")
}

func checkLineEndings(c *checkCtx) error {
	s, _, err := c.ready()
	if err != nil {
		return err
	}
	if err := s.sendRaw([]byte("\n\r\n" + `{"jsonrpc":"2.0","id":31,"method":"conformance/ping"}` + "\r\n\n")); err != nil {
		return err
	}
	m, err := s.nextInbox(c.ctx)
	if err != nil {
		return failf("no answer to a request ending in \\r\\n: %v", err)
	}
	if m.idKey() != "31" {
		return failf("want the answer to request 31 (ending in \\r\\n) first, got %s", m.describe())
	}
	if err := c.ping(s, "after empty lines"); err != nil {
		return err
	}
	if got := s.takeInbox(); len(got) > 0 {
		return failf("an empty line was answered: %s", printable(got[0].Raw))
	}
	return nil
}

// maxOversizeProbe is the largest limit the oversize check will exceed.
const maxOversizeProbe = 64 << 20

func checkOversize(c *checkCtx) error {
	s, res, err := c.ready()
	if err != nil {
		return err
	}
	limit := res.Limits.MaxMessageSize
	if limit <= 0 {
		limit = protocol.DefaultMaxMessageSize
	}
	if limit > maxOversizeProbe {
		return skipf("declared limit %d is larger than this runner sends (%d)", limit, maxOversizeProbe)
	}
	head := `{"jsonrpc":"2.0","id":41,"method":"conformance/ping","params":{"pad":"`
	tail := `"}}`
	pad := int(limit) + 1 - len(head) - len(tail)
	line := head + strings.Repeat("x", pad) + tail + "\n"
	m, err := c.rawAnswer(s, line)
	if err != nil {
		return err
	}
	if err := expectCode(m, protocol.CodeMessageTooLarge, "null"); err != nil {
		return failf("line of %d bytes (declared limit %d): %v", len(line)-1, limit, err)
	}
	return c.ping(s, "after an over-size line")
}

// idEqual reports whether two ids are the same JSON value of the same type:
// strings compare by value (escapes may differ), numbers by their digits.
func idEqual(a, b json.RawMessage) bool {
	if len(a) > 0 && len(b) > 0 && a[0] == '"' && b[0] == '"' {
		var x, y string
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && x == y
	}
	return idKey(a) == idKey(b)
}
