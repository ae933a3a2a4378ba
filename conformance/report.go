package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report for a person: one row per check (id, level,
// result, why), then the transcript of every failed check, or of every
// check when verbose is set, then a summary line.
func (r *Report) WriteTable(w io.Writer, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tLEVEL\tSPEC\tRESULT\tWHY")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.ID, res.Level, res.Section, res.Status, res.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
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
	n := r.Counts()
	fmt.Fprintf(w, "\n%d checks: %d pass, %d fail, %d skip, %d expected failures, %d unexpected passes\n",
		len(r.Results), n[Pass], n[Fail], n[Skip], n[XFail], n[XPass])
	return nil
}

// WriteJSON writes the report as one JSON object. Transcripts are kept for
// failed checks only, unless verbose is set.
func (r *Report) WriteJSON(w io.Writer, verbose bool) error {
	out := *r
	out.Results = make([]Result, len(r.Results))
	for i, res := range r.Results {
		if !verbose && !res.Failed() && res.Status != XFail {
			res.Transcript = nil
		}
		out.Results[i] = res
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
