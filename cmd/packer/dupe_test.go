package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// dupeBuilder is a builder written against the wire, not pluginkit, that
// answers builder/run twice with the same id: the first answer is a
// success, the second breaks the protocol (issue #11 item 15).
func dupeBuilder() {
	if os.Getenv("PACKER_PLUGIN_MAGIC_COOKIE") == "" {
		fmt.Fprintln(os.Stderr, "packer-builder-dupe: a test plugin started by packer")
		os.Exit(1)
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 8<<20)
	answer := func(id json.RawMessage, result string) string {
		return `{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + result + "}\n"
	}
	for sc.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.ID == nil {
			continue
		}
		switch m.Method {
		case "initialize":
			os.Stdout.WriteString(answer(m.ID, `{"protocol_version":1,"plugin":{"name":"packer-builder-dupe","version":"1"},"components":[{"type":"builder","name":"dupe","config_schema":{"type":"object"}}],"limits":{"max_message_size":4194304},"capabilities":{"cancel":false}}`))
		case "component/prepare":
			os.Stdout.WriteString(answer(m.ID, `{"instance":"i1","warnings":[]}`))
		case "builder/run":
			run := answer(m.ID, `{"artifact":null}`)
			os.Stdout.WriteString(run + run) // one write: the duplicate follows at once
		default:
			os.Stdout.WriteString(answer(m.ID, "null"))
		}
	}
	os.Exit(0)
}
