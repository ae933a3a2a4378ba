package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// chunkedReader returns at most n bytes per Read, as a pipe does.
type chunkedReader struct {
	r io.Reader
	n int
}

func (c chunkedReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

type slice struct {
	Len  int
	Head string
	Tail string
	Err  string
}

func readSlices(t *testing.T, rs func() ([]byte, error)) []slice {
	t.Helper()
	var out []slice
	for range 100 {
		b, err := rs()
		s := slice{Len: len(b), Head: string(b[:min(len(b), 8)]), Tail: string(b[max(len(b)-8, 0):])}
		if err != nil {
			s.Err = err.Error()
		}
		out = append(out, s)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return out
		}
	}
	t.Fatal("no end after 100 slices")
	return nil
}

// TestLineReaderMatchesBufio reads the same input through lineReader and
// through a bufio.Reader as large as lineReader's largest buffer: both
// return the same slices and errors, whatever the size of each read.
func TestLineReaderMatchesBufio(t *testing.T) {
	line := func(n int, c byte) string { return strings.Repeat(string(c), n-1) + "\n" }
	tests := []struct {
		name  string
		input string
	}{
		{"small lines", line(10, 'a') + line(1, 'b') + line(200, 'c')},
		{"a chunk line between small ones", line(10, 'a') + line(349_600, 'b') + line(30, 'c')},
		{"chunk lines back to back", line(349_600, 'a') + line(349_600, 'b') + line(349_600, 'c') + line(349_600, 'd')},
		{"line longer than the largest buffer", line(10, 'a') + line(2*maxLineBuffer+5, 'b') + line(10, 'c')},
		{"no final newline", line(70_000, 'a') + "tail"},
		{"empty", ""},
	}
	for _, tt := range tests {
		for _, n := range []int{1 << 30, 65536, 4093} {
			t.Run(fmt.Sprintf("%s/reads of %d", tt.name, n), func(t *testing.T) {
				br := bufio.NewReaderSize(chunkedReader{strings.NewReader(tt.input), n}, maxLineBuffer)
				want := readSlices(t, func() ([]byte, error) { return br.ReadSlice('\n') })
				lr := newLineReader(chunkedReader{strings.NewReader(tt.input), n})
				got := readSlices(t, func() ([]byte, error) { return lr.ReadSlice('\n') })
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("slices (-bufio +lineReader):\n%s", diff)
				}
			})
		}
	}
}

// TestLineReaderStopsGrowingAtLimit: a line longer than the limit is
// returned, cut, with bufio.ErrBufferFull once limit bytes are in, without
// waiting for its newline.
func TestLineReaderStopsGrowingAtLimit(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	go pw.Write(bytes.Repeat([]byte("x"), 300_000)) //nolint:errcheck // ends with the pipe
	lr := newLineReader(pr)
	lr.limit = 100_000
	b, err := lr.ReadSlice('\n')
	if len(b) != 100_000 || !errors.Is(err, bufio.ErrBufferFull) {
		t.Fatalf("ReadSlice = %d bytes, %v; want 100000 bytes, bufio.ErrBufferFull", len(b), err)
	}
}

// TestReadLineDoesNotCopyChunkLines: a stream chunk's line is handed on as
// a slice of the read buffer.
func TestReadLineDoesNotCopyChunkLines(t *testing.T) {
	var in bytes.Buffer
	chunk := appendData(nil, false, "s1", bytes.Repeat([]byte{7}, MaxChunkSize))
	for range 3 {
		in.Write(chunk)
		in.WriteByte('\n')
	}
	s := NewLineStream(chunkedReader{&in, 65536}, io.Discard, nil, false, nil)
	for i := range 3 {
		line, size, whole, err := s.readLine()
		if err != nil || !whole || size != int64(len(chunk)) || !bytes.Equal(line, chunk) {
			t.Fatalf("line %d: readLine = %d bytes, size %d, whole %v, %v; want the chunk line (%d bytes)", i, len(line), size, whole, err, len(chunk))
		}
		buf := s.r.buf[:cap(s.r.buf)]
		if &line[0] != &buf[len(buf)-cap(line)] {
			t.Errorf("line %d was copied out of the read buffer", i)
		}
	}
}
