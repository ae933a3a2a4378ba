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
}

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

// Print writes rows as one table, in the order given.
func Print(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "%-34s %-18s %14s %14s  %-8s %s\n", "scenario", "system", "median", "p99", "unit", "note")
	for _, r := range rows {
		fmt.Fprintf(w, "%-34s %-18s %14s %14s  %-8s %s\n", r.Scenario, r.System, num(r.Median), num(r.P99), r.Unit, r.Note)
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

// PeakRSS returns this process's current resident set in KiB, from
// /proc/self/status (0 where there is none).
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
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
