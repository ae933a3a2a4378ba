// Command plugin-bench measures this project's plugin protocol against the
// operating system's floor and against hashicorp/go-plugin, and prints one
// table of medians and 99th percentiles with ratios to go-plugin's net/rpc
// and to the floor. From the repository root, the whole table:
//
//	go run ./bench/cmd/plugin-bench -goplugin bench/goplugin
//
// Every scenario runs -reps times (default 3), the systems interleaved
// (this project's scenarios, then go-plugin's, then again); the table shows
// each row's median over the repetitions. Scenarios:
//
//  1. cold start: spawn, handshake, one call (component/prepare with its
//     configuration validation), shutdown, exit; the floor is a tiny Go
//     binary that echoes one line.
//  2. round trip of one small call, one caller; floor: one pipe echo.
//  3. throughput with 16 concurrent callers.
//  4. relay of -relay-mb MiB (a list: 256,1024,4096) from a provisioner
//     through the host to a builder's local communicator, which writes a
//     file; floors: one pipe, and two hops (process -> pipe -> host ->
//     pipe -> process -> file). Peak RSS of every process from
//     /proc/PID/status (VmHWM) read before it exits.
//  5. scale: N plugins started and driven at once.
//  6. stderr flood.
//  7. -say ui/say notifications from one plugin, until the host's UI has
//     shown them all.
//  8. packer build: the null builder's local communicator and the file
//     provisioner upload -e2e-mb MiB; floor: cp of the same file, in the
//     same run.
//
// -json prints the rows as JSON lines; -merge FILE adds rows from such a
// file (several repetitions of a row are reduced to their median). The
// program re-runs itself as the plugin, in the mode named by BENCH_CHILD.
// The machine is what it is: the header names it, and a shared machine's
// numbers move between runs.
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
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	case "conn":
		childConn()
		return
	case "kit":
		childKit()
		return
	}
	n := flag.Int("n", 2000, "round trips per latency sample set")
	cold := flag.Int("cold", 30, "cold starts")
	relayMB := flag.String("relay-mb", "256", "MiB uploaded through the relay, a comma-separated list of sizes")
	floodMB := flag.Int("flood-mb", 100, "MiB a plugin writes to stderr")
	scales := flag.String("scale", "1,10,100", "plugin counts for the scale scenario")
	says := flag.Int("say", 100000, "ui/say notifications sent by one plugin")
	e2eMB := flag.Int("e2e-mb", 1024, "MiB uploaded by packer build with the file provisioner (0: skip)")
	reps := flag.Int("reps", 3, "repetitions of every scenario; the table shows medians")
	goplugin := flag.String("goplugin", "", "directory of the bench/goplugin module: build it and interleave its runs")
	asJSON := flag.Bool("json", false, "print JSON lines instead of the table")
	merge := flag.String("merge", "", "JSON lines file of rows from other systems to merge in")
	cpuprofile := flag.String("cpuprofile", "", "write this process's (the host's) CPU profile to this file")
	flag.StringVar(&sayProfile, "say-cpuprofile", "", "write the CPU profile of the plugin sending ui/say (scenario 7) to this file")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer func() {
			pprof.StopCPUProfile()
			check(f.Close())
		}()
	}

	self, err := os.Executable()
	check(err)
	dir, err := os.MkdirTemp("", "plugin-bench")
	check(err)
	defer os.RemoveAll(dir)
	b := &bench{self: self, dir: dir}
	b.tiny, err = buildTiny(dir)
	check(err)
	var sizes []int
	for _, s := range strings.Split(*relayMB, ",") {
		mb, err := strconv.Atoi(strings.TrimSpace(s))
		check(err)
		sizes = append(sizes, mb)
	}
	var counts []int
	for _, s := range strings.Split(*scales, ",") {
		if s = strings.TrimSpace(s); s != "" {
			k, err := strconv.Atoi(s)
			check(err)
			counts = append(counts, k)
		}
	}
	var gp string
	if *goplugin != "" {
		gp, err = buildGoPlugin(*goplugin, dir)
		check(err)
	}
	var e2e *e2eSetup
	if *e2eMB > 0 {
		e2e, err = setupE2E(dir, *e2eMB)
		check(err)
	}

	var rows []report.Row
	for rep := range *reps {
		fmt.Fprintf(os.Stderr, "plugin-bench: repetition %d of %d\n", rep+1, *reps)
		add := func(rs ...report.Row) { rows = append(rows, rs...) }
		add(b.coldFloor(*cold), b.coldOurs(*cold))
		add(b.rttFloor(*n), b.rttOurs(*n))
		add(b.throughputOurs(*n * 5))
		for _, mb := range sizes {
			add(b.onePipe(mb), b.twoHops(mb, dir), b.relayOurs(mb))
		}
		for _, k := range counts {
			add(b.scale(k))
		}
		add(b.flood(*floodMB))
		add(b.say(*says))
		if e2e != nil {
			add(e2e.cp(), e2e.build())
		}
		if gp != "" {
			more, err := runGoPlugin(gp, *n, *cold, *scales, *relayMB)
			check(err)
			add(more...)
		}
	}
	if *merge != "" {
		f, err := os.Open(*merge)
		check(err)
		more, err := report.ReadJSON(f)
		f.Close()
		check(err)
		rows = append(rows, more...)
	}
	rows = report.Merge(rows)
	if *asJSON {
		check(report.WriteJSON(os.Stdout, rows))
		return
	}
	fmt.Printf("plugin-bench: %s/%s, %d CPUs, %s, %s, %d repetitions\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version(), *reps)
	report.Print(os.Stdout, rows)
}

// cpuModel names the processor, from /proc/cpuinfo where there is one.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin-bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	self string // this program, re-run as the plugin
	tiny string // the floor program
	dir  string // scratch space
}

func (b *bench) cmd(mode string, env ...string) *exec.Cmd {
	c := exec.Command(b.self)
	c.Env = append(append(os.Environ(), envChild+"="+mode), env...)
	return c
}

// ---- this project over protocol.Conn

func childConn() {
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		return req.Params, nil
	})
	in, out := pollableStdio()
	c := protocol.NewConn(in, out, in, h, protocol.Options{})
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
// bytes of log lines to stderr, with BENCH_SAY it first sends that many
// ui/say.
func childKit() {
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		check(err)
		check(pprof.StartCPUProfile(f))
		// Serve exits the process: Provision stops the profile.
		stopProfile = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
	}
	pluginkit.RegisterBuilder("bench", &kitBuilder{})
	pluginkit.RegisterProvisioner("bench", &kitProv{})
	pluginkit.Serve()
}

// kitConfig is a configuration like a real provisioner's, so that a cold
// start pays schema reflection and validation as a real one does.
type kitConfig struct {
	Source      string            `json:"source,omitempty" jsonschema:"description=File to upload."`
	Destination string            `json:"destination" jsonschema:"required,minLength=1"`
	Direction   string            `json:"direction,omitempty" jsonschema:"enum=upload,enum=download"`
	Mode        int               `json:"mode,omitempty" jsonschema:"minimum=0,maximum=511"`
	Env         map[string]string `json:"env,omitempty"`
	Exclude     []string          `json:"exclude,omitempty"`
}

// kitSettings is the configuration every bench prepare sends.
var kitSettings = map[string]any{"destination": "upload.bin", "direction": "upload", "mode": 384, "env": map[string]string{"A": "1"}}

type kitBuilder struct{ cfg kitConfig }

func (k *kitBuilder) Config() any                { return &k.cfg }
func (k *kitBuilder) Prepare() ([]string, error) { return nil, nil }
func (k *kitBuilder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	dir, err := os.MkdirTemp("", "plugin-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return nil, hook.Run(ctx, protocol.HookProvision, localcomm.New(dir), nil)
}

type kitProv struct{ cfg kitConfig }

func (k *kitProv) Config() any                { return &k.cfg }
func (k *kitProv) Prepare() ([]string, error) { return nil, nil }
func (k *kitProv) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, data map[string]any) error {
	defer stopProfile()
	var flood, says int64
	fmt.Sscan(os.Getenv("BENCH_FLOOD"), &flood)
	if flood > 0 {
		l := []byte(strings.Repeat("x", 99) + "\n")
		w := bufio.NewWriterSize(os.Stderr, 64<<10)
		for n := int64(0); n < flood; n += int64(len(l)) {
			w.Write(l)
		}
		w.Flush()
	}
	fmt.Sscan(os.Getenv("BENCH_SAY"), &says)
	for i := range says {
		ui.Say("step " + strconv.FormatInt(i, 10) + " of the provisioner's work is done")
	}
	var size int64
	fmt.Sscan(os.Getenv("BENCH_UPLOAD"), &size)
	if size == 0 {
		return nil
	}
	return comm.Upload(ctx, k.cfg.Destination, io.LimitReader(zeros{}, size), 0o600, size)
}

// stopProfile ends the CPU profile BENCH_CPUPROFILE asked for.
var stopProfile = func() {}

// sayProfile is -say-cpuprofile.
var sayProfile string

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
		_, _, err := p.Prepare(ctx, protocol.TypeProvisioner, "bench", kitSettings)
		check(err)
		check(p.Close())
		ds = append(ds, time.Since(t))
	}
	return durRow("1 cold start", "packer-stdio", ds, "host.Start + handshake + prepare (6-key schema, validated) + shutdown + exit")
}

func (b *bench) relayOurs(mb int) report.Row {
	ctx := context.Background()
	size := int64(mb) << 20
	runtime.GC()
	base := report.RSS()
	s := report.Sample()
	bcmd := b.cmd("kit")
	pcmd := b.cmd("kit", fmt.Sprintf("BENCH_UPLOAD=%d", size))
	var prov *host.Instance
	var provRSS int64
	hook := host.HookFunc(func(ctx context.Context, name string, comm host.Communicator, data map[string]any) error {
		err := prov.Provision(ctx, comm, data)
		provRSS = report.PeakRSS(pcmd.Process.Pid)
		return err
	})
	bp, err := host.Start(ctx, bcmd, host.Options{Hook: hook})
	check(err)
	pp, err := host.Start(ctx, pcmd, host.Options{})
	check(err)
	prov, _, err = pp.Prepare(ctx, protocol.TypeProvisioner, "bench", kitSettings)
	check(err)
	bld, _, err := bp.Prepare(ctx, protocol.TypeBuilder, "bench", kitSettings)
	check(err)
	t := time.Now()
	_, runErr := bld.Run(ctx)
	el := time.Since(t)
	check(runErr)
	bldRSS := report.PeakRSS(bcmd.Process.Pid)
	check(pp.Close())
	check(bp.Close())
	peak := s.Stop()
	return report.Row{Scenario: relayScenario(mb), System: "packer-stdio", Median: float64(mb) / el.Seconds(), Unit: "MiB/s",
		Note: fmt.Sprintf("peak RSS KiB: host +%d, provisioner %d, builder %d", peak-base, provRSS, bldRSS)}
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
			_, _, err := ps[i].Prepare(ctx, protocol.TypeProvisioner, "bench", kitSettings)
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

// sayUI counts the lines it is asked to say and writes them, as a terminal
// UI would, to a buffered writer (here io.Discard).
type sayUI struct {
	mu   sync.Mutex
	w    *bufio.Writer
	n    atomic.Int64
	done chan struct{}
	want int64
}

func (u *sayUI) Say(msg string) {
	u.mu.Lock()
	u.w.WriteString("==> ")
	u.w.WriteString(msg)
	u.w.WriteByte('\n')
	u.mu.Unlock()
	if u.n.Add(1) == u.want {
		u.mu.Lock()
		u.w.Flush()
		u.mu.Unlock()
		close(u.done)
	}
}
func (u *sayUI) Message(string)                              {}
func (u *sayUI) Error(string)                                {}
func (u *sayUI) Machine(string, ...string)                   {}
func (u *sayUI) Ask(context.Context, string) (string, error) { return "", protocol.ErrUnsupported }
func (u *sayUI) Progress(protocol.UIProgressParams)          {}

// say times n ui/say from one plugin's Provision until the host's UI has
// shown the last one.
func (b *bench) say(n int) report.Row {
	ctx := context.Background()
	u := &sayUI{w: bufio.NewWriter(io.Discard), done: make(chan struct{}), want: int64(n)}
	env := []string{fmt.Sprintf("BENCH_SAY=%d", n)}
	if sayProfile != "" {
		env = append(env, "BENCH_CPUPROFILE="+sayProfile)
	}
	p := b.startKit(ctx, host.Options{UI: u}, env...)
	inst, _, err := p.Prepare(ctx, protocol.TypeProvisioner, "bench", kitSettings)
	check(err)
	t := time.Now()
	check(inst.Provision(ctx, nil, nil))
	returned, shown := time.Since(t), u.n.Load()
	select {
	case <-u.done:
	case <-time.After(time.Minute):
		check(fmt.Errorf("ui/say: the host showed %d of %d in a minute", u.n.Load(), n))
	}
	el := time.Since(t)
	check(p.Close())
	return report.Row{Scenario: fmt.Sprintf("7 ui/say x%d, one plugin", n), System: "packer-stdio", Median: float64(el.Microseconds()) / 1e3, Unit: "ms",
		Note: fmt.Sprintf("from Provision's call until the host's UI has shown the last line; Provision returned after %d ms with %d shown", returned.Milliseconds(), shown)}
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
	inst, _, err := p.Prepare(ctx, protocol.TypeProvisioner, "bench", kitSettings)
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
