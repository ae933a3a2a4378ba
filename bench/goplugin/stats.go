package main

import (
	"encoding/json"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file repeats the few definitions of the main module's
// bench/internal/report that this program needs, so that this module does
// not require the main module (and its dependency graph) at all. Rows are
// exchanged as JSON lines; the field names and the percentile rules must
// stay the same as there.

// Row is one measured figure: a scenario run by one system.
type Row struct {
	Scenario string  `json:"scenario"`
	System   string  `json:"system"`
	Median   float64 `json:"median"`
	P99      float64 `json:"p99"`
	Unit     string  `json:"unit"`
	Note     string  `json:"note,omitempty"`
}

// durations returns the median and 99th percentile of ds, in microseconds.
func durations(ds []time.Duration) (median, p99 float64) {
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

// values returns the median and the 1st percentile of throughputs vs
// (higher is better, so the bad tail is low).
func values(vs []float64) (median, p1 float64) {
	if len(vs) == 0 {
		return 0, 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, int(0.01*float64(len(s))))]
}

// writeJSON writes rows as JSON lines.
func writeJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// rss returns this process's resident set in KiB from /proc/self/status
// (0 where there is none).
func rss() int64 { return status("self", "VmRSS:") }

// peakRSS returns the peak resident set (VmHWM) of the running process pid
// in KiB, from /proc/PID/status; read it before the process exits.
func peakRSS(pid int) int64 { return status(strconv.Itoa(pid), "VmHWM:") }

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

// sampler records the highest RSS of this process while it runs.
type sampler struct {
	stop chan struct{}
	done chan int64
}

// sample starts sampling every 5ms.
func sample() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		peak := rss()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.done <- max(peak, rss())
				return
			case <-t.C:
				peak = max(peak, rss())
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak in KiB.
func (s *sampler) end() int64 {
	close(s.stop)
	return <-s.done
}
