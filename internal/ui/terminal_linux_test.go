package ui_test

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/packer-stdio/packer/internal/ui"
	"github.com/packer-stdio/packer/protocol"
)

// openPTY returns the two ends of a new pseudo-terminal of 120x40
// characters: what is written to tty is read from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("skipping: no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(pty.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(pty.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	return pty, tty
}

// TestProgressOnTerminal drives the console on a real (pseudo-)terminal
// and checks what reaches it: a bar with the build's coloured prefix,
// MiB/s and the time left; a line printed by any build while a bar lives
// goes above the bar (the bar is erased, the line printed, the bar drawn
// again); a spinner for an unknown size; and when the transfers are done
// the bars are erased, with no copy left.
func TestProgressOnTerminal(t *testing.T) {
	pty, tty := openPTY(t)
	var screen syncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(&screen, pty) //nolint:errcheck // ends with EIO when tty closes
	}()
	defer func() {
		tty.Close()
		<-copied
		pty.Close()
	}()
	// waitFor waits until the screen shows s: the bars draw on their own
	// goroutine. It asserts an order of events, not a duration.
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(screen.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q; it shows %q", s, screen.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	c := ui.New(ui.Options{Stdout: tty, Stderr: tty, StdoutTerminal: true, Progress: true, Color: true})
	defer c.Close()
	c.Assign("alpha", "beta")
	alpha, beta := c.Build("alpha"), c.Build("beta")
	alpha.Progress(protocol.UIProgressParams{ID: "1", State: protocol.ProgressStart, Label: "big.bin", Total: 64 << 20})
	alpha.Progress(protocol.UIProgressParams{ID: "1", State: protocol.ProgressUpdate, Current: 16 << 20})
	waitFor("16.0 MiB / 64.0 MiB")
	beta.Progress(protocol.UIProgressParams{ID: "2", State: protocol.ProgressStart, Label: "stream", Total: -1})
	beta.Progress(protocol.UIProgressParams{ID: "2", State: protocol.ProgressUpdate, Current: 3 << 20})
	waitFor("3.0 MiB")
	beta.Say("a line from another build")
	alpha.Message("a line from the build itself")
	waitFor("a line from the build itself")
	alpha.Progress(protocol.UIProgressParams{ID: "1", State: protocol.ProgressDone, Current: 64 << 20})
	beta.Progress(protocol.UIProgressParams{ID: "2", State: protocol.ProgressDone, Current: 5 << 20})
	alpha.Say("after the transfers")
	waitFor("after the transfers")
	alpha.Close()
	beta.Close()

	got := screen.String()
	for _, re := range []struct{ name, re string }{
		{"bar: coloured prefix, label, bytes, speed, ETA",
			`    \x1b\[1;32malpha:\x1b\[0m big\.bin +\[[=>-]+\] +16\.0 MiB / 64\.0 MiB +\d+\.\d [KMG]iB/s ETA \d`},
		{"spinner: the other build's colour, bytes, speed",
			`    \x1b\[1;36mbeta:\x1b\[0m stream +\S +3\.0 MiB +\d+\.\d [KMG]iB/s`},
		{"a line of another build erases the bars first",
			`\x1b\[2A\x1b\[J\x1b\[1;36m==> beta: a line from another build`},
		{"the bars are drawn again below the lines",
			`a line from the build itself[^\n]*\n[^\n]*(alpha:|beta:)\x1b\[0m (big\.bin|stream)`},
		{"after the transfers, the bars are erased before the next line",
			`\x1b\[\d+A\x1b\[J\x1b\[1;32m==> alpha: after the transfers`},
	} {
		if !regexp.MustCompile(re.re).MatchString(got) {
			t.Errorf("%s: the terminal shows no match for %s:\n%q", re.name, re.re, got)
		}
	}
	if strings.Contains(got, "p/s") {
		t.Errorf(`the terminal shows "p/s":\n%q`, got)
	}
	if i := strings.LastIndex(got, "big.bin"); i > strings.Index(got, "after the transfers") {
		t.Errorf("a bar is drawn after the transfers are done:\n%q", got)
	}
}
