// Package ui is what a person running packer sees: every line a build's
// plugins say, prefixed with the build name (coloured per build on a
// terminal), machine-readable output, progress bars and questions answered
// from the terminal. Every line passes through a masker first, so values of
// sensitive variables never reach the screen.
package ui

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/protocol"
)

// Options configure a [Console].
type Options struct {
	Stdout, Stderr io.Writer
	// Stdin answers Ask. Nil makes Ask fail.
	Stdin io.Reader
	// Color colours the prefix of each build's lines.
	Color bool
	// Timestamps prefixes each line with the time (-timestamp-ui).
	Timestamps bool
	// MachineReadable prints Packer's "timestamp,target,type,data..." lines
	// on Stdout instead of human-readable output (-machine-readable).
	MachineReadable bool
	// Progress shows progress bars on Stderr (a terminal).
	Progress bool
	// StdoutTerminal says that Stdout is a terminal too, presumably the
	// one Stderr is: while bars are shown, lines for Stdout are then
	// printed above the bars, like those for Stderr, so that they do not
	// break the bars' redrawing.
	StdoutTerminal bool
	// Mask, if not nil, is applied to every string before it is shown.
	Mask func(string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console is shared by all builds of one packer run; Build returns the UI of
// one build. It is safe for concurrent use.
type Console struct {
	o      Options
	mu     sync.Mutex        // one line at a time
	colors map[string]string // build name -> its colour, for its whole life

	// The progress bars of every build share one container, which
	// redraws them at the bottom of Stderr and prints lines above them.
	// It lives while a bar does. Guarded by mu.
	bars     *mpb.Progress
	liveBars int

	// Answers: one goroutine reads Stdin, a line at a time and only when
	// a question wants one, and hands it to whoever asks next. A
	// question cancelled before its line came does not lose the line:
	// the next question gets it.
	asking   chan struct{} // holds the one question being asked; guards reading
	reading  bool          // a line was asked for and not yet taken
	want     chan struct{} // asks the reader for one more line
	answers  chan answer
	done     chan struct{} // closed by Close
	ended    chan struct{} // closed when the reader stops; then endErr says why
	endErr   error
	closeOne sync.Once
	startOne sync.Once
}

// answer is one line read from Stdin.
type answer struct {
	s   string
	err error
}

// New returns a Console.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Mask == nil {
		o.Mask = func(s string) string { return s }
	}
	return &Console{o: o, colors: map[string]string{}, asking: make(chan struct{}, 1), want: make(chan struct{}), answers: make(chan answer),
		done: make(chan struct{}), ended: make(chan struct{})}
}

// Close stops the goroutine that reads answers, if one was started; it
// does not close Stdin (a read already under way ends with the next line,
// or with Stdin). After Close, Ask fails. Close may be called more than
// once.
func (c *Console) Close() {
	c.closeOne.Do(func() { close(c.done) })
}

// readAnswers reads one line of in for each request on want and sends it
// on answers, until in fails or the console is closed.
func (c *Console) readAnswers(in io.Reader) {
	c.endErr = errClosed
	defer close(c.ended)
	r := bufio.NewReader(in)
	for {
		select {
		case <-c.want:
		case <-c.done:
			return
		}
		s, err := r.ReadString('\n')
		select {
		case c.answers <- answer{strings.TrimRight(s, "\r\n"), err}:
		case <-c.done:
			return
		}
		if err != nil {
			c.endErr = fmt.Errorf("reading answer: %w", err)
			return
		}
	}
}

// Colours cycled through for build prefixes, as Packer does.
var palette = []string{"\x1b[1;32m", "\x1b[1;36m", "\x1b[1;35m", "\x1b[1;33m", "\x1b[1;34m"}

const (
	reset  = "\x1b[0m"
	red    = "\x1b[1;31m"
	bold   = "\x1b[1m"
	commaE = "%!(PACKER_COMMA)"
)

// Build returns the UI for the build (or "target") named name. An empty name
// gives an unprefixed UI for packer's own messages. A build keeps the colour
// it got first, in every UI returned for it: the palette is dealt out in
// the order builds first ask, which is their sorted order when the caller
// asks for every build up front (see [Console.Assign]).
func (c *Console) Build(name string) *BuildUI {
	c.mu.Lock()
	color := c.colorOf(name)
	c.mu.Unlock()
	return &BuildUI{c: c, name: name, color: color, bars: map[string]*mpb.Bar{}}
}

// Assign gives each build its colour now, in the order given, as Packer
// colours builds by their position in the run.
func (c *Console) Assign(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		c.colorOf(n)
	}
}

// colorOf returns name's colour, dealing it the next one of the palette the
// first time. c.mu is held.
func (c *Console) colorOf(name string) string {
	if name == "" {
		return bold
	}
	color, ok := c.colors[name]
	if !ok {
		color = palette[len(c.colors)%len(palette)]
		c.colors[name] = color
	}
	return color
}

// BuildUI is one build's view of the console. It implements host.UI.
type BuildUI struct {
	c     *Console
	name  string
	color string

	barMu      sync.Mutex
	bars       map[string]*mpb.Bar
	overflowed bool // the line about too many bars was shown
	closed     bool
}

var _ host.UI = (*BuildUI)(nil)

func (u *BuildUI) line(w io.Writer, marker, msg string, isErr bool) {
	c := u.c
	msg = c.o.Mask(msg)
	var b strings.Builder
	if marker != "" {
		msg = strings.TrimRight(msg, "\n")
	} // a plain message is kept whole, as Packer's Say prints "Variables:\n": a title and a blank line
	for _, l := range strings.Split(msg, "\n") {
		l = Neutralize(strings.TrimSuffix(l, "\r"))
		if c.o.Timestamps {
			b.WriteString(c.o.Now().Format(time.RFC3339))
			b.WriteString(": ") // Packer's -timestamp-ui layout
		}
		prefix := marker
		if u.name != "" && marker != "" {
			prefix += " " + u.name + ":"
		}
		switch {
		case prefix == "" && c.o.Color && isErr:
			b.WriteString(red + l + reset)
		case prefix == "" && c.o.Color && l != "":
			b.WriteString(u.color + l + reset)
		case prefix == "":
			b.WriteString(l) // a plain line, as it is
		case c.o.Color && isErr:
			b.WriteString(red + prefix + " " + l + reset)
		case c.o.Color && marker == "==>":
			b.WriteString(u.color + prefix + " " + l + reset)
		case c.o.Color:
			b.WriteString(u.color + prefix + reset + " " + l)
		default:
			b.WriteString(prefix + " " + l)
		}
		b.WriteString("\n")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write(w, b.String())
}

// write writes s to w, above the progress bars when they are shown on
// the terminal w is. c.mu is held.
func (c *Console) write(w io.Writer, s string) {
	if c.bars != nil && (w == c.o.Stderr || (w == c.o.Stdout && c.o.StdoutTerminal)) {
		if _, err := io.WriteString(c.bars, s); err == nil {
			return
		} // the container stopped drawing (the terminal failed): write past it
	}
	io.WriteString(w, s) //nolint:errcheck // nowhere to report a console write error
}

// Say shows a prominent line: "==> name: msg".
func (u *BuildUI) Say(msg string) {
	if u.c.o.MachineReadable {
		u.Machine("ui", "say", msg)
		return
	}
	u.line(u.c.o.Stdout, "==>", msg, false)
}

// Message shows a detail line: "    name: msg".
func (u *BuildUI) Message(msg string) {
	if u.c.o.MachineReadable {
		u.Machine("ui", "message", msg)
		return
	}
	u.line(u.c.o.Stdout, "   ", msg, false)
}

// Plain shows msg as it is, without the "==> name:" prefix, on stdout (on
// stderr when isErr, in red on a terminal; otherwise in the build's colour):
// the summary's "Build 'name' finished" and "--> name: artifact" lines.
// Every line of msg is masked.
func (u *BuildUI) Plain(msg string, isErr bool) {
	if u.c.o.MachineReadable {
		kind := "say"
		if isErr {
			kind = "error"
		}
		u.c.machine("", "ui", kind, msg) // untargeted, as Packer prints it
		return
	}
	w := u.c.o.Stdout
	if isErr {
		w = u.c.o.Stderr
	}
	u.line(w, "", msg, isErr)
}

// Error shows an error line on stderr.
func (u *BuildUI) Error(msg string) {
	if u.c.o.MachineReadable {
		u.Machine("ui", "error", msg)
		return
	}
	u.line(u.c.o.Stderr, "==>", msg, true)
}

// Machine prints a machine-readable line when that mode is on, and nothing
// otherwise, as Packer does.
func (u *BuildUI) Machine(typ string, data ...string) {
	u.c.machine(u.name, typ, data...)
}

// machine prints one machine-readable line for target.
func (c *Console) machine(target, typ string, data ...string) {
	if !c.o.MachineReadable {
		return
	}
	fields := []string{fmt.Sprint(c.o.Now().Unix()), escape(target), escape(typ)}
	for _, d := range data {
		fields = append(fields, escape(c.o.Mask(d)))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write(c.o.Stdout, strings.Join(fields, ",")+"\n")
}

// escape makes s one field of a machine-readable line, as Packer does:
// commas become %!(PACKER_COMMA), "\r" and "\n" the two characters \r and
// \n. Other control characters, which Packer passes through, are escaped
// too (see [Neutralize]): these lines are often read on a terminal.
func escape(s string) string {
	s = strings.ReplaceAll(s, ",", commaE)
	return escapeControls(s, false)
}

// Neutralize returns s made safe to print on a terminal as (part of) one
// line: every control character that could move the cursor, erase the
// screen, set the window title or otherwise change what is already shown
// (carriage return, backspace, escape sequences, C1 controls, Unicode
// line separators and bidirectional overrides) is shown as an escape
// (\r, \x1b, \u202e), and a newline as \n, so text from a plugin cannot
// overwrite the build prefix or pose as another build's line. Tabs are
// kept, and so are colour sequences (ESC [ digits ; ... m), with a reset
// added at the end of the line so that their effect stops there.
func Neutralize(s string) string { return escapeControls(s, true) }

func escapeControls(s string, keepColour bool) string {
	clean := utf8.ValidString(s) // a stray 0x9b is CSI to some terminals
	for _, r := range s {
		if needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	coloured := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b && keepColour {
			if n := sgrLen(s[i:]); n > 0 {
				b.WriteString(s[i : i+n])
				coloured = true
				i += n
				continue
			}
		}
		switch {
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	if coloured {
		b.WriteString(reset)
	}
	return b.String()
}

// needsEscape reports whether r is a control character other than tab, or
// a Unicode character that changes how the rest of the line is laid out.
func needsEscape(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional embeddings, overrides, isolates and marks
	}
	return false
}

// sgrLen returns the length of the colour sequence (ESC [ params m, params
// only digits and ';') at the start of s, or 0.
func sgrLen(s string) int {
	if len(s) < 3 || s[0] != 0x1b || s[1] != '[' {
		return 0
	}
	for i := 2; i < len(s) && i < 64; i++ {
		switch c := s[i]; {
		case c == 'm':
			return i + 1
		case c == ';' || (c >= '0' && c <= '9'):
		default:
			return 0
		}
	}
	return 0
}

// Ask shows query and reads one line from the console's input. Questions
// from concurrent builds are asked one at a time. When ctx is done first,
// Ask returns ctx.Err(); the line being read then goes to the next
// question.
func (u *BuildUI) Ask(ctx context.Context, query string) (string, error) {
	c := u.c
	if c.o.Stdin == nil || c.o.MachineReadable {
		return "", protocol.ErrUnsupported.WithMessage("cannot ask %q: no terminal to answer", query)
	}
	c.startOne.Do(func() { go c.readAnswers(c.o.Stdin) })
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-c.ended:
		return "", c.endErr
	default:
	}
	select { // a question waiting for its turn can be cancelled
	case c.asking <- struct{}{}:
		defer func() { <-c.asking }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	u.line(c.o.Stdout, "==>", query, false)
	if !c.reading {
		select {
		case c.want <- struct{}{}:
			c.reading = true
		case <-c.ended:
			return "", c.endErr
		case <-c.done:
			return "", errClosed
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	select {
	case a := <-c.answers:
		c.reading = false
		if a.err != nil && a.s == "" {
			return "", fmt.Errorf("reading answer: %w", a.err)
		}
		return a.s, nil
	case <-c.ended:
		return "", c.endErr
	case <-c.done:
		return "", errClosed
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// errClosed is Ask's error after [Console.Close].
var errClosed = protocol.ErrUnsupported.WithMessage("the console is closed")

// MaxBars is how many progress bars one build shows at once. A transfer
// that starts while that many are live is not shown as a bar: the build
// gets one line saying so, and nothing else is kept for it. Each bar
// redraws itself on the terminal several times a second; a plugin that
// starts thousands and never finishes them would otherwise take the
// terminal, the memory and packer's exit with it.
const MaxBars = 4

// Progress shows a progress bar per transfer when progress bars are on, at
// most [MaxBars] at a time per build. Each bar starts with the build's
// name in the build's colour and the transfer's label, and shows the
// bytes done, the speed (MiB/s) and the time left; a transfer of unknown
// size (total -1) shows a spinner, the bytes done and the speed. The bars
// of all builds are drawn together below the other lines, which are
// printed above them while they live, and each bar is removed from the
// terminal when its transfer is done.
func (u *BuildUI) Progress(p protocol.UIProgressParams) {
	if !u.c.o.Progress {
		return
	}
	u.barMu.Lock()
	defer u.barMu.Unlock()
	bar := u.bars[p.ID]
	switch p.State {
	case protocol.ProgressStart:
		if bar != nil || u.closed {
			return
		}
		if len(u.bars) >= MaxBars {
			if !u.overflowed {
				u.overflowed = true
				u.line(u.c.o.Stderr, "   ", fmt.Sprintf("more than %d transfers at once: the others are not shown as progress bars", MaxBars), false)
			}
			return
		}
		u.bars[p.ID] = u.c.startBar(u.barName(p.Label), p.Total, p.Current)
	case protocol.ProgressUpdate:
		if bar != nil {
			bar.SetCurrent(p.Current)
		}
	case protocol.ProgressDone:
		if bar != nil {
			bar.SetCurrent(p.Current)
			u.c.endBar(bar, false)
			delete(u.bars, p.ID)
		}
	}
}

// barName is what a bar of u's build shows before the bar: the build's
// name in its colour (as its "==> name:" lines), then the transfer's
// label, both masked and neutralised.
func (u *BuildUI) barName(label string) string {
	label = Neutralize(u.c.o.Mask(label))
	if u.name == "" {
		return label
	}
	name := Neutralize(u.c.o.Mask(u.name)) + ":"
	if u.c.o.Color {
		name = u.color + name + reset
	}
	return "    " + name + " " + label
}

// startBar shows a bar named name for a transfer of total bytes (-1:
// unknown, shown as a spinner), current of them done, starting the bars'
// container when it is the first live bar.
//
// A bar is made with an unknown total, the known one only shown
// (SetTotal without completing), so that it is complete, and removed,
// only when [Console.endBar] says so: a line printed after the last byte
// and before the end cannot then be left in the container's buffer.
func (c *Console) startBar(name string, total, current int64) *mpb.Bar {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bars == nil {
		// Auto refresh: the container draws, and prints the lines
		// written to it, even when Stderr is not a terminal (tests).
		c.bars = mpb.New(mpb.WithConsoleWriter(terminalWriter{cupwriter.New(c.o.Stderr, false)}), mpb.WithAutoRefresh(), mpb.WithWidth(100))
	}
	c.liveBars++
	speed := averageSpeed(time.Now())
	var bar *mpb.Bar
	if total < 0 {
		bar = c.bars.New(0, mpb.SpinnerStyle().PositionLeft(), mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Current(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace), speed))
	} else {
		bar = c.bars.New(0, mpb.BarStyle(), mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(
				decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace), speed,
				decor.Name(" ETA"), decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace)))
		bar.SetTotal(total, false)
	}
	bar.SetCurrent(current)
	return bar
}

// averageSpeed shows the bytes per second since start, as "12.3 MiB/s".
// Unlike mpb's AverageSpeed it also shows in the last frame of a bar that
// completed before it was first drawn (a transfer shorter than one redraw).
func averageSpeed(start time.Time) decor.Decorator {
	return decor.Any(func(s decor.Statistics) string {
		secs := time.Since(start).Seconds()
		if secs <= 0 {
			return ""
		}
		return fmt.Sprintf("% .1f/s", decor.SizeB1024(float64(s.Current)/secs))
	}, decor.WCSyncSpace)
}

// terminalWriter is mpb's terminal writer with a size for a terminal that
// has none: a pseudo-terminal whose size was never set (script(1) makes
// one when its input is not a terminal) says 0x0, and mpb would draw no
// bar in 0 columns.
type terminalWriter struct{ *cupwriter.Writer }

func (w terminalWriter) GetTermSize() (width, height int, err error) {
	width, height, err = w.Writer.GetTermSize()
	if err != nil || width <= 0 || height <= 0 {
		return 80, 24, nil
	}
	return width, height, nil
}

// endBar completes bar (removing it from the terminal) or, with abort,
// drops it; when it was the last live bar, the container draws for the
// last time, printing the lines written to it, and stops.
func (c *Console) endBar(bar *mpb.Bar, abort bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if abort {
		bar.Abort(true)
	} else {
		bar.SetTotal(-1, true) // complete at the bytes done
	}
	c.liveBars--
	if c.liveBars == 0 {
		c.bars.Wait()
		c.bars = nil
	}
}

// Close removes any progress bar a plugin left open; no bar starts after
// it.
func (u *BuildUI) Close() {
	u.barMu.Lock()
	defer u.barMu.Unlock()
	u.closed = true
	for id, bar := range u.bars {
		u.c.endBar(bar, true)
		delete(u.bars, id)
	}
}
