package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Catalogue returns every check, in the order they run.
func Catalogue() []Check {
	var all []Check
	for _, group := range [][]Check{launchChecks, handshakeChecks, framingChecks, configChecks, schemaChecks, datasourceChecks, endChecks, ruleChecks, streamChecks, sessionChecks} {
		all = append(all, group...)
	}
	return all
}

// DefaultTimeout is the default time limit of one check.
const DefaultTimeout = 10 * time.Second

// Config says what to check and how.
type Config struct {
	// Command is the plugin's command line: argv[0] and its arguments.
	Command []string
	// Env holds extra environment variables for the plugin, "KEY=value",
	// on top of the runner's own environment and the magic cookie.
	Env []string
	// Configs holds a configuration object per component, by name or by
	// "type/name", for components that cannot prepare with {}.
	Configs map[string]json.RawMessage
	// Run, if not nil, selects the checks whose id it matches.
	Run *regexp.Regexp
	// Timeout bounds each check; the plugin's process group is killed when
	// it runs out. Zero means DefaultTimeout.
	Timeout time.Duration
	// ExpectFail lists checks known to fail (see [ReadExpectFile]).
	ExpectFail map[string]bool
	// Artifact, if not nil, gives the artifact a post-processor receives in
	// the checks that run it, for post-processors that accept only some
	// artifacts (docker-tag wants an image): ok false, or a nil Artifact,
	// means the default, a small text file from builder
	// "packer-stdio.conformance". It is called for each run.
	Artifact func(comp protocol.Component) (a protocol.Artifact, ok bool)
}

// Status is the outcome of one check.
type Status string

// Outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
	// XFail is a failure listed in the expected-failures file; it counts
	// as a pass.
	XFail Status = "xfail"
	// XPass is a check listed in the expected-failures file that passed;
	// it counts as a failure, so that the list cannot go stale.
	XPass Status = "xpass"
)

// Result is the outcome of one check.
type Result struct {
	ID      string `json:"id"`
	Section string `json:"section"`
	Level   Level  `json:"level"`
	Title   string `json:"title"`
	Status  Status `json:"status"`
	// Reason says in one line why the check failed or was skipped.
	Reason string `json:"reason,omitempty"`
	// Duration is how long the check took.
	Duration time.Duration `json:"duration_ns"`
	// Transcript is every line exchanged with the plugin processes the
	// check started, and their stderr.
	Transcript []Entry `json:"transcript,omitempty"`
}

// Failed reports whether the result counts as a failure.
func (r Result) Failed() bool { return r.Status == Fail || r.Status == XPass }

// Report is the outcome of a run.
type Report struct {
	Command []string `json:"command"`
	Results []Result `json:"results"`
}

// MustFailed reports whether any MUST check failed, or any check listed as
// an expected failure passed: the cases where the runner exits non-zero.
func (r *Report) MustFailed() bool {
	for _, res := range r.Results {
		if res.Status == XPass || (res.Status == Fail && res.Level == Must) {
			return true
		}
	}
	return false
}

// Counts returns how many results have each status.
func (r *Report) Counts() map[Status]int {
	n := map[Status]int{}
	for _, res := range r.Results {
		n[res.Status]++
	}
	return n
}

// Run runs the selected checks one after the other, each against fresh
// plugin processes, and returns their results. It returns an error only
// when it cannot run at all (no command, an unknown id in ExpectFail); a
// cancelled ctx ends the check in progress and skips the rest.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("no plugin command")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	known := map[string]bool{}
	for _, c := range Catalogue() {
		known[c.ID] = true
	}
	for id := range cfg.ExpectFail {
		if !known[id] {
			return nil, fmt.Errorf("expected-failures list names %q, which is not a check", id)
		}
	}
	rep := &Report{Command: cfg.Command}
	for _, chk := range Catalogue() {
		if cfg.Run != nil && !cfg.Run.MatchString(chk.ID) {
			continue
		}
		res := runOne(ctx, &cfg, chk)
		if cfg.ExpectFail[chk.ID] {
			res.expectedToFail()
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// runOne runs one check with its timeout and kills what it started.
func runOne(parent context.Context, cfg *Config, chk Check) Result {
	res := Result{ID: chk.ID, Section: chk.Section, Level: chk.Level, Title: chk.Title}
	start := time.Now()
	tr := &transcript{}
	tmp, err := os.MkdirTemp("", "plugin-conformance-")
	if err != nil {
		res.Status, res.Reason = Fail, "runner: "+err.Error()
		return res
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(parent, cfg.Timeout)
	defer cancel()
	c := &checkCtx{ctx: ctx, cfg: cfg, tr: tr, tmp: tmp}
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("runner panicked: %v", p)
			}
			done <- err
		}()
		err = chk.run(c)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Killing the processes unblocks whatever the check waits on.
		tr.notef("check timed out after %v", cfg.Timeout)
		c.cleanupAll()
		err = <-done
		if parent.Err() == nil {
			err = fmt.Errorf("timed out after %v (%v)", cfg.Timeout, err)
		}
	}
	c.cleanupAll()
	res.settle(err, start, tr)
	return res
}

// settle records how a check ended: err nil passes, a skipError skips,
// any other error fails with its text on one line; the time since start
// and tr's transcript complete res. Plugin checks and host checks end the
// same way, so both runners call it.
func (res *Result) settle(err error, start time.Time, tr *transcript) {
	var skip *skipError
	switch {
	case err == nil:
		res.Status = Pass
	case errors.As(err, &skip):
		res.Status, res.Reason = Skip, skip.reason
	default:
		res.Status, res.Reason = Fail, oneLineText(err.Error())
	}
	res.Duration = time.Since(start)
	res.Transcript = tr.snapshot()
}

// expectedToFail turns the result of a check on the expected-failures list
// into XFail, or into XPass with a reason that says to remove it from the
// list; a skipped check stays skipped.
func (res *Result) expectedToFail() {
	switch res.Status {
	case Fail:
		res.Status = XFail
	case Pass:
		res.Status = XPass
		res.Reason = "passed, but the expected-failures list says it fails: remove it from the list"
	}
}

func oneLineText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ReadExpectFile reads an expected-failures list: one check id per line;
// blank lines and text after "#" are ignored.
func ReadExpectFile(r io.Reader) (map[string]bool, error) {
	ids := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			ids[line] = true
		}
	}
	return ids, sc.Err()
}
