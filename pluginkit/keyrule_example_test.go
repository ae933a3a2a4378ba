package pluginkit_test

import (
	"context"
	"fmt"
	"io"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// CopyConfig is the configuration of a builder that writes target from a
// file (source) or from text (content, which may be empty).
type CopyConfig struct {
	pluginkit.PackerConfig
	Target  string  `json:"target" jsonschema:"required"`
	Source  string  `json:"source,omitempty"`
	Content *string `json:"content,omitempty"`
}

// guide:start key-rules
// KeyRules states, in the configuration schema, that exactly one of source
// and content is set: "" does not set source, but it sets content.
func (CopyConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.ExactlyOneOf("source", "content")}
}

// guide:end

type Copy struct{ config CopyConfig }

func (c *Copy) Config() any                { return &c.config }
func (c *Copy) Prepare() ([]string, error) { return nil, nil }
func (c *Copy) Run(context.Context, pluginkit.UI, pluginkit.Hook) (pluginkit.Artifact, error) {
	return nil, nil
}

// A configuration that breaks a key rule is refused before Prepare, with
// an error at each key concerned.
func ExampleKeyRuler() {
	srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-copy", Version: "1.0.0"})
	srv.RegisterBuilder("copy", new(Copy))
	hostR, pluginW := io.Pipe()
	pluginR, hostW := io.Pipe()
	go srv.ServeConn(context.Background(), pluginR, pluginW, pluginW, nil) //nolint:errcheck // ends with p.Close

	ctx := context.Background()
	p, err := host.Connect(ctx, hostR, hostW, hostW, host.Options{Name: "copy"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	for _, cfg := range []map[string]any{
		{"target": "t", "source": "s", "content": "c"},
		{"target": "t", "source": ""},
		{"target": "t", "source": "", "content": ""},
	} {
		_, _, err := p.Prepare(ctx, protocol.TypeBuilder, "copy", cfg)
		fmt.Println(cfg)
		if err == nil {
			fmt.Println("  prepared")
		}
		for _, ce := range host.ConfigErrors(err) {
			fmt.Printf("  %s: %s\n", ce.Path, ce.Message)
		}
	}
	// Output:
	// map[content:c source:s target:t]
	//   /content: only one of source and content may be set; source and content are set
	//   /source: only one of source and content may be set; source and content are set
	// map[source: target:t]
	//   /content: one of source or content is required
	//   /source: one of source or content is required
	// map[content: source: target:t]
	//   prepared
}
