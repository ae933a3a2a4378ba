package ctxio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

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
