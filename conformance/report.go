package conformance

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// SectionSummary is the outcome of the checks of one SPEC.md section.
type SectionSummary struct {
	// Section is the SPEC.md section, e.g. "§4.1".
	Section string `json:"section"`
	// Results are the section's results, MUST failures first, then other
	// failures, then the rest in catalogue order.
	Results []Result `json:"-"`
	// Counts says how many results have each status.
	Counts map[Status]int `json:"counts"`
	// MustFailures counts the failed MUST checks.
	MustFailures int `json:"must_failures"`
}

// Summary says in one line how the section did.
func (s SectionSummary) Summary() string {
	var parts []string
	for _, st := range []Status{Pass, Fail, XPass, XFail, Skip} {
		if n := s.Counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	line := fmt.Sprintf("%s: %d check(s): %s", s.Section, len(s.Results), strings.Join(parts, ", "))
	if s.MustFailures > 0 {
		line += fmt.Sprintf(" (%d MUST failed)", s.MustFailures)
	}
	return line
}

// Sections groups the results by SPEC.md section: sections with a failed
// MUST check first, then in the document's order.
func (r *Report) Sections() []SectionSummary {
	idx := map[string]int{}
	var out []SectionSummary
	for _, res := range r.Results {
		i, ok := idx[res.Section]
		if !ok {
			i = len(out)
			idx[res.Section] = i
			out = append(out, SectionSummary{Section: res.Section, Counts: map[Status]int{}})
		}
		out[i].Results = append(out[i].Results, res)
		out[i].Counts[res.Status]++
		if res.Failed() && res.Level == Must {
			out[i].MustFailures++
		}
	}
	rank := func(res Result) int {
		switch {
		case res.Failed() && res.Level == Must:
			return 0
		case res.Failed():
			return 1
		}
		return 2
	}
	for i := range out {
		sort.SliceStable(out[i].Results, func(a, b int) bool { return rank(out[i].Results[a]) < rank(out[i].Results[b]) })
	}
	sort.SliceStable(out, func(a, b int) bool {
		if fa, fb := out[a].MustFailures > 0, out[b].MustFailures > 0; fa != fb {
			return fa
		}
		return sectionLess(out[a].Section, out[b].Section)
	})
	return out
}

// sectionLess orders "§4.1" before "§4.10" and "§10".
func sectionLess(a, b string) bool {
	na := strings.Split(strings.TrimPrefix(a, "§"), ".")
	nb := strings.Split(strings.TrimPrefix(b, "§"), ".")
	for i := 0; i < len(na) && i < len(nb); i++ {
		x, errx := strconv.Atoi(na[i])
		y, erry := strconv.Atoi(nb[i])
		if errx != nil || erry != nil {
			if na[i] != nb[i] {
				return na[i] < nb[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(na) < len(nb)
}

// WriteTable writes the report for a person: the results grouped by
// SPEC.md section (sections with a failed MUST check first, MUST failures
// first within a section), each section under a one-line summary; then the
// transcript of every failed check, or of every check when verbose is set,
// in the same order; then a summary line.
func (r *Report) WriteTable(w io.Writer, verbose bool) error {
	sections := r.Sections()
	// The rows are aligned together, then each section's summary goes
	// above its first row (a line without tabs would break the columns).
	var rows bytes.Buffer
	tw := tabwriter.NewWriter(&rows, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tLEVEL\tSPEC\tRESULT\tWHY")
	for _, sec := range sections {
		for _, res := range sec.Results {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.ID, res.Level, res.Section, res.Status, res.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(rows.String(), "\n")
	if _, err := io.WriteString(w, lines[0]); err != nil {
		return err
	}
	lines = lines[1:]
	for _, sec := range sections {
		fmt.Fprintf(w, "-- %s\n", sec.Summary())
		for range sec.Results {
			io.WriteString(w, lines[0])
			lines = lines[1:]
		}
	}
	for _, sec := range sections {
		for _, res := range sec.Results {
			if !verbose && !res.Failed() && res.Status != XFail {
				continue
			}
			fmt.Fprintf(w, "\n=== %s (%s, SPEC %s): %s\n", res.ID, res.Status, res.Section, res.Title)
			if res.Reason != "" {
				fmt.Fprintf(w, "    %s\n", res.Reason)
			}
			for _, e := range res.Transcript {
				fmt.Fprintf(w, "    %s\n", e)
			}
		}
	}
	n := r.Counts()
	fmt.Fprintf(w, "\n%d checks: %d pass, %d fail, %d skip, %d expected failures, %d unexpected passes\n",
		len(r.Results), n[Pass], n[Fail], n[Skip], n[XFail], n[XPass])
	return nil
}

// WriteJSON writes the report as one JSON object. Transcripts are kept for
// failed checks only, unless verbose is set.
func (r *Report) WriteJSON(w io.Writer, verbose bool) error {
	sections := r.Sections()
	out := struct {
		Report
		Sections []SectionSummary `json:"sections"`
	}{Report: *r, Sections: sections}
	out.Results = nil
	for _, sec := range sections {
		for _, res := range sec.Results {
			if !verbose && !res.Failed() && res.Status != XFail {
				res.Transcript = nil
			}
			out.Results = append(out.Results, res)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML, one testcase per check, the
// transcript of a failure in its body.
func (r *Report) WriteJUnit(w io.Writer) error {
	suite := junitSuite{Name: "plugin-conformance " + strings.Join(r.Command, " ")}
	var total float64
	for _, res := range r.Results {
		secs := res.Duration.Seconds()
		total += secs
		jc := junitCase{
			Name:      res.ID,
			Classname: fmt.Sprintf("conformance.%s", res.Level),
			Time:      fmt.Sprintf("%.3f", secs),
		}
		var lines []string
		for _, e := range res.Transcript {
			lines = append(lines, e.String())
		}
		transcript := strings.Join(lines, "\n")
		switch res.Status {
		case Fail, XPass:
			suite.Failures++
			jc.Failure = &junitMessage{Message: fmt.Sprintf("%s (SPEC %s, %s)", res.Reason, res.Section, res.Level), Text: transcript}
		case Skip:
			suite.Skipped++
			jc.Skipped = &junitMessage{Message: res.Reason}
		case XFail:
			jc.SystemOut = "expected failure: " + res.Reason + "\n" + transcript
		}
		suite.Cases = append(suite.Cases, jc)
	}
	suite.Tests = len(r.Results)
	suite.Time = fmt.Sprintf("%.3f", total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
