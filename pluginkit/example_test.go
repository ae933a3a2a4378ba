package pluginkit_test

import (
	"context"
	"fmt"
	"io"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/protocol"
)

// GreeterConfig is the configuration of Greeter: its JSON Schema, sent in
// the handshake, is reflected from these tags.
type GreeterConfig struct {
	pluginkit.PackerConfig
	Name string `json:"name" jsonschema:"required,description=Who to greet."`
}

// Greeter is a builder that says hello and makes an artifact.
type Greeter struct{ config GreeterConfig }

func (g *Greeter) Config() any { return &g.config }

func (g *Greeter) Prepare() ([]string, error) {
	if g.config.Name == "world" {
		return []string{"greeting the whole world"}, nil
	}
	return nil, nil
}

func (g *Greeter) Run(ctx context.Context, ui pluginkit.UI, hook pluginkit.Hook) (pluginkit.Artifact, error) {
	ui.Say("Hello, " + g.config.Name + "!")
	return &pluginkit.BasicArtifact{BuilderIDValue: "example.greeter", IDValue: g.config.Name, StringValue: "a greeting"}, nil
}

// printUI shows what the plugin says.
type printUI struct{}

func (printUI) Say(msg string)                              { fmt.Println("say:", msg) }
func (printUI) Message(msg string)                          { fmt.Println("message:", msg) }
func (printUI) Error(msg string)                            { fmt.Println("error:", msg) }
func (printUI) Machine(string, ...string)                   {}
func (printUI) Ask(context.Context, string) (string, error) { return "", nil }
func (printUI) Progress(protocol.UIProgressParams)          {}

// A plugin's components served with ServeConn and driven by a host over
// in-memory pipes: the same bytes a plugin process exchanges on its stdin
// and stdout, without building a binary. (In main, a plugin calls
// pluginkit.RegisterBuilder and pluginkit.Serve instead.)
func ExampleServer_ServeConn() {
	srv := pluginkit.NewServer(protocol.Peer{Name: "packer-plugin-greeter", Version: "1.0.0"})
	srv.RegisterBuilder("greeter", new(Greeter))

	hostR, pluginW := io.Pipe()
	pluginR, hostW := io.Pipe()
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), pluginR, pluginW, pluginW, nil) }()

	ctx := context.Background()
	p, err := host.Connect(ctx, hostR, hostW, hostW, host.Options{Name: "greeter", UI: printUI{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range p.Components() {
		fmt.Println("component:", c.Type, c.Name)
	}
	if _, _, err := p.Prepare(ctx, protocol.TypeBuilder, "greeter", map[string]any{}); err != nil {
		for _, ce := range host.ConfigErrors(err) {
			fmt.Printf("config error at %s: %s\n", ce.Path, ce.Message)
		}
	}
	inst, warnings, err := p.Prepare(ctx, protocol.TypeBuilder, "greeter", map[string]any{"name": "world"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("warnings:", warnings)
	art, err := inst.Run(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("artifact:", art.BuilderID, art.ID)
	p.Close()
	fmt.Println("served:", <-served)
	// Output:
	// component: builder greeter
	// config error at /name: missing required key
	// warnings: [greeting the whole world]
	// say: Hello, world!
	// artifact: example.greeter world
	// served: <nil>
}

// A plugin's main: register each component under the name templates use
// (with the binary named packer-plugin-NAME, as NAME-COMPONENT), then serve.
// Serve never returns; packer starts the binary and speaks the protocol on
// its stdin and stdout. Run by hand, the binary explains what it is.
func ExampleRegisterBuilder() {
	pluginkit.RegisterBuilder("greeter", new(Greeter))
	// pluginkit.RegisterProvisioner("greeter-shell", new(Shell))
	// pluginkit.RegisterPostProcessor("greeter-manifest", new(Manifest))
	pluginkit.Serve()
}

// A builder returns a BasicArtifact when it needs no type of its own:
// packer shows String, lists Files, and calls Destroy (through
// artifact/destroy) when the artifact is not kept.
func ExampleBasicArtifact() {
	art := &pluginkit.BasicArtifact{
		BuilderIDValue: "example.greeter",
		IDValue:        "greeting-1",
		StringValue:    "a greeting in out/greeting.txt",
		FilesValue:     []string{"out/greeting.txt"},
		StateValue:     map[string]any{"language": "en"},
		DestroyFunc: func(context.Context) error {
			fmt.Println("removing out/greeting.txt")
			return nil
		},
	}
	var a pluginkit.Artifact = art
	fmt.Println(a.BuilderID(), a.ID(), a.Files(), a.State()["language"])
	fmt.Println(a.String())
	if err := a.Destroy(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// example.greeter greeting-1 [out/greeting.txt] en
	// a greeting in out/greeting.txt
	// removing out/greeting.txt
}
