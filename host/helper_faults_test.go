//go:build unix

package host_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Environment of the sized helper modes.
const (
	hugeLineEnv  = "HOST_TEST_HUGE_LINE_BYTES" // huge-line-run: length of the line
	floodEnv     = "HOST_TEST_FLOOD_BYTES"     // flood-stderr-sized: bytes of short lines
	longLineEnv  = "HOST_TEST_LONG_LINE_BYTES" // flood-stderr-sized: bytes of the one long line
	floodLineLen = 1024                        // each short line, "\n" included
)

func envInt(name string) int64 {
	n, err := strconv.ParseInt(os.Getenv(name), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %s: %v\n", name, err)
		os.Exit(2)
	}
	return n
}

// lateHandle is the communicator handle of the last provision call, which
// the late-callback mode uses after the call was answered.
var lateHandle string

// answer is a response the host sent to one of the helper's calls.
type answer struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *protocol.Error `json:"error"`
}

// callHost sends a request to the host and returns the answer's error code
// (0 for a result). Requests from the host that arrive meanwhile are passed
// to serve.
func callHost(out *rawOut, sc *bufio.Scanner, id, method string, params any, serve func(answer)) int64 {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	out.line(string(b))
	want, _ := json.Marshal(id)
	for sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			fmt.Fprintf(os.Stderr, "helper: bad line: %v\n", err)
			continue
		}
		if a.Method != "" {
			if serve != nil {
				serve(a)
			}
			continue
		}
		if !bytes.Equal(a.ID, want) {
			continue
		}
		if a.Error != nil {
			return a.Error.Code
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: stdin ended while waiting for an answer")
	os.Exit(1)
	return 0
}

func notifyHost(out *rawOut, method string, params any) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	out.line(string(b))
}

// faultPrepare handles component/prepare in the modes that need it and
// reports whether it answered.
func faultPrepare(mode string, m rawMsg, out *rawOut, sc *bufio.Scanner) bool {
	switch mode {
	case "exit-prepare":
		fmt.Fprintln(os.Stderr, "dying in prepare")
		os.Exit(3)
	case "late-callback":
		if lateHandle != "" {
			code := callHost(out, sc, "late1", protocol.MethodCommStart,
				protocol.CommStartParams{Communicator: lateHandle, Command: "true"}, nil)
			notifyHost(out, protocol.MethodUISay, protocol.UIMessageParams{Message: fmt.Sprintf("late communicator call answered %d", code)})
		}
	case "echo-secret-prepare":
		var p protocol.PrepareParams
		json.Unmarshal(m.Params, &p)
		var cfg struct{ Password string }
		if len(p.Configs) > 0 {
			json.Unmarshal(p.Configs[0], &cfg)
		}
		out.error(m.ID, protocol.ErrConfigInvalid.WithMessage("password %s is too short", cfg.Password).WithData(protocol.ConfigInvalidData{
			Errors: []protocol.ConfigError{{Path: "/password", Message: "too short: " + cfg.Password}},
		}))
		return true
	}
	return false
}

// faultRun handles builder/run in the modes of this file and reports
// whether it did.
func faultRun(mode string, m rawMsg, out *rawOut, sc *bufio.Scanner) bool {
	ok := func() {
		out.result(m.ID, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: "a", Files: []string{}, String: "ok"}})
	}
	switch mode {
	case "huge-line-run":
		n := envInt(hugeLineEnv)
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		w.WriteString(`{"jsonrpc":"2.0","method":"ui/say","params":{"message":"`)
		chunk := strings.Repeat("x", 1<<20)
		for n > 0 {
			k := min(n, int64(len(chunk)))
			w.WriteString(chunk[:k])
			n -= k
		}
		w.WriteString("\"}}\n")
		w.Flush()
		time.Sleep(time.Hour) // the host must not wait for an answer
	case "no-newline-run":
		// 10 MB of one line, no newline, then silence: issue #11 item 1.
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		w.WriteString(`{"jsonrpc":"2.0","method":"ui/say","params":{"message":"`)
		w.WriteString(strings.Repeat("x", 10<<20))
		w.Flush()
		time.Sleep(time.Hour) // neither a newline nor an exit: the host must not wait
	case "close-stdout-run":
		os.Stdout.Close()
		fmt.Fprintln(os.Stderr, "closed stdout, still running")
		time.Sleep(time.Hour)
	case "duplicate-id", "duplicate-at-shutdown":
		// The artifact's id is the request's, for the test to find it
		// named in the error. duplicate-at-shutdown answers once more
		// before it answers shutdown (helperMain).
		n := 2
		if mode == "duplicate-at-shutdown" {
			n = 1
		}
		for range n {
			out.result(m.ID, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: string(m.ID), Files: []string{}, String: "ok"}})
		}
		if mode == "duplicate-id" {
			// Neither end of input nor anything else ends it: the host
			// must kill it for the violation.
			time.Sleep(time.Hour)
		}
	case "invalid-utf8-run":
		out.line("{\"jsonrpc\":\"2.0\",\"method\":\"ui/say\",\"params\":{\"message\":\"\xff\xfe\"}}")
	case "bad-callbacks":
		var codes []string
		for i, c := range []struct {
			method string
			params any
		}{
			{"nope/nothing", map[string]any{}},
			{protocol.MethodUIAsk, map[string]any{"bogus": 1}},
			{protocol.MethodUISay, map[string]any{"message": 5}},
			{protocol.MethodHookRun, map[string]any{"name": 5}},
			{protocol.MethodCommUpload, protocol.CommUploadParams{Communicator: "c99", Path: "x", Source: "s1", Size: -1}},
		} {
			codes = append(codes, strconv.FormatInt(callHost(out, sc, fmt.Sprintf("cb%d", i), c.method, c.params, nil), 10))
		}
		// A notification with bad params has no answer; the host logs it.
		notifyHost(out, protocol.MethodUIMessage, map[string]any{"text": "wrong member"})
		out.result(m.ID, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: "codes", Files: []string{}, String: strings.Join(codes, ",")}})
	case "late-say":
		ok()
		notifyHost(out, protocol.MethodUISay, protocol.UIMessageParams{Message: "said after the answer"})
	case "flood-stderr-sized":
		floodBytes, longBytes := envInt(floodEnv), envInt(longLineEnv)
		w := bufio.NewWriterSize(os.Stderr, 64<<10)
		pad := strings.Repeat("y", floodLineLen-11) // "%09d " + pad + "\n"
		long := strings.Repeat("z", 1<<20)
		for i := range floodBytes / floodLineLen {
			fmt.Fprintf(w, "%09d %s\n", i, pad)
			if i == 10 {
				for n := longBytes; n > 0; n -= int64(len(long)) {
					w.WriteString(long[:min(n, int64(len(long)))])
				}
				w.WriteString("\n")
			}
		}
		w.Flush()
		ok()
	default:
		return false
	}
	return true
}

// faultProvision handles provisioner/provision.
func faultProvision(mode string, m rawMsg, out *rawOut, sc *bufio.Scanner) {
	var p protocol.ProvisionParams
	json.Unmarshal(m.Params, &p)
	switch mode {
	case "crash-upload":
		reads := 0
		callHost(out, sc, "up1", protocol.MethodCommUpload,
			protocol.CommUploadParams{Communicator: p.Communicator, Path: "/dst", Source: "s1", Mode: 0o644, Size: -1},
			func(a answer) {
				if a.Method != protocol.MethodStreamRead {
					return
				}
				reads++
				if reads == 1 {
					out.result(a.ID, protocol.StreamReadResult{Data: []byte("first chunk "), EOF: false})
					return
				}
				fmt.Fprintln(os.Stderr, "dying mid-upload")
				os.Exit(5)
			})
		out.result(m.ID, nil) // not reached
	case "late-callback":
		lateHandle = p.Communicator
		out.result(m.ID, nil)
		notifyHost(out, protocol.MethodUISay, protocol.UIMessageParams{Message: "said after the answer"})
	default:
		out.result(m.ID, nil)
	}
}
