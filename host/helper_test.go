//go:build unix

package host_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// helperCmd returns a command that re-runs the test binary as a plugin that
// misbehaves in the given mode.
func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	// A race-enabled binary sleeps 1s at exit unless told not to.
	cmd.Env = append(os.Environ(), helperModeEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	return cmd
}

// TestHelperProcess is not a test: it is the plugin the other tests start.
// It speaks the protocol with raw lines, so that each mode can break exactly
// one rule.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperModeEnv)
	if mode == "" {
		t.Skip("only run as a helper process")
	}
	os.Exit(helperMain(mode))
}

type rawMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// rawOut writes whole lines to stdout, one at a time.
type rawOut struct{ mu sync.Mutex }

func (o *rawOut) line(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	os.Stdout.WriteString(s + "\n")
}

func (o *rawOut) result(id json.RawMessage, v any) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": v})
	o.line(string(b))
}

func (o *rawOut) error(id json.RawMessage, e *protocol.Error) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
	o.line(string(b))
}

const floodLines = 1000
const floodLongLine = 10 << 20

func helperMain(mode string) int {
	if os.Getenv(protocol.EnvMagicCookie) != protocol.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "helper: no magic cookie")
		return 1
	}
	fmt.Fprintf(os.Stderr, "helper %s starting\n", mode)
	switch mode {
	case "crash-before-handshake":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		return 3
	case "secret-stderr":
		writeSecretStderr()
		return 3
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	}
	out := &rawOut{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var runID json.RawMessage
	for sc.Scan() {
		var m rawMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			fmt.Fprintf(os.Stderr, "helper: bad line: %v\n", err)
			continue
		}
		switch m.Method {
		case protocol.MethodInitialize:
			var p protocol.InitializeParams
			json.Unmarshal(m.Params, &p)
			switch {
			case mode == "no-handshake":
				continue
			case mode == "version-mismatch":
				out.error(m.ID, protocol.ErrUnsupportedVersion.WithData(protocol.UnsupportedVersionData{Supported: []int{3}}))
				continue
			case !slices.Contains(p.ProtocolVersions, 1):
				out.error(m.ID, protocol.ErrUnsupportedVersion.WithData(protocol.UnsupportedVersionData{Supported: []int{1}}))
				continue
			}
			res := protocol.InitializeResult{
				ProtocolVersion: 1,
				Plugin:          protocol.Peer{Name: "helper", Version: "0"},
				Components: []protocol.Component{
					{Type: protocol.TypeBuilder, Name: "x", ConfigSchema: json.RawMessage(`{"type":"object"}`)},
					{Type: protocol.TypeProvisioner, Name: "p", ConfigSchema: json.RawMessage(`{"type":"object"}`)},
				},
				Limits:       protocol.Limits{MaxMessageSize: protocol.DefaultMaxMessageSize},
				Capabilities: protocol.PluginCapabilities{Cancel: true},
			}
			if mode == "bad-handshake" {
				res.ProtocolVersion = 9
				res.Components = append(res.Components, res.Components[0])
			}
			out.result(m.ID, res)
		case protocol.MethodPrepare:
			if faultPrepare(mode, m, out, sc) || hostilePrepare(mode, out, sc) {
				continue
			}
			out.result(m.ID, protocol.PrepareResult{Instance: "i1", Warnings: []string{}})
		case protocol.MethodBuilderRun:
			runID = m.ID
			if !faultRun(mode, m, out, sc) && !hostileRun(mode, m, out, sc) {
				helperRun(mode, m.ID, out)
			}
		case protocol.MethodProvision:
			faultProvision(mode, m, out, sc)
		case protocol.MethodCancelRequest:
			if mode == "cancellable" {
				out.error(runID, protocol.ErrCancelled)
			}
		case protocol.MethodShutdown:
			switch mode {
			case "ignore-term":
				continue
			case "late-answer", "duplicate-at-shutdown":
				// The run answered at last (its cancel ignored) or once
				// more, before shutdown: the host reads it while closing.
				out.result(runID, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: string(runID), Files: []string{}, String: "late"}})
			}
			out.result(m.ID, nil)
			return 0
		}
	}
	if mode == "ignore-term" {
		time.Sleep(time.Hour)
	}
	return 0
}

func helperRun(mode string, id json.RawMessage, out *rawOut) {
	switch mode {
	case "panic-run":
		// Off the test goroutine, so that the testing package cannot
		// recover it: the process dies as a real plugin would.
		go panic("helper panics during run")
		time.Sleep(time.Hour)
	case "sigkill-run":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
	case "exit-run":
		fmt.Fprintln(os.Stderr, "exiting mid-call")
		os.Exit(3)
	case "garbage-run":
		out.line("this is not json")
	case "grandchild":
		cmd := exec.Command("sh", "-c", "sleep 60")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		}
		fmt.Fprintf(os.Stderr, "grandchild %d keeps stdout open\n", cmd.Process.Pid)
		os.Exit(4)
	case "unknown-id":
		out.result(json.RawMessage("999"), nil)
	case "result-and-error":
		out.line(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":null,"error":{"code":-32603,"message":"both"}}`, id))
	case "hang", "ignore-cancel", "cancellable", "ignore-term", "late-answer":
		// no answer
	case "flood-stderr":
		w := bufio.NewWriterSize(os.Stderr, 64<<10)
		w.WriteString(strings.Repeat("x", floodLongLine) + "\n")
		for i := range floodLines {
			fmt.Fprintf(w, "line %d\n", i)
		}
		w.Flush()
		out.result(id, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: "flood", Files: []string{}, String: "flood"}})
	default:
		out.result(id, protocol.BuilderRunResult{Artifact: &protocol.Artifact{BuilderID: "helper", ID: "a", Files: []string{}, String: "ok"}})
	}
}
