package conformance_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/conformance"
)

// TestSections: results are grouped by SPEC section, sections with a
// failed MUST check first, MUST failures first within a section.
func TestSections(t *testing.T) {
	rep := &conformance.Report{Results: []conformance.Result{
		{ID: "a/one", Section: "§4.1", Level: conformance.Must, Status: conformance.Pass},
		{ID: "a/two", Section: "§4.1", Level: conformance.Should, Status: conformance.Fail},
		{ID: "a/three", Section: "§4.1", Level: conformance.Must, Status: conformance.Fail},
		{ID: "b/one", Section: "§10", Level: conformance.Must, Status: conformance.Pass},
		{ID: "c/one", Section: "§9.3", Level: conformance.Must, Status: conformance.XPass},
		{ID: "d/one", Section: "§2.2", Level: conformance.Should, Status: conformance.Fail},
	}}
	type row struct {
		Section string
		IDs     []string
		Must    int
	}
	var got []row
	for _, s := range rep.Sections() {
		r := row{Section: s.Section, Must: s.MustFailures}
		for _, res := range s.Results {
			r.IDs = append(r.IDs, res.ID)
		}
		got = append(got, r)
	}
	want := []row{
		{"§4.1", []string{"a/three", "a/two", "a/one"}, 1},
		{"§9.3", []string{"c/one"}, 1},
		{"§2.2", []string{"d/one"}, 0},
		{"§10", []string{"b/one"}, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sections (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf, false); err != nil {
		t.Fatal(err)
	}
	if want := "-- §4.1: 3 check(s): 1 pass, 2 fail (1 MUST failed)\na/three "; !strings.Contains(buf.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, buf.String())
	}
}
