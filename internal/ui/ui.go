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

	"github.com/cheggaaa/pb/v3"
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
	// Mask, if not nil, is applied to every string before it is shown.
	Mask func(string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console is shared by all builds of one packer run; Build returns the UI of
// one build. It is safe for concurrent use.
type Console struct {
	o      Options
	mu     sync.Mutex // one line at a time
	askMu  sync.Mutex // one question at a time
	stdin  *bufio.Reader
	colors map[string]string // build name -> its colour, for its whole life
}

// New returns a Console.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Mask == nil {
		o.Mask = func(s string) string { return s }
	}
	c := &Console{o: o, colors: map[string]string{}}
	if o.Stdin != nil {
		c.stdin = bufio.NewReader(o.Stdin)
	}
	return c
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
	return &BuildUI{c: c, name: name, color: color, bars: map[string]*pb.ProgressBar{}}
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

	barMu sync.Mutex
	bars  map[string]*pb.ProgressBar
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
	io.WriteString(w, b.String()) //nolint:errcheck // nowhere to report a console write error
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
	io.WriteString(c.o.Stdout, strings.Join(fields, ",")+"\n") //nolint:errcheck
}

func escape(s string) string {
	s = strings.ReplaceAll(s, ",", commaE)
	s = strings.ReplaceAll(s, "\r", "\\r")
	return strings.ReplaceAll(s, "\n", "\\n")
}

// Ask shows query and reads one line from the console's input. Questions
// from concurrent builds are asked one at a time.
func (u *BuildUI) Ask(ctx context.Context, query string) (string, error) {
	c := u.c
	if c.stdin == nil || c.o.MachineReadable {
		return "", protocol.ErrUnsupported.WithMessage("cannot ask %q: no terminal to answer", query)
	}
	c.askMu.Lock()
	defer c.askMu.Unlock()
	u.line(c.o.Stdout, "==>", query, false)
	type answer struct {
		s   string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		s, err := c.stdin.ReadString('\n')
		ch <- answer{strings.TrimRight(s, "\r\n"), err}
	}()
	select {
	case a := <-ch:
		if a.err != nil && a.s == "" {
			return "", fmt.Errorf("reading answer: %w", a.err)
		}
		return a.s, nil
	case <-ctx.Done():
		// The reading goroutine ends with the next line or at exit; the
		// console stays usable because answers are read one at a time.
		return "", ctx.Err()
	}
}

// Progress shows a progress bar per transfer when progress bars are on.
func (u *BuildUI) Progress(p protocol.UIProgressParams) {
	if !u.c.o.Progress {
		return
	}
	u.barMu.Lock()
	defer u.barMu.Unlock()
	bar := u.bars[p.ID]
	switch p.State {
	case protocol.ProgressStart:
		if bar != nil {
			return
		}
		total := p.Total
		if total < 0 {
			total = 0
		}
		bar = pb.New64(total).Set(pb.Bytes, true).SetWriter(u.c.o.Stderr)
		bar.Set("prefix", u.c.o.Mask(u.name+": "+p.Label+" "))
		bar.SetCurrent(p.Current)
		bar.Start()
		u.bars[p.ID] = bar
	case protocol.ProgressUpdate:
		if bar != nil {
			bar.SetCurrent(p.Current)
		}
	case protocol.ProgressDone:
		if bar != nil {
			bar.SetCurrent(p.Current)
			bar.Finish()
			delete(u.bars, p.ID)
		}
	}
}

// Close finishes any progress bar a plugin left open.
func (u *BuildUI) Close() {
	u.barMu.Lock()
	defer u.barMu.Unlock()
	for id, bar := range u.bars {
		bar.Finish()
		delete(u.bars, id)
	}
}
