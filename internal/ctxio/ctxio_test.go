package ctxio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/ctxio"
)

func TestReaderStopsOnceDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ctxio.Reader(ctx, strings.NewReader("abcdef"))
	p := make([]byte, 3)
	if n, err := r.Read(p); n != 3 || err != nil || string(p) != "abc" {
		t.Fatalf("Read before cancel = %d, %v, %q; want 3, nil, \"abc\"", n, err, p)
	}
	cancel()
	if n, err := r.Read(p); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
}

func TestWriterStopsOnceDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var buf bytes.Buffer
	w := ctxio.Writer(ctx, &buf)
	if _, err := io.WriteString(w, "abc"); err != nil {
		t.Fatalf("Write before cancel: %v", err)
	}
	cancel()
	if n, err := io.WriteString(w, "def"); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
	if got := buf.String(); got != "abc" {
		t.Fatalf("written %q, want \"abc\"", got)
	}
}

// chunkSource writes its chunks with one Write each, and cancels ctx after
// the chunk numbered cancelAfter (when cancel is set).
type chunkSource struct {
	chunks      []string
	cancel      func()
	cancelAfter int
}

func (s *chunkSource) Read([]byte) (int, error) {
	panic("Read called: io.Copy should have used WriteTo")
}

func (s *chunkSource) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for i, c := range s.chunks {
		n, err := io.WriteString(w, c)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if s.cancel != nil && i == s.cancelAfter {
			s.cancel()
		}
	}
	return total, nil
}

// recorder records the size of every Write.
type recorder struct {
	writes []int
	bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, len(p))
	return r.Buffer.Write(p)
}

func TestReaderKeepsWriteTo(t *testing.T) {
	big := strings.Repeat("x", 100<<10) // more than io.Copy's 32 KiB buffer
	tests := []struct {
		name        string
		cancelAfter int // -1: never
		wantWrites  []int
		wantErr     error
	}{
		{name: "whole", cancelAfter: -1, wantWrites: []int{len(big), 3, len(big)}},
		{name: "cancelled after the first chunk", cancelAfter: 0, wantWrites: []int{len(big)}, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src := &chunkSource{chunks: []string{big, "abc", big}, cancelAfter: tt.cancelAfter}
			if tt.cancelAfter >= 0 {
				src.cancel = cancel
			}
			var dst recorder
			_, err := io.Copy(&dst, ctxio.Reader(ctx, src))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("io.Copy error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantWrites, dst.writes); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
		})
	}
}
