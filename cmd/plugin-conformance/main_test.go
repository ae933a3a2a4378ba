package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain registers two commands for the scripts: plugin-conformance
// itself, and fake-plugin, a tiny plugin that answers initialize and then
// breaks the parse-error rule (it answers -32600 where -32700 is due).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"plugin-conformance": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
		"fake-plugin":        fakePlugin,
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata"})
}

// fakePlugin speaks just enough of the protocol for -run handshake/initialize
// and framing/parse-error: it answers every line in order, without a real
// JSON parser, so that the scripts need no other binary.
func fakePlugin() {
	if os.Getenv("PACKER_PLUGIN_MAGIC_COOKIE") == "" {
		fmt.Fprintln(os.Stderr, "fake-plugin: a packer plugin; packer starts it")
		os.Exit(1)
	}
	buf := make([]byte, 1<<20)
	var line []byte
	for {
		n, err := os.Stdin.Read(buf)
		for _, b := range buf[:n] {
			if b != '\n' {
				line = append(line, b)
				continue
			}
			answer(line)
			line = line[:0]
		}
		if err != nil {
			os.Exit(0)
		}
	}
}

func answer(line []byte) {
	s := string(line)
	switch {
	case contains(s, `"method":"initialize"`):
		fmt.Printf(`{"jsonrpc":"2.0","id":%s,"result":{"protocol_version":1,"plugin":{"name":"fake","version":"1"},"components":[],"limits":{"max_message_size":4194304},"capabilities":{"cancel":false}}}`+"\n", idOf(s))
	case contains(s, `"method":"conformance/ping"`):
		fmt.Printf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`+"\n", idOf(s))
	default: // wrong: bad JSON deserves -32700
		fmt.Println(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}}`)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// idOf returns the raw id of a request the runner sent ("id":N or "id":"x").
func idOf(s string) string {
	const key = `"id":`
	for i := 0; i+len(key) <= len(s); i++ {
		if s[i:i+len(key)] != key {
			continue
		}
		j := i + len(key)
		k := j
		if s[k] == '"' {
			k++
			for s[k] != '"' {
				k++
			}
			return s[j : k+1]
		}
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		return s[j:k]
	}
	return "null"
}
