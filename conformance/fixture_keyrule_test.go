package conformance_test

import (
	"encoding/json"

	"github.com/packer-stdio/packer/protocol"
)

// keyRuleInCodeSchema is the allOf of the fixture's config_schema in mode
// "key-rule-in-code": the key rule "exactly one of message and wait"
// (SPEC §6.1), which the fixture then checks in code, as plugins did before
// key rules, breaking config/key-rules twice: it reports the rule at ""
// rather than at the keys, and only when both keys are set.
var keyRuleInCodeSchema = []any{
	map[string]any{"oneOf": []any{
		map[string]any{"required": []any{"message"}, "properties": map[string]any{"message": map[string]any{"minLength": 1}}},
		map[string]any{"required": []any{"wait"}, "properties": map[string]any{"wait": map[string]any{"minLength": 1}}},
	}},
}

// keyRuleInCode is the fixture's own check of that rule on the merged
// configuration.
func keyRuleInCode(merged map[string]json.RawMessage) []protocol.ConfigError {
	set := func(k string) bool {
		var s string
		return json.Unmarshal(merged[k], &s) == nil && s != ""
	}
	if set("message") && set("wait") {
		return []protocol.ConfigError{{Message: "only one of message and wait may be set"}}
	}
	return nil
}
