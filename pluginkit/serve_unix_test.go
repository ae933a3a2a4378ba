//go:build unix

package pluginkit

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestDupPollable: the protocol's copy of a pipe or socket descriptor is
// served by the poller (it takes a deadline, which only such files do);
// that of a regular file is not.
func TestDupPollable(t *testing.T) {
	tests := []struct {
		name         string
		open         func(t *testing.T) int // a blocking descriptor, closed by the test
		wantPollable bool
	}{
		{"pipe", func(t *testing.T) int {
			var p [2]int
			if err := syscall.Pipe(p[:]); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Close(p[1]) })
			return p[0]
		}, true},
		{"socket", func(t *testing.T) int {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Close(fds[1]) })
			return fds[0]
		}, true},
		{"regular file", func(t *testing.T) int {
			f, err := os.CreateTemp(t.TempDir(), "x")
			if err != nil {
				t.Fatal(err)
			}
			fd, err := syscall.Dup(int(f.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			return fd
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := tt.open(t)
			defer syscall.Close(fd)
			f, err := dupPollable(fd, "test")
			if err != nil {
				t.Fatalf("dupPollable: %v", err)
			}
			defer f.Close()
			err = f.SetReadDeadline(time.Now().Add(-time.Second))
			if pollable := err == nil; pollable != tt.wantPollable {
				t.Fatalf("SetReadDeadline = %v: pollable %v, want %v", err, pollable, tt.wantPollable)
			}
			if !tt.wantPollable {
				return
			}
			// Nothing was written: a past deadline ends the read at once.
			if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Read = %v, want os.ErrDeadlineExceeded", err)
			}
		})
	}
}
