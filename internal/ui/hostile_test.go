package ui_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/ui"
)

// TestNeutralize: what a plugin says cannot move the cursor, clear the
// screen, set the title or pose as another build's line.
func TestNeutralize(t *testing.T) {
	tests := []struct {
		name, in, want string
		reason         string
	}{
		{"plain", "hello\tworld é", "hello\tworld é", "tabs and printable Unicode stay"},
		{"carriage return", "ok\r==> other-build: fake", `ok\r==> other-build: fake`, "\\r would go back over the prefix"},
		{"clear screen", "\x1b[2J\x1b[Hgone", `\x1b[2J\x1b[Hgone`, "cursor and erase sequences are shown, not run"},
		{"window title", "\x1b]0;pwned\x07x", `\x1b]0;pwned\x07x`, "OSC and BEL"},
		{"backspace", "abc\b\b\bxyz", `abc\x08\x08\x08xyz`, ""},
		{"newline", "a\nb", `a\nb`, "one line stays one line"},
		{"colour kept", "\x1b[1;32mgreen\x1b[0m", "\x1b[1;32mgreen\x1b[0m\x1b[0m", "SGR colours are kept, with a reset at the end"},
		{"conceal reset", "\x1b[8mhidden", "\x1b[8mhidden\x1b[0m", "a colour cannot run into the next lines"},
		{"C1 control", "a\u009bb", `a\x9bb`, "CSI as one C1 character"},
		{"bidi override", "evil\u202egnp.exe", `evil\u202egnp.exe`, "right-to-left override"},
		{"invalid UTF-8", "a\xffb", `a\xffb`, ""},
		{"DEL", "a\x7fb", `a\x7fb`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ui.Neutralize(tt.in)); diff != "" {
				t.Errorf("Neutralize(%q) (-want +got):\n%s\n%s", tt.in, diff, tt.reason)
			}
		})
	}
}

// TestControlCharactersInLines: each line keeps its build prefix whatever
// the message holds, and machine-readable fields escape control characters.
func TestControlCharactersInLines(t *testing.T) {
	now := func() time.Time { return time.Unix(1714979289, 0) }
	var stdout, stderr strings.Builder
	u := ui.New(ui.Options{Stdout: &stdout, Stderr: &stderr, Now: now}).Build("web")
	u.Say("step\r==> db: fake step")
	u.Message("line one\r\nline two\x1b[2K")
	want := "==> web: step\\r==> db: fake step\n    web: line one\n    web: line two\\x1b[2K\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}

	stdout.Reset()
	m := ui.New(ui.Options{Stdout: &stdout, Stderr: &stderr, Now: now, MachineReadable: true}).Build("web")
	m.Say("a,b\r\n\x1b]0;t\x07")
	m.Machine("artifact", "0", "string", "x\n1714979289,db,artifact,0,string,fake")
	want = "1714979289,web,ui,say,a%!(PACKER_COMMA)b\\r\\n\\x1b]0;t\\x07\n" +
		"1714979289,web,artifact,0,string,x\\n1714979289%!(PACKER_COMMA)db%!(PACKER_COMMA)artifact%!(PACKER_COMMA)0%!(PACKER_COMMA)string%!(PACKER_COMMA)fake\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("machine-readable stdout (-want +got):\n%s", diff)
	}
}

// lockedBuilder is a strings.Builder safe for the concurrent writes of
// Ask and the test reading it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls until s() contains want.
func waitFor(t *testing.T, s func() string, want string) {
	t.Helper()
	for !strings.Contains(s(), want) {
		select {
		case <-t.Context().Done():
			t.Fatalf("never saw %q in %q", want, s())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestAskAfterCancelledAsk: a question cancelled before its answer came
// does not leave a reader behind that takes the next question's answer
// (issue 11 item 16; before, the second Ask waited forever and -race saw
// two goroutines reading the same bufio.Reader).
func TestAskAfterCancelledAsk(t *testing.T) {
	in, typist := io.Pipe()
	defer typist.Close()
	var out lockedBuilder
	c := ui.New(ui.Options{Stdout: &out, Stderr: &out, Stdin: in})
	defer c.Close()
	u := c.Build("web")

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := u.Ask(ctx, "first?")
		first <- err
	}()
	waitFor(t, out.String, "first?")
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Ask: %v; want context.Canceled", err)
	}

	// A generous bound that turns a hang into a failure.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel2()
	type result struct {
		s   string
		err error
	}
	second := make(chan result, 1)
	go func() {
		s, err := u.Ask(ctx2, "second?")
		second <- result{s, err}
	}()
	waitFor(t, out.String, "second?")
	if _, err := io.WriteString(typist, "yes\n"); err != nil {
		t.Fatal(err)
	}
	if r := <-second; r.err != nil || r.s != "yes" {
		t.Fatalf("second Ask = %q, %v; want \"yes\"", r.s, r.err)
	}
	typist.Close()
	if _, err := u.Ask(t.Context(), "third?"); err == nil {
		t.Error("Ask after the end of input succeeded")
	}
}

// TestAskWaitingForItsTurnCanBeCancelled: questions are asked one at a
// time, and one waiting for its turn returns as soon as it is cancelled,
// not when the question before it is answered.
func TestAskWaitingForItsTurnCanBeCancelled(t *testing.T) {
	in, typist := io.Pipe()
	defer typist.Close()
	var out lockedBuilder
	c := ui.New(ui.Options{Stdout: &out, Stderr: &out, Stdin: in})
	defer c.Close()
	first := make(chan string, 1)
	go func() {
		s, _ := c.Build("a").Ask(t.Context(), "first?")
		first <- s
	}()
	waitFor(t, out.String, "first?")
	ctx, cancel := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() {
		_, err := c.Build("b").Ask(ctx, "second?")
		second <- err
	}()
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Ask: %v; want context.Canceled", err)
		}
	case <-time.After(30 * time.Second): // a bound that turns a hang into a failure
		t.Fatal("a cancelled Ask waited for the question before it")
	}
	if strings.Contains(out.String(), "second?") {
		t.Errorf("the cancelled question was shown: %q", out.String())
	}
	io.WriteString(typist, "one\n")
	if s := <-first; s != "one" {
		t.Errorf("first Ask = %q; want \"one\"", s)
	}
}
