package main

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/packer-stdio/packer/bench/internal/report"
)

// The floors: what the operating system costs for each scenario, measured
// with a tiny Go program built apart (tiny/main.go.txt), so that a floor
// never pays this module's package init.

//go:embed tiny/main.go.txt
var tinySource string

// buildTiny builds the floor program into dir and returns its path.
func buildTiny(dir string) (string, error) {
	src := filepath.Join(dir, "tiny-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(tinySource), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tiny")
	c := exec.Command("go", "build", "-o", bin, ".")
	c.Dir = src
	c.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the floor program: %w\n%s", err, out)
	}
	return bin, nil
}

type pipeProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (b *bench) startPipe() *pipeProc {
	c := exec.Command(b.tiny, "echo")
	in, err := c.StdinPipe()
	check(err)
	out, err := c.StdoutPipe()
	check(err)
	check(c.Start())
	return &pipeProc{cmd: c, in: in, out: bufio.NewReader(out)}
}

func (p *pipeProc) echo() {
	_, err := io.WriteString(p.in, line+"\n")
	check(err)
	_, err = p.out.ReadSlice('\n')
	check(err)
}

func (p *pipeProc) stop() {
	p.in.Close()
	check(p.cmd.Wait())
}

func (b *bench) coldFloor(n int) report.Row {
	var ds []time.Duration
	for range n {
		t := time.Now()
		p := b.startPipe()
		p.echo()
		p.stop()
		ds = append(ds, time.Since(t))
	}
	r := durRow("1 cold start", "floor: tiny Go binary", ds, "spawn + one echo + exit")
	r.Floor = true
	return r
}

func (b *bench) rttFloor(n int) report.Row {
	p := b.startPipe()
	defer p.stop()
	ds := make([]time.Duration, 0, n)
	for i := range n + n/10 {
		t := time.Now()
		p.echo()
		if i >= n/10 {
			ds = append(ds, time.Since(t))
		}
	}
	r := durRow("2 round trip, 1 caller", "floor: one pipe", ds, "echo of the same JSON line by the tiny binary")
	r.Floor = true
	return r
}

// onePipe writes mb MiB into one pipe to a process that discards them.
func (b *bench) onePipe(mb int) report.Row {
	p := b.startPipe()
	pid := p.cmd.Process.Pid
	chunk := make([]byte, 256<<10)
	t := time.Now()
	_, err := io.WriteString(p.in, "sink\n")
	check(err)
	for range mb * 4 {
		_, err := p.in.Write(chunk)
		check(err)
	}
	rss := report.PeakRSS(pid)
	p.in.Close()
	got, err := p.out.ReadString('\n')
	check(err)
	el := time.Since(t)
	check(p.cmd.Wait())
	checkCount(got, int64(mb)<<20)
	return report.Row{Scenario: relayScenario(mb), System: "floor: one pipe", Median: float64(mb) / el.Seconds(), Unit: "MiB/s", Floor: true,
		Note: fmt.Sprintf("host -> pipe -> process; reader peak RSS %d KiB", rss)}
}

// twoHops moves mb MiB the way the relay does, without any protocol:
// a process writes them to a pipe, this process copies them to a second
// pipe, and a third process writes them to a file.
func (b *bench) twoHops(mb int, dir string) report.Row {
	size := int64(mb) << 20
	gen := exec.Command(b.tiny, "gen", strconv.FormatInt(size, 10))
	sink := exec.Command(b.tiny, "file", filepath.Join(dir, "two-hops.bin"))
	from, err := gen.StdoutPipe()
	check(err)
	to, err := sink.StdinPipe()
	check(err)
	var got strings.Builder
	sink.Stdout = &got
	t := time.Now()
	check(gen.Start())
	check(sink.Start())
	_, err = io.CopyBuffer(to, from, make([]byte, 256<<10))
	check(err)
	check(to.Close())
	check(gen.Wait())
	check(sink.Wait())
	el := time.Since(t)
	checkCount(got.String(), size)
	check(os.Remove(filepath.Join(dir, "two-hops.bin")))
	return report.Row{Scenario: relayScenario(mb), System: "floor: two hops", Median: float64(mb) / el.Seconds(), Unit: "MiB/s", Floor: true,
		Note: "process -> pipe -> host -> pipe -> process -> file"}
}

func checkCount(line string, want int64) {
	n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	check(err)
	if n != want {
		check(fmt.Errorf("moved %d bytes, want %d", n, want))
	}
}

// relayScenario names scenario 4 at a size; bench/goplugin names it the
// same way.
func relayScenario(mb int) string { return "4 relay " + size(mb) }
