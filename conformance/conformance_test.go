package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packer-stdio/packer/conformance"
)

func TestMain(m *testing.M) {
	conformance.MaybeServeScriptedPlugin()
	if mode, ok := os.LookupEnv(fixtureEnv); ok {
		runFixture(mode)
		return
	}
	if mode, ok := os.LookupEnv(fixtureHostEnv); ok {
		runFixtureHost(mode)
		return
	}
	// A watchdog that dumps every goroutine instead of hanging CI.
	debug.SetTraceback("all")
	watchdog := time.AfterFunc(8*time.Minute, func() { panic("conformance tests hang") })
	// Fixture plugins are killed at the end of each check, before their
	// deferred clean-ups run: their temporary files go in a directory
	// removed here.
	tmp, err := os.MkdirTemp("", "conformance-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		watchdog.Stop()
		os.RemoveAll(tmp)
	}))
}

// dsSkips are the checks the data source fixtures cannot judge: their
// builder runs no hook, so there is no communicator of a builder's to call.
const dsSkips = "hook/unsupported,hook/communicator,concurrency/in-flight,streams/finished-before-answer,streams/non-canonical-accepted,streams/credit-returned,streams/stops-after-cancel"

// fixtureCases pairs each fixture mode with the one check it must fail.
var fixtureCases = []struct {
	mode   string
	breaks string // the only check that fails; "" for none
	// also lists checks that the same mistake necessarily breaks too.
	also   []string
	reason string
	skips  string // checks (comma-separated) that cannot judge this fixture: they skip, or their result depends on timing
	// run, when set, limits the run to the checks it matches: those that
	// can see what the mode changes at all.
	run string
}{
	{mode: "baseline"},
	// The data source fixtures' builder runs no hook: the checks that need
	// one skip.
	{mode: "datasource-baseline", reason: "a pluginkit plugin with a data source", skips: dsSkips},
	{mode: "datasource-no-output-schema", breaks: "handshake/output-schema", skips: dsSkips},
	{mode: "datasource-bad-output", breaks: "run/datasource", reason: `"count": "three" for an integer`, skips: dsSkips},
	{mode: "serves-without-cookie", breaks: "launch/no-cookie", reason: "waits for stdin instead of exiting"},
	{mode: "bad-initialize", breaks: "handshake/initialize", reason: "lists the builder twice"},
	{mode: "any-version", breaks: "handshake/unsupported-version", reason: "accepts any offered version"},
	// Its early ui/say may reach the runner only after the 300 ms window on a
	// loaded machine; handshake/silent-until-initialized then counts it too.
	{mode: "talks-before-initialize", breaks: "handshake/silent-before-initialize", reason: "sends ui/say before reading initialize", skips: "handshake/silent-until-initialized"},
	{mode: "no-init-guard", breaks: "handshake/before-initialize"},
	{mode: "reinitialize", breaks: "handshake/second-initialize"},
	{mode: "parse-error-wrong-code", breaks: "framing/parse-error", reason: "answers -32600 to bad JSON"},
	{mode: "utf8-wrong-code", breaks: "framing/invalid-utf8", reason: "answers -32600 to bad UTF-8"},
	{mode: "invalid-request-null-id", breaks: "framing/invalid-request", reason: "does not echo the id it could read"},
	{mode: "batch-split", breaks: "framing/batch", reason: "runs the batch's requests one by one"},
	{mode: "unknown-method-internal", breaks: "framing/unknown-method", reason: "answers -32603"},
	{mode: "lenient-params", breaks: "framing/invalid-params", reason: "ignores unknown members"},
	{mode: "answers-notifications", breaks: "framing/notification-unanswered"},
	{mode: "string-id-as-number", breaks: "framing/id-types", reason: `answers id "1" with 1`},
	{mode: "negative-id-accepted", breaks: "framing/invalid-id", reason: "treats id -1 as 1"},
	{mode: "crlf-rejected", breaks: "framing/line-endings"},
	{mode: "too-large-wrong-code", breaks: "framing/oversize", reason: "answers -32600 instead of -32009"},
	{mode: "invalid-config-schema", breaks: "config/schema-valid", reason: `"type": 12 in a property`},
	{mode: "no-packer-keys", breaks: "config/packer-keys"},
	{mode: "prepare-internal-error", breaks: "prepare/empty-config", reason: "post-processor prepare answers -32603"},
	{mode: "no-type-check", breaks: "prepare/wrong-type", reason: "accepts any config"},
	{mode: "unknown-component-wrong-code", breaks: "prepare/unknown-component", reason: "answers -32003"},
	{mode: "key-rule-in-code", breaks: "config/key-rules", reason: "its schema says exactly one of message and wait; its code reports both set at \"\" and lets none set through"},
	{mode: "builder-fails", breaks: "run/builder", skips: "hook/unsupported"},
	{mode: "provisioner-fails", breaks: "run/provisioner"},
	{mode: "postprocessor-fails", breaks: "run/post-processor"},
	{mode: "unknown-handle-internal", breaks: "run/unknown-handle", reason: "answers -32603"},
	{mode: "ignores-cancel", breaks: "cancel/run", reason: "calls hook/run with a context that cancellation does not reach, so a held hook keeps the run busy"},
	{mode: "cancel-with-id-answered", breaks: "framing/notification-with-id", reason: "answers $/cancelRequest sent with an id with result null"},
	{mode: "lookups-first", breaks: "params/precedence", reason: "looks up versions, components and handles before checking the params' shape"},
	{mode: "talks-after-failed-initialize", breaks: "handshake/silent-until-initialized", reason: "sends ui/error after answering -32002"},
	{mode: "hook-unsupported-fails", breaks: "hook/unsupported", reason: "fails its run when hook/run gets -32011"},
	{mode: "lenient-shutdown", breaks: "shutdown/params", reason: "accepts shutdown with params []"},
	{mode: "initialize-after-shutdown-invalid", breaks: "shutdown/initialize-after", reason: "answers -32600 (already initialized) instead of -32010"},
	{mode: "comm-no-dirs", breaks: "hook/communicator", reason: "its communicator answers uploadDir and downloadDir with -32011"},
	{mode: "serial-handlers", breaks: "concurrency/in-flight", reason: "runs one builder/run at a time"},
	{mode: "dies-on-sigterm", breaks: "signal/sigterm", reason: "has no SIGTERM handler: killed by the signal"},
	{mode: "shutdown-waits-eof", breaks: "shutdown/exit", reason: "exits only on stdin EOF"},
	{mode: "serves-after-shutdown", breaks: "shutdown/after", reason: "answers requests other than initialize normally for 1s after shutdown"},
	{mode: "ignores-eof", breaks: "eof/exit"},
	{mode: "stdout-garbage", breaks: "stdout/purity", reason: "prints a line of text on stdout during builder/run"},
	{mode: "bad-ui-params", breaks: "schema/messages", reason: `sends ui/say with "message": 42`},
	{mode: "stderr-protocol", breaks: "stderr/logs-only", reason: "copies its protocol lines to stderr"},
	// Version 2 streams (§7.5.2): each mode filters the plugin's input or
	// output so that one rule breaks where only its check looks. The
	// filters touch stream/* lines and the requests that offer streams
	// only, so they run the checks that move bytes through streams or
	// judge every line of a session (the others never see what changed:
	// running them too would only slow the suite).
	{mode: "ignores-credit", breaks: "streams/credit-respected", reason: "reads every stream/credit as 16 times its bytes", run: streamingChecks},
	{mode: "end-twice", breaks: "streams/end-once", reason: "writes every stream/end twice", run: streamingChecks},
	{mode: "answers-before-end", breaks: "streams/finished-before-answer", reason: "writes the stream/end of a host's sink after the answer to its request", run: streamingChecks},
	{mode: "empty-chunk", breaks: "streams/chunk-size", also: []string{"schema/messages"}, reason: "writes a stream/data of 0 bytes before every stream/end (stream-data.params.json's minLength forbids it too)", run: streamingChecks},
	{mode: "data-member-order", breaks: "streams/canonical-form", reason: `writes stream/data with "data" first`, run: streamingChecks},
	{mode: "data-before-credit", breaks: "streams/source-waits-for-credit", reason: "credits its own sources, so their data goes before the host's credit", run: streamingChecks},
	{mode: "credits-sink-early", breaks: "streams/sink-credit-after-data", reason: "credits each sink it offers, before the request that offers it", run: streamingChecks},
	{mode: "accepts-oversize", breaks: "streams/over-credit-cancelled", reason: "splits a chunk of more than 262144 bytes in two instead of cancelling", run: streamingChecks},
	{mode: "canonical-only", breaks: "streams/non-canonical-accepted", reason: "drops stream/data lines not in the canonical form", run: streamingChecks},
	{mode: "keeps-credit", breaks: "streams/credit-returned", reason: "grants each host source its first credit and never more", run: streamingChecks},
	{mode: "sends-after-cancel", breaks: "streams/stops-after-cancel", reason: "reads stream/cancel as a credit of 2^30 bytes: it answers at once, but sends its whole output after the cancel", run: streamingChecks},
}

// nonStreamChecks matches every check but the streams/* ones.
var nonStreamChecks = func() *regexp.Regexp {
	var ids []string
	for _, c := range conformance.Catalogue() {
		if !strings.HasPrefix(c.ID, "streams/") {
			ids = append(ids, regexp.QuoteMeta(c.ID))
		}
	}
	return regexp.MustCompile("^(" + strings.Join(ids, "|") + ")$")
}()

// streamingChecks are the checks that move bytes through streams (the
// provisioners' calls to the runner's communicator, the runner's calls to
// a builder's) or judge every line of a session.
const streamingChecks = `^(streams/.*|run/provisioner|hook/communicator|stdout/purity|schema/messages|stderr/logs-only)$`

func fixtureCommand(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}
}

// TestFixtures proves that every check can fail: each broken fixture fails
// exactly its check, and the baseline fails none and skips none. The runs
// mostly wait on processes, so several go at once, more than go test's
// -parallel default (GOMAXPROCS) would allow.
func TestFixtures(t *testing.T) {
	const concurrent = 6
	cmd := fixtureCommand(t)
	reports := make([]*conformance.Report, len(fixtureCases))
	errs := make([]error, len(fixtureCases))
	sem := make(chan struct{}, concurrent)
	var wg sync.WaitGroup
	for i, tc := range fixtureCases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := conformance.Config{
				Command: cmd,
				Env:     []string{fixtureEnv + "=" + tc.mode},
			}
			switch {
			case tc.run != "":
				cfg.Run = regexp.MustCompile(tc.run)
			case tc.mode != "baseline" && !strings.HasPrefix(tc.mode, "datasource-"):
				// The other modes break rules of version 1's days,
				// none of which a streams/* check judges: the stream
				// checks run against the baselines and the stream
				// modes, which keeps the suite within its watchdog
				// under -race on a loaded machine.
				cfg.Run = nonStreamChecks
			}
			reports[i], errs[i] = conformance.Run(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for i, tc := range fixtureCases {
		t.Run(tc.mode, func(t *testing.T) {
			rep, err := reports[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			var failed, skipped []string
			for _, r := range rep.Results {
				switch r.Status {
				case conformance.Fail:
					if r.ID == tc.breaks || slices.Contains(tc.also, r.ID) || !slices.Contains(strings.Split(tc.skips, ","), r.ID) {
						failed = append(failed, r.ID)
					}
				case conformance.Skip:
					if !slices.Contains(strings.Split(tc.skips, ","), r.ID) {
						skipped = append(skipped, r.ID)
					}
				}
			}
			var want []string
			if tc.breaks != "" {
				want = append([]string{tc.breaks}, tc.also...)
			}
			slices.Sort(want)
			slices.Sort(failed)
			if diff := cmp.Diff(want, failed); diff != "" || len(skipped) > 0 {
				var buf bytes.Buffer
				rep.WriteTable(&buf, false)
				t.Errorf("mode %s (%s): failed checks mismatch (-want +got):\n%s\nskipped: %v\n%s", tc.mode, tc.reason, diff, skipped, buf.String())
			}
		})
	}
}

// TestEveryCheckHasAFixture keeps the catalogue honest: a check that no
// fixture makes fail is not done.
func TestEveryCheckHasAFixture(t *testing.T) {
	broken := map[string]bool{}
	for _, tc := range fixtureCases {
		if broken[tc.breaks] && tc.breaks != "" {
			t.Errorf("two fixtures break %s", tc.breaks)
		}
		broken[tc.breaks] = true
	}
	ids := map[string]bool{}
	idPattern := regexp.MustCompile(`^[a-z0-9-]+/[a-z0-9-]+$`)
	for _, c := range conformance.Catalogue() {
		if ids[c.ID] {
			t.Errorf("duplicate check id %s", c.ID)
		}
		ids[c.ID] = true
		if !idPattern.MatchString(c.ID) {
			t.Errorf("check id %q is not area/rule", c.ID)
		}
		if !broken[c.ID] {
			t.Errorf("check %s has no fixture that makes it fail", c.ID)
		}
		if c.Level != conformance.Must && c.Level != conformance.Should {
			t.Errorf("check %s has level %q", c.ID, c.Level)
		}
		if !strings.HasPrefix(c.Section, "§") || c.Title == "" {
			t.Errorf("check %s: section %q, title %q", c.ID, c.Section, c.Title)
		}
	}
	for id := range broken {
		if id != "" && !ids[id] {
			t.Errorf("fixture breaks %s, which is not in the catalogue", id)
		}
	}
}

// TestExpectedFailures: a listed failure passes, a listed pass fails.
func TestExpectedFailures(t *testing.T) {
	list, err := conformance.ReadExpectFile(strings.NewReader("# known problems\nrun/builder  # fixed in 1.2\n\nframing/batch\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := conformance.Run(context.Background(), conformance.Config{
		Command:    fixtureCommand(t),
		Env:        []string{fixtureEnv + "=builder-fails"},
		Run:        regexp.MustCompile(`^(run/builder|framing/batch|eof/exit)$`),
		ExpectFail: list,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]conformance.Status{}
	for _, r := range rep.Results {
		got[r.ID] = r.Status
	}
	want := map[string]conformance.Status{
		"run/builder":   conformance.XFail,
		"framing/batch": conformance.XPass,
		"eof/exit":      conformance.Pass,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if !rep.MustFailed() {
		t.Error("MustFailed is false with an unexpected pass")
	}

	_, err = conformance.Run(context.Background(), conformance.Config{
		Command:    fixtureCommand(t),
		ExpectFail: map[string]bool{"no/such-check": true},
	})
	if err == nil {
		t.Error("an expected-failures list naming an unknown check was accepted")
	}
}

// TestReports checks the three output formats on one failing run.
func TestReports(t *testing.T) {
	rep, err := conformance.Run(context.Background(), conformance.Config{
		Command: fixtureCommand(t),
		Env:     []string{fixtureEnv + "=unknown-method-internal"},
		Run:     regexp.MustCompile(`^framing/(unknown-method|batch)$`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.MustFailed() {
		t.Fatal("MustFailed is false")
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"framing/unknown-method  MUST", "fail", "want error -32601",
		`← {"jsonrpc":"2.0","id":13,"error":{"code":-32603`,
		`→ {"jsonrpc":"2.0","id":13,"method":"conformance/no-such-method","params":{}}`,
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js, false); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Results []struct {
			ID         string
			Status     string
			Transcript []json.RawMessage
		}
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID, Status    string
		HasTranscript bool
	}
	var rows []row
	for _, r := range decoded.Results {
		rows = append(rows, row{r.ID, r.Status, len(r.Transcript) > 0})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	wantRows := []row{{"framing/batch", "pass", false}, {"framing/unknown-method", "fail", true}}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("JSON report (-want +got):\n%s", diff)
	}

	var junit bytes.Buffer
	if err := rep.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &suites); err != nil {
		t.Fatalf("JUnit output is not XML: %v\n%s", err, junit.String())
	}
	if len(suites.Suites) != 1 || suites.Suites[0].Tests != 2 || suites.Suites[0].Failures != 1 {
		t.Fatalf("JUnit suites: %+v", suites)
	}
	for _, c := range suites.Suites[0].Cases {
		if (c.Failure != nil) != (c.Name == "framing/unknown-method") {
			t.Errorf("JUnit case %s: failure %+v", c.Name, c.Failure)
		}
	}
}

// TestTimeoutKillsPlugin: a check that outlives its timeout fails, and
// the plugin's process group is killed.
func TestTimeoutKillsPlugin(t *testing.T) {
	rep, err := conformance.Run(context.Background(), conformance.Config{
		Command: fixtureCommand(t),
		Env:     []string{fixtureEnv + "=ignores-cancel"},
		Run:     regexp.MustCompile(`^cancel/run$`),
		Timeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Status != conformance.Fail || !strings.Contains(r.Reason, "timed out") {
		t.Errorf("got %s %q, want a timeout failure", r.Status, r.Reason)
	}
	killed := false
	for _, e := range r.Transcript {
		killed = killed || e.Text == "killed the process group"
	}
	if !killed {
		t.Errorf("transcript does not show the kill: %v", r.Transcript)
	}
}

// TestExamplePlugin runs every check against the real example plugin built
// on pluginkit: every MUST check passes.
func TestExamplePlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example plugin")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "packer-plugin-example")
	build := exec.Command("go", "build", "-o", bin, "../examples/plugins/packer-plugin-example")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	cfg, _ := json.Marshal(map[string]any{"output": out, "content": "conformance", "wait": "1s"})
	ppCfg, _ := json.Marshal(map[string]any{"output": filepath.Join(dir, "CHECKSUM")})
	rep, err := conformance.Run(context.Background(), conformance.Config{
		Command: []string{bin},
		Configs: map[string]json.RawMessage{
			"example":          cfg,
			"example-shell":    json.RawMessage(`{"inline":["echo hello from example-shell"]}`),
			"example-checksum": ppCfg,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.WriteTable(&buf, false)
	for _, r := range rep.Results {
		if r.Failed() || r.Status == conformance.Skip {
			t.Errorf("%s: %s: %s", r.ID, r.Status, r.Reason)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", buf.String())
	}
}
