// Command plugin-bench measures this project's plugin protocol against the
// raw pipe floor and prints one table of medians and 99th percentiles:
//
//	go run ./bench/cmd/plugin-bench [-n 2000] [-relay-mb 256] [-flood-mb 100]
//
// Rows from other systems (bench/goplugin, a separate module) are merged in
// with -merge FILE (JSON lines as written by -json). The program re-runs
// itself as the plugin, in the mode named by BENCH_CHILD.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/packer-stdio/packer/bench/internal/report"
	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/localcomm"
	"github.com/packer-stdio/packer/protocol"
)

const envChild = "BENCH_CHILD"

// line is the small request both the pipe floor and the protocol send.
const line = `{"id":1,"jsonrpc":"2.0","method":"echo","params":{"message":"hello"}}`

func main() {
	switch os.Getenv(envChild) {
	case "pipe":
		childPipe()
		return
	case "conn":
		childConn()
		return
	case "kit":
		childKit()
		return
	}
	n := flag.Int("n", 2000, "round trips per latency sample set")
	cold := flag.Int("cold", 30, "cold starts")
	relayMB := flag.Int("relay-mb", 256, "MiB uploaded through the relay")
	floodMB := flag.Int("flood-mb", 100, "MiB a plugin writes to stderr")
	scales := flag.String("scale", "1,10,100", "plugin counts for the scale scenario")
	asJSON := flag.Bool("json", false, "print JSON lines instead of the table")
	merge := flag.String("merge", "", "JSON lines file of rows from other systems to merge in")
	flag.Parse()

	self, err := os.Executable()
	check(err)
	b := &bench{self: self}
	var rows []report.Row
	add := func(rs ...report.Row) { rows = append(rows, rs...) }
	add(b.coldPipe(*cold), b.coldOurs(*cold))
	add(b.rttPipe(*n), b.rttOurs(*n))
	add(b.throughputOurs(*n * 5))
	add(b.relayPipe(*relayMB))
	add(b.relayOurs(*relayMB)...)
	for _, s := range strings.Split(*scales, ",") {
		var k int
		fmt.Sscan(s, &k)
		add(b.scale(k))
	}
	add(b.flood(*floodMB))
	if *merge != "" {
		f, err := os.Open(*merge)
		check(err)
		more, err := report.ReadJSON(f)
		f.Close()
		check(err)
		rows = append(rows, more...)
		sortRows(rows)
	}
	if *asJSON {
		check(report.WriteJSON(os.Stdout, rows))
		return
	}
	fmt.Printf("plugin-bench: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	report.Print(os.Stdout, rows)
}

// sortRows groups rows by scenario, keeping the first appearance order.
func sortRows(rows []report.Row) {
	order := map[string]int{}
	for _, r := range rows {
		if _, ok := order[r.Scenario]; !ok {
			order[r.Scenario] = len(order)
		}
	}
	sortStable(rows, func(a, b report.Row) bool { return order[a.Scenario] < order[b.Scenario] })
}

func sortStable(rows []report.Row, less func(a, b report.Row) bool) {
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && less(rows[j], rows[j-1]); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin-bench:", err)
		os.Exit(1)
	}
}

type bench struct{ self string }

func (b *bench) cmd(mode string, env ...string) *exec.Cmd {
	c := exec.Command(b.self)
	c.Env = append(append(os.Environ(), envChild+"="+mode), env...)
	return c
}

// ---- the raw pipe floor

// childPipe echoes every line; with a first line "sink" it instead counts
// the bytes it reads and answers their number at EOF.
func childPipe() {
	r := bufio.NewReaderSize(os.Stdin, 64<<10)
	w := bufio.NewWriter(os.Stdout)
	for {
		l, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if string(l) == "sink\n" {
			n, _ := io.Copy(io.Discard, r)
			fmt.Fprintln(w, n)
			w.Flush()
			return
		}
		w.Write(l)
		w.Flush()
	}
}

type pipeProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (b *bench) startPipe() *pipeProc {
	c := b.cmd("pipe")
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

func (b *bench) coldPipe(n int) report.Row {
	var ds []time.Duration
	for range n {
		t := time.Now()
		p := b.startPipe()
		p.echo()
		p.stop()
		ds = append(ds, time.Since(t))
	}
	return durRow("1 cold start", "raw pipe", ds, "spawn + one echo + exit")
}

func (b *bench) rttPipe(n int) report.Row {
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
	return durRow("2 round trip, 1 caller", "raw pipe", ds, "echo of the same JSON line")
}

func (b *bench) relayPipe(mb int) report.Row {
	p := b.startPipe()
	chunk := make([]byte, 256<<10)
	t := time.Now()
	_, err := io.WriteString(p.in, "sink\n")
	check(err)
	for range mb * 4 {
		_, err := p.in.Write(chunk)
		check(err)
	}
	p.in.Close()
	_, err = p.out.ReadString('\n')
	check(err)
	el := time.Since(t)
	check(p.cmd.Wait())
	v := float64(mb) / el.Seconds()
	return report.Row{Scenario: "4 bulk transfer", System: "raw pipe", Median: v, Unit: "MiB/s", Note: fmt.Sprintf("%d MiB, one pipe", mb)}
}

// ---- this project over protocol.Conn

func childConn() {
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		return req.Params, nil
	})
	c := protocol.NewConn(os.Stdin, os.Stdout, os.Stdin, h, protocol.Options{})
	<-c.Done()
	c.Wait()
}

type connProc struct {
	cmd  *exec.Cmd
	conn *protocol.Conn
}

func (b *bench) startConn() *connProc {
	c := b.cmd("conn")
	in, err := c.StdinPipe()
	check(err)
	out, err := c.StdoutPipe()
	check(err)
	check(c.Start())
	return &connProc{cmd: c, conn: protocol.NewConn(out, in, in, nil, protocol.Options{Strict: true})}
}

func (p *connProc) stop() {
	p.conn.Close()
	check(p.cmd.Wait())
}

var params = map[string]string{"message": "hello"}

func (b *bench) rttOurs(n int) report.Row {
	p := b.startConn()
	defer p.stop()
	ds := make([]time.Duration, 0, n)
	for i := range n + n/10 {
		t := time.Now()
		check(p.conn.Call(context.Background(), "echo", params, nil))
		if i >= n/10 {
			ds = append(ds, time.Since(t))
		}
	}
	return durRow("2 round trip, 1 caller", "packer-stdio", ds, "protocol.Conn, child process")
}

func (b *bench) throughputOurs(n int) report.Row {
	p := b.startConn()
	defer p.stop()
	var rates []float64
	for range 5 {
		var wg sync.WaitGroup
		t := time.Now()
		for range 16 {
			wg.Go(func() {
				for range n / 16 {
					check(p.conn.Call(context.Background(), "echo", params, nil))
				}
			})
		}
		wg.Wait()
		rates = append(rates, float64(n/16*16)/time.Since(t).Seconds())
	}
	m, lo := report.Values(rates, true)
	return report.Row{Scenario: "3 throughput, 16 callers", System: "packer-stdio", Median: m, P99: lo, Unit: "calls/s", Note: "5 runs; p99 column is the worst run"}
}

// ---- this project through host and pluginkit

// childKit serves a builder that runs the provision hook with a local
// communicator, and a provisioner that uploads BENCH_UPLOAD bytes through
// the communicator it is given; with BENCH_FLOOD it first writes that many
// bytes of log lines to stderr.
func childKit() {
	pluginkit.RegisterBuilder("bench", &kitBuilder{})
	pluginkit.RegisterProvisioner("bench", &kitProv{})
	pluginkit.Serve()
}

type noConfig struct{}

type kitBuilder struct{ cfg noConfig }

func (k *kitBuilder) Config() any                { return &k.cfg }
func (k *kitBuilder) Prepare() ([]string, error) { return nil, nil }
func (k *kitBuilder) Run(ctx context.Context, ui pluginkit.Ui, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	dir, err := os.MkdirTemp("", "plugin-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return nil, hook.Run(ctx, protocol.HookProvision, localcomm.New(dir), nil)
}

type kitProv struct{ cfg noConfig }

func (k *kitProv) Config() any                { return &k.cfg }
func (k *kitProv) Prepare() ([]string, error) { return nil, nil }
func (k *kitProv) Provision(ctx context.Context, ui pluginkit.Ui, comm pluginkit.Communicator, data map[string]any) error {
	var flood int64
	fmt.Sscan(os.Getenv("BENCH_FLOOD"), &flood)
	if flood > 0 {
		l := []byte(strings.Repeat("x", 99) + "\n")
		w := bufio.NewWriterSize(os.Stderr, 64<<10)
		for n := int64(0); n < flood; n += int64(len(l)) {
			w.Write(l)
		}
		w.Flush()
	}
	var size int64
	fmt.Sscan(os.Getenv("BENCH_UPLOAD"), &size)
	if size == 0 {
		return nil
	}
	return comm.Upload(ctx, "upload.bin", io.LimitReader(zeros{}, size), 0o600, size)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func (b *bench) startKit(ctx context.Context, opts host.Options, env ...string) *host.Plugin {
	p, err := host.Start(ctx, b.cmd("kit", env...), opts)
	check(err)
	return p
}

func (b *bench) coldOurs(n int) report.Row {
	var ds []time.Duration
	ctx := context.Background()
	for range n {
		t := time.Now()
		p := b.startKit(ctx, host.Options{})
		_, _, err := p.Prepare(ctx, protocol.TypeProvisioner, "bench")
		check(err)
		check(p.Close())
		ds = append(ds, time.Since(t))
	}
	return durRow("1 cold start", "packer-stdio", ds, "host.Start + handshake + prepare + shutdown + exit")
}

func (b *bench) relayOurs(mb int) []report.Row {
	ctx := context.Background()
	size := int64(mb) << 20
	runtime.GC()
	base := report.RSS()
	s := report.Sample()
	bcmd := b.cmd("kit")
	pcmd := b.cmd("kit", fmt.Sprintf("BENCH_UPLOAD=%d", size))
	var prov *host.Instance
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		return prov.Provision(ctx, comm, data)
	})
	bp, err := host.Start(ctx, bcmd, host.Options{Hook: hook})
	check(err)
	pp, err := host.Start(ctx, pcmd, host.Options{})
	check(err)
	prov, _, err = pp.Prepare(ctx, protocol.TypeProvisioner, "bench")
	check(err)
	bld, _, err := bp.Prepare(ctx, protocol.TypeBuilder, "bench")
	check(err)
	t := time.Now()
	_, runErr := bld.Run(ctx)
	el := time.Since(t)
	check(runErr)
	check(pp.Close())
	check(bp.Close())
	peak := s.Stop()
	v := float64(mb) / el.Seconds()
	note := fmt.Sprintf("%d MiB; peak RSS KiB: host +%d, builder %d, provisioner %d", mb, peak-base, maxRSS(bcmd), maxRSS(pcmd))
	return []report.Row{{Scenario: "4 bulk transfer", System: "packer-stdio", Median: v, Unit: "MiB/s", Note: note}}
}

func (b *bench) scale(n int) report.Row {
	ctx := context.Background()
	runtime.GC()
	base := report.RSS()
	s := report.Sample()
	t := time.Now()
	ps := make([]*host.Plugin, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ps[i] = b.startKit(ctx, host.Options{HandshakeTimeout: time.Minute})
			_, _, err := ps[i].Prepare(ctx, protocol.TypeProvisioner, "bench")
			check(err)
		})
	}
	wg.Wait()
	up := report.RSS()
	for _, p := range ps {
		wg.Go(func() { check(p.Close()) })
	}
	wg.Wait()
	el := time.Since(t)
	peak := s.Stop()
	return report.Row{Scenario: fmt.Sprintf("5 scale, %d plugins", n), System: "packer-stdio", Median: float64(el.Microseconds()) / 1e3, Unit: "ms",
		Note: fmt.Sprintf("host RSS +%d KiB with all running (%.0f KiB/plugin), peak +%d", up-base, float64(up-base)/float64(n), peak-base)}
}

type countWriter struct {
	mu sync.Mutex
	n  int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += int64(len(p))
	w.mu.Unlock()
	return len(p), nil
}

func (b *bench) flood(mb int) report.Row {
	ctx := context.Background()
	runtime.GC()
	base := report.RSS()
	s := report.Sample()
	var cw countWriter
	t := time.Now()
	p := b.startKit(ctx, host.Options{Stderr: &cw}, fmt.Sprintf("BENCH_FLOOD=%d", int64(mb)<<20))
	inst, _, err := p.Prepare(ctx, protocol.TypeProvisioner, "bench")
	check(err)
	check(inst.Provision(ctx, nil, nil))
	check(p.Close())
	el := time.Since(t)
	peak := s.Stop()
	return report.Row{Scenario: "6 stderr flood", System: "packer-stdio", Median: float64(mb) / el.Seconds(), Unit: "MiB/s",
		Note: fmt.Sprintf("%d MiB logged, %d MiB forwarded; host peak RSS +%d KiB", mb, cw.n>>20, peak-base)}
}

func durRow(scenario, system string, ds []time.Duration, note string) report.Row {
	m, p := report.Durations(ds)
	return report.Row{Scenario: scenario, System: system, Median: m, P99: p, Unit: "µs", Note: fmt.Sprintf("%s; n=%d", note, len(ds))}
}
