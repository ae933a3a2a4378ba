// Command goplugin measures hashicorp/go-plugin, over net/rpc and over gRPC,
// in the scenarios and units of the main module's plugin-bench, so that its
// rows can be merged into that table:
//
//	cd bench/goplugin && go run . -json > /tmp/goplugin.jsonl
//	cd ../.. && go run ./bench/cmd/plugin-bench -merge /tmp/goplugin.jsonl
//
// Scenarios: 1 cold start (spawn, handshake, dispense, one call, Kill, which
// waits for the exit), 2 round trip of one small call with one caller,
// 3 throughput with 16 concurrent callers on one plugin, 4 relay of
// -relay-mb MiB from a provisioner plugin through this host to a builder
// plugin that writes a file (relay.go), 5 scale (N plugins started and
// driven at once by this host). Both sides log to a null logger.
// plugin-bench -goplugin DIR builds this module and runs it itself,
// interleaved with its own repetitions.
//
// It is a separate module so the main module never depends on go-plugin. The
// program re-runs itself as the plugin, with the transport named by
// BENCH_GOPLUGIN_CHILD ("netrpc" or "grpc").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

const envChild = "BENCH_GOPLUGIN_CHILD"

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BENCH_GOPLUGIN_COOKIE",
	MagicCookieValue: "4a1c0e6f-bench",
}

// the payload plugin-bench's echo carries as params.
var payload = Msg{Message: "hello"}

func main() {
	switch os.Getenv(envChild) {
	case "netrpc":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: handshake,
			Plugins:         plugin.PluginSet{"echo": rpcPlugin{}},
			Logger:          hclog.NewNullLogger(),
		})
		return
	case "grpc":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: handshake,
			Plugins:         plugin.PluginSet{"echo": grpcPlugin{}},
			GRPCServer:      plugin.DefaultGRPCServer,
			Logger:          hclog.NewNullLogger(),
		})
		return
	}
	n := flag.Int("n", 2000, "round trips per latency sample set")
	cold := flag.Int("cold", 30, "cold starts")
	scales := flag.String("scale", "1,10,100", "plugin counts for the scale scenario (empty: skip)")
	relayMB := flag.String("relay-mb", "256", "MiB moved through the relay, a comma-separated list of sizes (empty: skip)")
	asJSON := flag.Bool("json", false, "print JSON lines (for plugin-bench -merge) instead of the table")
	flag.Parse()

	self, err := os.Executable()
	check(err)
	var rows []Row
	for _, tr := range []transport{
		{system: "go-plugin net/rpc", mode: "netrpc", proto: plugin.ProtocolNetRPC},
		{system: "go-plugin gRPC", mode: "grpc", proto: plugin.ProtocolGRPC},
	} {
		tr.self = self
		rows = append(rows, tr.cold(*cold), tr.rtt(*n), tr.throughput(*n*5))
		for _, s := range strings.Split(*relayMB, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			var mb int
			_, err := fmt.Sscan(s, &mb)
			check(err)
			rows = append(rows, tr.relay(mb))
		}
		if *scales != "" {
			for _, s := range strings.Split(*scales, ",") {
				var k int
				_, err := fmt.Sscan(s, &k)
				check(err)
				rows = append(rows, tr.scale(k))
			}
		}
	}
	// Group by scenario, as plugin-bench does.
	order := map[string]int{}
	for _, r := range rows {
		if _, ok := order[r.Scenario]; !ok {
			order[r.Scenario] = len(order)
		}
	}
	sorted := make([]Row, 0, len(rows))
	for i := range len(order) {
		for _, r := range rows {
			if order[r.Scenario] == i {
				sorted = append(sorted, r)
			}
		}
	}
	if *asJSON {
		check(writeJSON(os.Stdout, sorted))
		return
	}
	fmt.Printf("goplugin: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Printf("%-34s %-18s %14s %14s  %-8s %s\n", "scenario", "system", "median", "p99", "unit", "note")
	for _, r := range sorted {
		fmt.Printf("%-34s %-18s %14.1f %14.1f  %-8s %s\n", r.Scenario, r.System, r.Median, r.P99, r.Unit, r.Note)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "goplugin:", err)
		os.Exit(1)
	}
}

// transport is one way of running the echo plugin under go-plugin.
type transport struct {
	system string // row's system name
	mode   string // value of envChild for the plugin process
	proto  plugin.Protocol
	self   string
}

// plug is one running plugin and the echoer dispensed from it.
type plug struct {
	client *plugin.Client
	echo   echoer
	pid    int
}

// start spawns the plugin, completes the handshake and dispenses echo.
func (tr *transport) start() *plug {
	cmd := exec.Command(tr.self)
	cmd.Env = []string{envChild + "=" + tr.mode} // go-plugin appends os.Environ()
	var plugins plugin.PluginSet
	if tr.proto == plugin.ProtocolGRPC {
		plugins = plugin.PluginSet{"echo": grpcPlugin{}}
	} else {
		plugins = plugin.PluginSet{"echo": rpcPlugin{}}
	}
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugins,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{tr.proto},
		Logger:           hclog.NewNullLogger(),
		StartTimeout:     time.Minute,
	})
	rc, err := c.Client()
	check(err)
	raw, err := rc.Dispense("echo")
	check(err)
	return &plug{client: c, echo: raw.(echoer), pid: cmd.Process.Pid}
}

func (p *plug) call() {
	out, err := p.echo.Echo(context.Background(), payload)
	check(err)
	if out != payload {
		check(fmt.Errorf("echo returned %+v, want %+v", out, payload))
	}
}

// stop shuts the plugin down; Kill closes the client gracefully and waits
// for the process to exit.
func (p *plug) stop() {
	p.client.Kill()
	if !p.client.Exited() {
		check(fmt.Errorf("plugin has not exited after Kill"))
	}
}

func (tr *transport) cold(n int) Row {
	var ds []time.Duration
	for range n {
		t := time.Now()
		p := tr.start()
		p.call()
		p.stop()
		ds = append(ds, time.Since(t))
	}
	return durRow("1 cold start", tr.system, ds, "NewClient + handshake + Dispense + one call + Kill + exit")
}

func (tr *transport) rtt(n int) Row {
	p := tr.start()
	defer p.stop()
	ds := make([]time.Duration, 0, n)
	for i := range n + n/10 {
		t := time.Now()
		p.call()
		if i >= n/10 {
			ds = append(ds, time.Since(t))
		}
	}
	return durRow("2 round trip, 1 caller", tr.system, ds, `echo of {"message":"hello"}, child process`)
}

func (tr *transport) throughput(n int) Row {
	p := tr.start()
	defer p.stop()
	var rates []float64
	for range 5 {
		var wg sync.WaitGroup
		t := time.Now()
		for range 16 {
			wg.Go(func() {
				for range n / 16 {
					p.call()
				}
			})
		}
		wg.Wait()
		rates = append(rates, float64(n/16*16)/time.Since(t).Seconds())
	}
	m, lo := values(rates)
	return Row{Scenario: "3 throughput, 16 callers", System: tr.system, Median: m, P99: lo, Unit: "calls/s", Note: "5 runs; p99 column is the worst run"}
}

func (tr *transport) scale(n int) Row {
	runtime.GC()
	base := rss()
	s := sample()
	t := time.Now()
	ps := make([]*plug, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ps[i] = tr.start()
			ps[i].call()
		})
	}
	wg.Wait()
	up := rss()
	for _, p := range ps {
		wg.Go(p.stop)
	}
	wg.Wait()
	el := time.Since(t)
	peak := s.end()
	return Row{Scenario: fmt.Sprintf("5 scale, %d plugins", n), System: tr.system, Median: float64(el.Microseconds()) / 1e3, Unit: "ms",
		Note: fmt.Sprintf("host RSS +%d KiB with all running (%.0f KiB/plugin), peak +%d", up-base, float64(up-base)/float64(n), peak-base)}
}

func durRow(scenario, system string, ds []time.Duration, note string) Row {
	m, p := durations(ds)
	return Row{Scenario: scenario, System: system, Median: m, P99: p, Unit: "µs", Note: fmt.Sprintf("%s; n=%d", note, len(ds))}
}
