package conformance_test

// The data source fixture: a pluginkit plugin serving one component of
// each type, started when CONFORMANCE_FIXTURE names a "datasource-" mode.
// Pluginkit conforms, so each mode passes every check but the one it
// breaks on purpose:
//
//   - datasource-baseline breaks nothing;
//   - datasource-no-output-schema drops the data source's output_schema
//     from the handshake (handshake/output-schema);
//   - datasource-bad-output returns an output its schema forbids
//     (run/datasource).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

func init() {
	mode := os.Getenv(fixtureEnv)
	if !strings.HasPrefix(mode, "datasource-") {
		return
	}
	s := pluginkit.NewServer(protocol.Peer{Name: "datasource-fixture", Version: "1"})
	s.RegisterBuilder("b", &dsBuilder{})
	s.RegisterProvisioner("p", &dsProvisioner{})
	s.RegisterPostProcessor("pp", &dsPostProcessor{})
	s.RegisterDatasource("d", &dsDatasource{bad: mode == "datasource-bad-output"})
	if mode == "datasource-no-output-schema" {
		// Serve through a pipe whose reader drops output_schema from the
		// handshake answer.
		pr, pw := io.Pipe()
		go func() {
			sc := bufio.NewScanner(pr)
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				line := sc.Bytes()
				if bytes.Contains(line, []byte(`"output_schema"`)) {
					var m map[string]any
					if json.Unmarshal(line, &m) == nil {
						if res, ok := m["result"].(map[string]any); ok {
							for _, c := range res["components"].([]any) {
								delete(c.(map[string]any), "output_schema")
							}
						}
						line, _ = json.Marshal(m)
					}
				}
				os.Stdout.Write(append(line, '\n'))
			}
		}()
		if os.Getenv(protocol.EnvMagicCookie) != protocol.MagicCookieValue {
			os.Stderr.WriteString("This is a packer plugin (conformance fixture). It is started by packer; do not run it by hand.\n")
			os.Exit(1)
		}
		// SIGTERM ends the session, as pluginkit.Serve makes it (SPEC §9.3).
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		err := s.ServeConn(ctx, os.Stdin, pw, os.Stdin, nil)
		stop()
		pw.Close()
		if err != nil && ctx.Err() == nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	s.Serve()
}

type dsConfig struct {
	pluginkit.PackerConfig
	Value string `json:"value,omitempty"`
}

type dsBuilder struct{ cfg dsConfig }

func (b *dsBuilder) Config() any                { return &b.cfg }
func (b *dsBuilder) Prepare() ([]string, error) { return nil, nil }
func (b *dsBuilder) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	return &pluginkit.BasicArtifact{BuilderIDValue: "fixture.b", IDValue: "b", StringValue: "fixture", FilesValue: []string{}}, nil
}

type dsProvisioner struct{ cfg dsConfig }

func (p *dsProvisioner) Config() any                { return &p.cfg }
func (p *dsProvisioner) Prepare() ([]string, error) { return nil, nil }
func (p *dsProvisioner) Provision(context.Context, pluginkit.UI, pluginkit.Communicator, map[string]any) error {
	return nil
}

type dsPostProcessor struct{ cfg dsConfig }

func (p *dsPostProcessor) Config() any                { return &p.cfg }
func (p *dsPostProcessor) Prepare() ([]string, error) { return nil, nil }
func (p *dsPostProcessor) PostProcess(_ context.Context, _ pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	return nil, true, false, nil
}

type dsOutput struct {
	Echo  string `json:"echo"`
	Count int    `json:"count"`
}

type dsDatasource struct {
	cfg dsConfig
	bad bool
}

func (d *dsDatasource) Config() any                { return &d.cfg }
func (d *dsDatasource) Prepare() ([]string, error) { return nil, nil }
func (d *dsDatasource) Output() any                { return &dsOutput{} }
func (d *dsDatasource) Execute(context.Context) (any, error) {
	if d.bad {
		return map[string]any{"echo": d.cfg.Value, "count": "three"}, nil
	}
	return &dsOutput{Echo: d.cfg.Value, Count: 3}, nil
}
