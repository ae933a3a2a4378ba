// Package report holds the result rows the plugin-bench programs print and
// exchange, and the table that shows them side by side.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is one measured figure: a scenario run by one system.
type Row struct {
	Scenario string  `json:"scenario"`
	System   string  `json:"system"`
	Median   float64 `json:"median"`
	P99      float64 `json:"p99"`
	Unit     string  `json:"unit"`
	Note     string  `json:"note,omitempty"`
	// Floor marks a row that measures no plugin system but the operating
	// system's floor for the scenario (a tiny binary, a pipe, cp). The
	// last floor row of a scenario is the one ratios are taken against.
	Floor bool `json:"floor,omitempty"`
}

// Reference is the system every other row is compared with.
const Reference = "go-plugin net/rpc"

// Durations returns the median and 99th percentile of ds, in microseconds.
func Durations(ds []time.Duration) (median, p99 float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / 1e3
	}
	return at(0.5), at(0.99)
}

// Values returns the median and 99th percentile of vs (p99 is the 1st
// percentile when higher is better: a throughput's bad tail is low).
func Values(vs []float64, higherIsBetter bool) (median, p99 float64) {
	if len(vs) == 0 {
		return 0, 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	q := 0.99
	if higherIsBetter {
		q = 0.01
	}
	return s[len(s)/2], s[min(len(s)-1, int(q*float64(len(s))))]
}

// WriteJSON writes rows as JSON lines.
func WriteJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// ReadJSON reads rows written by WriteJSON.
func ReadJSON(r io.Reader) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var row Row
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("reading results: %w", err)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// Merge turns the rows of several repetitions into one row per scenario
// and system, in the order of their first appearance: the row whose median
// is the median of the repetitions' medians (its note too), with "median
// of N runs" added to the note when there was more than one.
func Merge(rows []Row) []Row {
	type key struct{ scenario, system string }
	var order []key
	groups := map[key][]Row{}
	for _, r := range rows {
		k := key{r.Scenario, r.System}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	// Keep scenarios together: a scenario's rows follow its first row.
	slices.SortStableFunc(order, func(a, b key) int {
		return slices.IndexFunc(order, func(k key) bool { return k.scenario == a.scenario }) -
			slices.IndexFunc(order, func(k key) bool { return k.scenario == b.scenario })
	})
	out := make([]Row, 0, len(order))
	for _, k := range order {
		g := slices.Clone(groups[k])
		slices.SortStableFunc(g, func(a, b Row) int {
			switch {
			case a.Median < b.Median:
				return -1
			case a.Median > b.Median:
				return 1
			}
			return 0
		})
		r := g[(len(g)-1)/2]
		if len(g) > 1 {
			r.Note = fmt.Sprintf("%s; median of %d runs", r.Note, len(g))
		}
		out = append(out, r)
	}
	return out
}

// Print writes rows as one table, in the order given, with two ratios per
// row: its median over the median of the scenario's go-plugin net/rpc row,
// and over its reference floor (the scenario's last floor row). A ratio
// reads in the row's unit: above 1 is slower for a time, faster for a
// rate.
func Print(w io.Writer, rows []Row) {
	ref := map[string]float64{}
	floor := map[string]float64{}
	for _, r := range rows {
		if r.System == Reference {
			ref[r.Scenario] = r.Median
		}
		if r.Floor {
			floor[r.Scenario] = r.Median
		}
	}
	ratio := func(v, by float64) string {
		if v == 0 || by == 0 {
			return "-"
		}
		return strconv.FormatFloat(v/by, 'f', 2, 64) + "x"
	}
	const format = "%-30s %-24s %12s %12s  %-7s %10s %9s  %s\n"
	fmt.Fprintf(w, format, "scenario", "system", "median", "p99", "unit", "/net/rpc", "/floor", "note")
	for _, r := range rows {
		fmt.Fprintf(w, format, r.Scenario, r.System, num(r.Median), num(r.P99), r.Unit, ratio(r.Median, ref[r.Scenario]), ratio(r.Median, floor[r.Scenario]), r.Note)
	}
}

func num(v float64) string {
	if v == 0 {
		return "-"
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// RSS returns this process's current resident set in KiB, from
// /proc/self/status (0 where there is none).
func RSS() int64 { return status("self", "VmRSS:") }

// PeakRSS returns the peak resident set (VmHWM) of the running process pid
// in KiB, from /proc/PID/status (0 where there is none). Read it before the
// process exits: getrusage's ru_maxrss of a child started with vfork+exec
// can carry its parent's RSS instead.
func PeakRSS(pid int) int64 { return status(strconv.Itoa(pid), "VmHWM:") }

func status(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// Sampler records the highest RSS of this process while it runs.
type Sampler struct {
	stop chan struct{}
	done chan int64
}

// Sample starts sampling every 5ms.
func Sample() *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		peak := RSS()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.done <- max(peak, RSS())
				return
			case <-t.C:
				peak = max(peak, RSS())
			}
		}
	}()
	return s
}

// Stop stops sampling and returns the peak in KiB.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	return <-s.done
}
