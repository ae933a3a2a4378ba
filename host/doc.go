// Package host runs packer plugins as child processes and talks to them over
// their stdin and stdout with the protocol in package protocol.
//
// # Lifecycle
//
// [Start] launches a plugin binary with the magic cookie in its environment,
// in its own process group, with three pipes the host owns. It then performs
// the handshake (initialize), bounded by [Options.HandshakeTimeout], and
// returns a [*Plugin] that knows the plugin's components.
//
// The host prepares components with [Plugin.Prepare], which gives an
// [*Instance], and runs it with [Instance.Run] (builders), [Instance.Provision]
// (provisioners) or [Instance.PostProcess] (post-processors). While a call
// runs, the plugin may call back: ui/* go to [Options.UI], hook/run goes to
// [Options.Hook], and communicator/* calls on a handle minted for a Provision
// call go to the [Communicator] given to Provision. When a builder's hook runs
// provisioners in other plugins with the builder's communicator, the bytes
// flow provisioner → host → builder chunk by chunk (the relay).
//
// Cancelling the context of a call sends $/cancelRequest and waits, at most
// [Options.CancelGrace], for the plugin's answer.
//
// [Plugin.Close] ends a plugin gracefully: it sends shutdown, closes the
// plugin's stdin, waits for it to exit, and escalates to SIGTERM and then
// SIGKILL of the whole process group. [Plugin.Kill] kills at once.
//
// # Misbehaving plugins
//
// The connection is strict: the first line on the plugin's stdout that is not
// a valid protocol message ends the connection, and so does an answer to a
// request the host never sent. A plugin that broke the protocol, crashed or
// exited while the host still needed it is killed with its process group; every
// call in flight then returns a [*PluginError] that names the plugin, says what
// happened, carries the exit status or signal and the last lines the plugin
// wrote on stderr.
//
// Plugin stderr is forwarded line by line to [Options.Stderr] as
// "NAME: line"; lines longer than 64 KiB are forwarded in pieces, so memory
// stays bounded whatever the plugin writes.
//
// [Connect] speaks to a plugin over any reader and writer, without a process;
// the in-process test harness in pluginkit/plugintest uses it.
package host
