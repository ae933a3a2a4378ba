package conformance

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/packer-stdio/packer/protocol"
)

var sessionChecks = []Check{
	{
		ID: "stdout/purity", Section: "§3.3", Level: Must,
		Title: "stdout carries nothing but JSON-RPC 2.0 lines, through a whole session",
		run:   checkPurity,
	},
	{
		ID: "schema/messages", Section: "§1.3", Level: Must,
		Title: "every message the plugin sends validates against the JSON Schemas in schema/",
		run:   checkSchemaMessages,
	},
	{
		ID: "stderr/logs-only", Section: "§3.4", Level: Should,
		Title: "stderr carries UTF-8 log text, never protocol messages",
		run:   checkStderr,
	},
}

// exercise runs a whole session the way a host would: handshake, one bad
// line, a ping, prepare and run of every component that prepares, then
// shutdown and exit. Only a failed launch or handshake is an error: the
// checks that use it judge what was exchanged, not whether each step
// worked (other checks do that).
func (c *checkCtx) exercise() (*session, error) {
	s, res, err := c.ready()
	if err != nil {
		return s, err
	}
	if err := s.sendRaw([]byte("{conformance: not json}\n")); err != nil {
		return s, nil
	}
	if err := c.ping(s, "after a bad line"); err != nil {
		c.tr.notef("%v", err)
	}
	for _, comp := range res.Components {
		instance, err := c.prepare(s, comp)
		var skip *skipError
		if errors.As(err, &skip) {
			continue
		}
		if err != nil {
			c.tr.notef("%v", err)
			continue
		}
		if err := c.runComponent(s, comp, instance); err != nil {
			c.tr.notef("%v", err)
		}
	}
	if err := c.shutdown(s); err != nil {
		c.tr.notef("%v", err)
	}
	if _, ok := s.waitExit(c.ctx, exitBound); !ok {
		c.tr.notef("plugin still running %v after shutdown", exitBound)
	}
	s.kill()
	return s, nil
}

func checkPurity(c *checkCtx) error {
	s, err := c.exercise()
	if err != nil {
		return err
	}
	if v := s.violationsSnapshot(); len(v) > 0 {
		return failf("%d stdout line(s) are not protocol messages; first: %s", len(v), v[0])
	}
	return nil
}

func checkSchemaMessages(c *checkCtx) error {
	v, err := protocolValidator()
	if err != nil {
		return fmt.Errorf("runner: loading the protocol schemas: %w", err)
	}
	s, err := c.exercise()
	if err != nil {
		return err
	}
	msgs, sent := s.receivedSnapshot()
	var bad []string
	for _, m := range msgs {
		if err := v.checkMessage(m, sent); err != nil {
			bad = append(bad, fmt.Sprintf("%v in %s", err, printable(m.Raw)))
		}
	}
	if len(bad) > 0 {
		return failf("%d of %d messages do not validate; first: %s", len(bad), len(msgs), bad[0])
	}
	return nil
}

func checkStderr(c *checkCtx) error {
	s, err := c.exercise()
	if err != nil {
		return err
	}
	for _, line := range s.stderrSnapshot() {
		if !utf8.Valid(line) {
			return failf("stderr line is not UTF-8: %s", printable(line))
		}
		if m, err := parseMessage(line); err == nil {
			return failf("stderr carries a protocol message (%s belongs on stdout): %s", describeKind(m), printable(line))
		}
	}
	return nil
}

func describeKind(m *message) string {
	switch {
	case m.isResponse():
		return "a response"
	case m.isRequest():
		return "a " + m.method + " request"
	}
	if m.method == protocol.MethodCancelRequest {
		return "a cancellation"
	}
	return "a " + m.method + " notification"
}
