// Package pluginkit is the library a Go plugin author uses to serve
// builders, provisioners and post-processors to packer over the stdio
// protocol (see package protocol and SPEC.md).
//
// A plugin's main registers its components and calls [Serve]:
//
//	func main() {
//		pluginkit.RegisterBuilder("example", new(Builder))
//		pluginkit.RegisterProvisioner("example-shell", new(ShellProvisioner))
//		pluginkit.Serve() // never returns
//	}
//
// # Lifecycle
//
// packer starts the plugin with [protocol.EnvMagicCookie] set; without it
// Serve explains on stderr what the program is and exits 1. Serve keeps
// the real stdout for protocol messages only and points os.Stdout at
// stderr, so stray prints become log lines. Everything on stderr is
// forwarded by the host to the user.
//
// The host first sends initialize; until it succeeds every other request
// is answered with [protocol.ErrNotInitialized] and notifications are
// ignored, and a second initialize is an invalid request. The answer lists
// every registered component with the JSON Schema of its configuration,
// reflected from the struct its Config method returns (required fields are
// tagged `jsonschema:"required"`; unknown keys are rejected; the packer_*
// keys of [PackerConfig] are always accepted; the rules of a [KeyRuler],
// such as exactly one of source and content, are part of it).
//
// component/prepare merges the configuration objects (later keys win),
// validates them against the schema (each violation is a [ConfigError] with
// a JSON Pointer path), decodes them into a fresh instance (see
// [Server.RegisterBuilder]) and calls Prepare. The instance handle it
// answers names the instance in builder/run, provisioner/provision and
// postprocessor/postprocess. Artifacts a builder or post-processor returns
// get handles for artifact/destroy.
//
// Component methods run concurrently, each with a context that is
// cancelled when the host sends $/cancelRequest for that request, when it
// sends shutdown, or when the connection ends. A method that returns an
// error after its context was cancelled is answered with
// [protocol.ErrCancelled]; any other error with
// [protocol.ErrComponentFailed] carrying the error's text (a *protocol.Error
// returned as is keeps its code). A panic in a component method is
// recovered: its value and stack go to stderr, the host gets
// [protocol.ErrComponentPanicked], and the plugin keeps serving (a panic on
// a goroutine the component started itself still kills the process).
//
// shutdown cancels every running method, waits for them (at most
// [WorkGrace]), answers, and from then on answers
// [protocol.ErrShuttingDown]; Serve exits 0 once the host closes stdin (or
// two seconds after the answer). End of stdin without shutdown cancels
// running methods, waits for them the same way, and exits 0.
//
// # Callbacks
//
// UI sends ui/* notifications and ui/ask requests to the host. A builder's
// Hook calls hook/run; the Communicator it passes is offered to the host
// under a handle valid until hook/run is answered, and pluginkit serves the
// host's communicator/* calls on it, moving bytes through stream handles.
// A provisioner's Communicator calls communicator/* on the host. Package
// localcomm is a Communicator for the local machine.
package pluginkit
