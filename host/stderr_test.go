//go:build linux

package host_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// countingWriter counts what it is given without keeping the bytes, except
// short lines.
type countingWriter struct {
	mu       sync.Mutex
	writes   int
	maxWrite int
	text     int64 // bytes of text, without "NAME: " and "\n"
	bad      int   // writes that are not one "NAME: ...\n" line
	short    []string
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	w.maxWrite = max(w.maxWrite, len(b))
	const prefix = "helper-flood-stderr: "
	if !bytes.HasPrefix(b, []byte(prefix)) || !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		w.bad++
		return len(b), nil
	}
	text := b[len(prefix) : len(b)-1]
	w.text += int64(len(text))
	if len(text) < 100 {
		w.short = append(w.short, string(text))
	}
	return len(b), nil
}

// TestStderrFlood: a 10 MB line and many short lines are forwarded
// completely, the long one in bounded pieces, each write one prefixed line.
func TestStderrFlood(t *testing.T) {
	w := &countingWriter{}
	opts := fastOptions("helper-flood-stderr")
	opts.Stderr = w
	p, inst, pid := startPrepared(t, "flood-stderr", opts)
	if _, err := inst.Run(t.Context()); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var want []string
	want = append(want, "helper flood-stderr starting")
	for i := range 1000 {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	if diff := cmp.Diff(want, w.short); diff != "" {
		t.Errorf("short lines (-want +got):\n%s", diff)
	}
	wantText := int64(len("helper flood-stderr starting")) + 10<<20
	for i := range 1000 {
		wantText += int64(len(fmt.Sprintf("line %d", i)))
	}
	if w.text != wantText {
		t.Errorf("forwarded %d bytes of text, want %d: something was lost or added", w.text, wantText)
	}
	if w.bad != 0 {
		t.Errorf("%d writes were not exactly one prefixed line", w.bad)
	}
	if limit := 64<<10 + len("helper-flood-stderr: \n"); w.maxWrite > limit {
		t.Errorf("largest write %d bytes, want at most %d: a long line must be forwarded in pieces", w.maxWrite, limit)
	}
	assertGroupGone(t, pid)
}

// TestStderrTailIsBounded: the tail kept for errors holds the last 20 lines,
// each cut short.
func TestStderrTailIsBounded(t *testing.T) {
	opts := fastOptions("helper-flood-stderr")
	cmd := helperCmd("flood-stderr")
	// Crash after the flood: reuse the flood mode, then kill, so the tail
	// is the end of the flood.
	p, err := host.Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatal(err)
	}
	inst, _, err := p.Prepare(t.Context(), protocol.TypeBuilder, "x")
	if err == nil {
		_, err = inst.Run(t.Context())
	}
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	p.Kill()
	err = p.Close()
	var pe *host.PluginError
	if !errors.As(err, &pe) {
		t.Fatalf("Close after Kill: got %v, want a *host.PluginError", err)
	}
	var want []string
	for i := 980; i < 1000; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	if diff := cmp.Diff(want, pe.StderrTail); diff != "" {
		t.Errorf("StderrTail (-want +got):\n%s", diff)
	}
	if strings.Count(err.Error(), "\n") > 25 {
		t.Errorf("error message has %d lines, want the tail only", strings.Count(err.Error(), "\n"))
	}
}
