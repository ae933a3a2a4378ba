//go:build linux

package host_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// usage is what the host process holds: goroutines, open file descriptors
// and resident memory.
type usage struct {
	goroutines int
	fds        int
	rss        int64
	heap       uint64 // HeapInuse after a GC
}

func measure(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(statm))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{goroutines: runtime.NumGoroutine(), fds: len(ents) - 1, rss: pages * int64(os.Getpagesize()), heap: ms.HeapInuse}
}

// settle waits for goroutines that are on their way out (reapers, readers
// of closed pipes) and returns the usage once it no longer exceeds base in
// goroutines and fds, or the last one measured when it never does.
func settle(t *testing.T, base usage) usage {
	t.Helper()
	var u usage
	for range 100 {
		u = measure(t)
		if u.goroutines <= base.goroutines && u.fds <= base.fds {
			return u
		}
		time.Sleep(50 * time.Millisecond)
	}
	return u
}

// lifecycle starts the example plugin, prepares a component, and closes it.
func lifecycle(ctx context.Context) error {
	// A generous ShutdownGrace: with hundreds of plugins on two cores, a
	// plugin may need more than the default to exit, and this test is
	// about leaks, not speed.
	p, err := host.Start(ctx, exec.Command(examplePlugin), host.Options{Name: "example", ShutdownGrace: 30 * time.Second})
	if err != nil {
		return err
	}
	_, _, err = p.Prepare(ctx, protocol.TypeBuilder, "example", map[string]any{"output": "out.txt"})
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestSoak runs many plugin lifecycles in a row and at once from one host,
// and checks that goroutines, open fds and RSS return to where they
// started. Default sizes: 100 in a row and 50 at once; with HOST_TEST_BIG=1,
// 1,000 and 200.
func TestSoak(t *testing.T) {
	if exampleBuildErr != nil {
		t.Fatal(exampleBuildErr)
	}
	inRow, atOnce := 100, 50
	if big() {
		inRow, atOnce = 1000, 200
	}
	// Warm up: the first lifecycle starts lazily created runtime and
	// package state that stays.
	if err := lifecycle(t.Context()); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, name string, base usage, took time.Duration) {
		t.Helper()
		after := settle(t, base)
		t.Logf("%s in %v: goroutines %d -> %d, fds %d -> %d, heap in use %.1f MB -> %.1f MB, RSS %.1f MB -> %.1f MB",
			name, took.Round(time.Millisecond), base.goroutines, after.goroutines, base.fds, after.fds,
			float64(base.heap)/mb, float64(after.heap)/mb, float64(base.rss)/mb, float64(after.rss)/mb)
		if after.goroutines > base.goroutines {
			t.Errorf("%d goroutines after, %d before", after.goroutines, base.goroutines)
		}
		if after.fds > base.fds {
			t.Errorf("%d open fds after, %d before", after.fds, base.fds)
		}
		if after.heap > base.heap+8*mb {
			t.Errorf("heap in use %d bytes after, %d before: more than 8 MB kept", after.heap, base.heap)
		}
		// The race detector keeps memory per goroutine it has seen, which
		// the host cannot return: RSS is checked without it.
		if !raceEnabled && after.rss > base.rss+16*mb {
			t.Errorf("RSS %d bytes after, %d before: more than 16 MB kept", after.rss, base.rss)
		}
	}
	t.Run("in a row", func(t *testing.T) {
		base := measure(t)
		start := time.Now()
		for i := range inRow {
			if err := lifecycle(t.Context()); err != nil {
				t.Fatalf("lifecycle %d: %v", i, err)
			}
		}
		check(t, strconv.Itoa(inRow)+" lifecycles in a row", base, time.Since(start))
	})
	t.Run("at once", func(t *testing.T) {
		batch := func() {
			errs := make([]error, atOnce)
			var wg sync.WaitGroup
			for i := range atOnce {
				wg.Go(func() { errs[i] = lifecycle(t.Context()) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("lifecycle %d: %v", i, err)
				}
			}
		}
		// The first batch grows the heap and (under -race) the race
		// detector's shadow memory to what so many goroutines need; the
		// runtime keeps some of it. Only a second batch that adds to
		// that would be a leak.
		first := measure(t)
		start := time.Now()
		batch()
		warm := settle(t, first)
		t.Logf("first batch of %d in %v: RSS %.1f MB -> %.1f MB", atOnce, time.Since(start).Round(time.Millisecond),
			float64(first.rss)/mb, float64(warm.rss)/mb)
		base := measure(t)
		start = time.Now()
		batch()
		check(t, strconv.Itoa(atOnce)+" lifecycles at once", base, time.Since(start))
	})
}
