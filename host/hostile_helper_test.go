//go:build unix

package host_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/packer-stdio/packer/protocol"
)

// Helper modes of the hostile-plugin tests (hostile_test.go), issue 11.
const (
	asksEnv  = "HOST_TEST_ASKS"  // ask-flood: how many ui/ask to send at once
	hooksEnv = "HOST_TEST_HOOKS" // hook-flood: how many hook/run to send at once
)

// lateHookRan is set once the late-hook mode answered its builder/run.
var lateHookRan bool

// hostilePrepare handles component/prepare in this file's modes, and
// reports whether the caller must not answer it as usual.
func hostilePrepare(mode string, out *rawOut, sc *bufio.Scanner) bool {
	switch mode {
	case "hang-prepare":
		fmt.Fprintln(os.Stderr, "preparing forever")
		return true // never answered
	case "late-hook":
	default:
		return false
	}
	code := callHost(out, sc, "hook-late", protocol.MethodHookRun,
		protocol.HookRunParams{Name: protocol.HookProvision, Data: map[string]any{}}, nil)
	when := "before"
	if lateHookRan {
		when = "after"
	}
	notifyHost(out, protocol.MethodUISay, protocol.UIMessageParams{Message: fmt.Sprintf("hook/run %s builder/run: %d", when, code)})
	return false
}

// hostileRun handles builder/run in this file's modes and reports whether
// it did.
func hostileRun(mode string, m rawMsg, out *rawOut, sc *bufio.Scanner) bool {
	answer := func(s string) {
		out.result(m.ID, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: "a", Files: []string{}, String: s}})
	}
	switch mode {
	case "late-hook":
		answer("ok")
		lateHookRan = true
	case "hook-flood":
		n := int(envInt(hooksEnv))
		codes := flood(out, sc, n, func(i int) (string, any) {
			return protocol.MethodHookRun, protocol.HookRunParams{Name: protocol.HookProvision, Data: map[string]any{}}
		}, nil)
		answer(fmt.Sprintf("ok=%d busy=%d other=%d", codes[0], codes[protocol.CodeTooManyRequests], n-codes[0]-codes[protocol.CodeTooManyRequests]))
	case "ask-flood":
		n := int(envInt(asksEnv))
		held := 0
		codes := flood(out, sc, n, func(i int) (string, any) {
			return protocol.MethodUIAsk, protocol.UIAskParams{Query: "question " + strconv.Itoa(i)}
		}, func(answered int) bool {
			// The host holds the questions it did not refuse: once
			// every other one is answered, say so, then cancel them.
			if answered != n-maxCallbacks() || held != 0 {
				return false
			}
			held = n - answered
			notifyHost(out, protocol.MethodUISay, protocol.UIMessageParams{Message: fmt.Sprintf("holding %d", held)})
			for i := range n {
				notifyHost(out, protocol.MethodCancelRequest, map[string]any{"id": "f" + strconv.Itoa(i)})
			}
			return true
		})
		answer(fmt.Sprintf("busy=%d cancelled=%d other=%d", codes[protocol.CodeTooManyRequests], codes[protocol.CodeCancelled],
			n-codes[protocol.CodeTooManyRequests]-codes[protocol.CodeCancelled]))
	default:
		return false
	}
	return true
}

// maxCallbacks is the host's bound the ask-flood test runs with.
func maxCallbacks() int { return int(envInt("HOST_TEST_MAX_CALLBACKS")) }

// flood sends n requests at once from a goroutine (their ids are "f0",
// "f1", ...) while reading the answers, and returns how many got each error
// code (0 for a result). progress, if not nil, is called after each answer
// with the number answered so far.
func flood(out *rawOut, sc *bufio.Scanner, n int, req func(i int) (string, any), progress func(answered int) bool) map[int64]int {
	go func() {
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		for i := range n {
			method, params := req(i)
			b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "f" + strconv.Itoa(i), "method": method, "params": params})
			out.mu.Lock()
			w.Write(append(b, '\n'))
			if w.Buffered() > 32<<10 || i == n-1 {
				w.Flush()
			}
			out.mu.Unlock()
		}
	}()
	codes := map[int64]int{}
	answered := 0
	for answered < n && sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || a.Method != "" {
			continue
		}
		answered++
		if a.Error != nil {
			codes[a.Error.Code]++
		} else {
			codes[0]++
		}
		if progress != nil {
			progress(answered)
		}
	}
	return codes
}
