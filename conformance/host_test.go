package conformance_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/conformance"
)

func skipHostModeOn(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("host mode needs Unix: the scripted plugin is a shell script")
	}
}

// TestHostFixtures proves that every host check can fail: each broken
// fixture host fails exactly its check, and the baseline fails none. Each
// fixture runs the checks of its family, which share runs of the host: a
// stream-* mode the stream checks, an escalation mode (whose run takes
// three graces by design) host/escalation and host/shutdown, any other
// mode the session's checks; host/messages-valid, which also reads the
// relay, belongs to the session's and the streams' families, and the
// baseline runs everything.
func TestHostFixtures(t *testing.T) {
	skipHostModeOn(t)
	const concurrent = 8
	const slow = "host/escalation"
	family := func(ids ...string) *regexp.Regexp {
		for i, id := range ids {
			ids[i] = regexp.QuoteMeta(id)
		}
		return regexp.MustCompile(`^(?:` + strings.Join(ids, "|") + `)$`)
	}
	var session, streams []string
	for _, c := range conformance.HostCatalogue() {
		switch {
		case c.ID == "host/messages-valid":
			session, streams = append(session, c.ID), append(streams, c.ID)
		case strings.HasPrefix(c.ID, "host/stream-"):
			streams = append(streams, c.ID)
		case c.ID != slow:
			session = append(session, c.ID)
		}
	}
	sessionChecks, streamChecks, escalationChecks := family(session...), family(streams...), family(slow, "host/shutdown")
	cmd := fixtureCommand(t)
	reports := make([]*conformance.Report, len(hostFixtureCases))
	errs := make([]error, len(hostFixtureCases))
	took := make([]time.Duration, len(hostFixtureCases))
	sem := make(chan struct{}, concurrent)
	var wg sync.WaitGroup
	for i, tc := range hostFixtureCases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := conformance.HostConfig{
				Command: append(cmd, "{plugin}"),
				Env:     []string{fixtureHostEnv + "=" + tc.mode},
			}
			switch {
			case tc.mode == "baseline":
			case strings.HasPrefix(tc.mode, "stream-"):
				cfg.Run = streamChecks
			case tc.breaks == slow:
				cfg.Run = escalationChecks
			default:
				cfg.Run = sessionChecks
			}
			start := time.Now()
			reports[i], errs[i] = conformance.RunHost(context.Background(), cfg)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, tc := range hostFixtureCases {
		t.Run(tc.mode, func(t *testing.T) {
			rep, err := reports[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d checks in %v", len(rep.Results), took[i].Round(time.Millisecond))
			var failed []string
			for _, r := range rep.Results {
				if r.Status != conformance.Pass {
					failed = append(failed, r.ID)
					t.Logf("%s: %s: %s", r.ID, r.Status, r.Reason)
				}
			}
			var want []string
			if tc.breaks != "" {
				want = append([]string{tc.breaks}, tc.also...)
			}
			slices.Sort(want)
			slices.Sort(failed)
			if diff := cmp.Diff(want, failed); diff != "" {
				var buf bytes.Buffer
				rep.WriteTable(&buf, false)
				t.Errorf("mode %s (%s): failed checks mismatch (-want +got):\n%s\n%s", tc.mode, tc.reason, diff, buf.String())
			}
		})
	}
}

// TestEveryHostCheckHasAFixture: a host check that no fixture host makes
// fail is not done. A check whose judge fails in more than one way has a
// fixture for each way.
func TestEveryHostCheckHasAFixture(t *testing.T) {
	broken, modes := map[string]bool{}, map[string]bool{}
	for _, tc := range hostFixtureCases {
		if modes[tc.mode] {
			t.Errorf("two fixture cases have mode %s", tc.mode)
		}
		modes[tc.mode] = true
		broken[tc.breaks] = true
	}
	idPattern := regexp.MustCompile(`^host/[a-z0-9-]+$`)
	for _, c := range conformance.HostCatalogue() {
		if !idPattern.MatchString(c.ID) {
			t.Errorf("host check id %q is not host/rule", c.ID)
		}
		if !broken[c.ID] {
			t.Errorf("host check %s has no fixture host that makes it fail", c.ID)
		}
	}
}

// TestHostPacker runs host mode against packer itself, as CI does.
func TestHostPacker(t *testing.T) {
	skipHostModeOn(t)
	t.Parallel()
	if testing.Short() {
		t.Skip("builds packer")
	}
	bin := filepath.Join(t.TempDir(), "packer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/packer").CombinedOutput(); err != nil {
		t.Fatalf("go build packer: %v\n%s", err, out)
	}
	requireHostPasses(t, conformance.HostConfig{Command: []string{bin, "build", "{template}"}})
}

// TestHostPython runs host mode against the Python host of examples/python,
// which was written from SPEC.md alone. Its two configurations run at the
// same time, each in its own goroutine: go test's -parallel (GOMAXPROCS,
// 2 in CI) would otherwise queue the second behind TestHostPacker, though
// a host check mostly waits for the host.
func TestHostPython(t *testing.T) {
	skipHostModeOn(t)
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	pyhost, err := filepath.Abs("../examples/python/pyhost.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := []string{py, pyhost, "--builder", "conformance", "--provisioner", "conformance", "--config", "{config}"}
	cases := []struct {
		name         string
		args         []string
		mayBeSkipped []*regexp.Regexp
	}{
		// pyhost.py offers [2, 1]: every check applies.
		{name: "versions 2 and 1", args: []string{"{plugin}"}},
		// Offering only version 1, it may skip the version 2 stream checks
		// and must pass the rest.
		{name: "version 1 only", args: []string{"--versions", "1", "--provisioner-versions", "1", "{plugin}"}, mayBeSkipped: []*regexp.Regexp{versionTwoNotOffered}},
	}
	reports := make([]*conformance.Report, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = conformance.RunHost(context.Background(), conformance.HostConfig{Command: append(cmd[:len(cmd):len(cmd)], tc.args...)})
		}()
	}
	wg.Wait()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			requirePassed(t, reports[i], tc.mayBeSkipped...)
		})
	}
}

// versionTwoNotOffered is the reason a version 2 stream check gives when the
// host offers only version 1: such a host may skip them.
var versionTwoNotOffered = regexp.MustCompile(`^not applicable: the host offers protocol versions \[1\];`)

// requireHostPasses runs every host check against cfg's host and wants each
// to pass, or to be skipped with a reason that mayBeSkipped matches.
func requireHostPasses(t *testing.T, cfg conformance.HostConfig, mayBeSkipped ...*regexp.Regexp) {
	t.Helper()
	rep, err := conformance.RunHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	requirePassed(t, rep, mayBeSkipped...)
}

// requirePassed wants every host check in rep to pass, or to be skipped
// with a reason that mayBeSkipped matches. It logs each check's time: a
// check that starts a run of the host carries the run's time.
func requirePassed(t *testing.T, rep *conformance.Report, mayBeSkipped ...*regexp.Regexp) {
	t.Helper()
	for _, r := range rep.Results {
		t.Logf("%s: %s in %v", r.ID, r.Status, r.Duration.Round(time.Millisecond))
	}
	if len(rep.Results) != len(conformance.HostCatalogue()) {
		t.Errorf("ran %d host checks, the catalogue has %d", len(rep.Results), len(conformance.HostCatalogue()))
	}
	for _, r := range rep.Results {
		if r.Status == conformance.Skip && len(mayBeSkipped) > 0 && mayBeSkipped[0].MatchString(r.Reason) {
			t.Logf("%s: skipped: %s", r.ID, r.Reason)
			continue
		}
		if r.Status != conformance.Pass {
			var b strings.Builder
			for _, e := range r.Transcript {
				b.WriteString("    " + e.String() + "\n")
			}
			t.Errorf("%s: %s: %s\n%s", r.ID, r.Status, r.Reason, b.String())
		}
	}
}
