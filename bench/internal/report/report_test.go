package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/bench/internal/report"
)

func TestMerge(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     []report.Row
		want   []report.Row
		reason string
	}{
		{
			name: "one run keeps rows and notes",
			in:   []report.Row{{Scenario: "a", System: "x", Median: 1, Note: "n"}},
			want: []report.Row{{Scenario: "a", System: "x", Median: 1, Note: "n"}},
		},
		{
			name: "median of three, its own note",
			in: []report.Row{
				{Scenario: "a", System: "x", Median: 5, Note: "first"},
				{Scenario: "a", System: "x", Median: 1, Note: "second"},
				{Scenario: "a", System: "x", Median: 3, Note: "third"},
			},
			want: []report.Row{{Scenario: "a", System: "x", Median: 3, Note: "third; median of 3 runs"}},
		},
		{
			name:   "interleaved repetitions are grouped by scenario",
			reason: "each repetition runs every scenario, then go-plugin's rows come after; the table groups a scenario's rows",
			in: []report.Row{
				{Scenario: "a", System: "ours", Median: 1}, {Scenario: "b", System: "ours", Median: 2},
				{Scenario: "a", System: "theirs", Median: 3}, {Scenario: "b", System: "theirs", Median: 4, Floor: true},
				{Scenario: "a", System: "ours", Median: 1}, {Scenario: "b", System: "ours", Median: 2},
				{Scenario: "a", System: "theirs", Median: 3}, {Scenario: "b", System: "theirs", Median: 4, Floor: true},
			},
			want: []report.Row{
				{Scenario: "a", System: "ours", Median: 1, Note: "; median of 2 runs"},
				{Scenario: "a", System: "theirs", Median: 3, Note: "; median of 2 runs"},
				{Scenario: "b", System: "ours", Median: 2, Note: "; median of 2 runs"},
				{Scenario: "b", System: "theirs", Median: 4, Floor: true, Note: "; median of 2 runs"},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, report.Merge(tt.in)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s\n%s", diff, tt.reason)
			}
		})
	}
}

func TestPrintRatios(t *testing.T) {
	rows := []report.Row{
		{Scenario: "relay", System: "floor: one pipe", Median: 1000, Unit: "MiB/s", Floor: true},
		{Scenario: "relay", System: "floor: two hops", Median: 400, Unit: "MiB/s", Floor: true},
		{Scenario: "relay", System: "ours", Median: 200, Unit: "MiB/s"},
		{Scenario: "relay", System: report.Reference, Median: 100, Unit: "MiB/s"},
		{Scenario: "cold", System: "ours", Median: 7, Unit: "ms"},
	}
	var b bytes.Buffer
	report.Print(&b, rows)
	type ratios struct{ system, vsRef, vsFloor string }
	var got []ratios
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n")[1:] {
		f := strings.Fields(l)
		// scenario, system (may hold spaces), median, p99, unit, two ratios
		got = append(got, ratios{strings.Join(f[1:len(f)-5], " "), f[len(f)-2], f[len(f)-1]})
	}
	want := []ratios{
		{"floor: one pipe", "10.00x", "2.50x"},
		{"floor: two hops", "4.00x", "1.00x"},
		{"ours", "2.00x", "0.50x"},
		{report.Reference, "1.00x", "0.25x"},
		{"ours", "-", "-"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(ratios{})); diff != "" {
		t.Errorf("ratios (-want +got):\n%s\n%s", diff, b.String())
	}
}
