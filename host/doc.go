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
// [Options.CancelGrace], for the plugin's answer. An answer that comes after
// that is dropped; it is not a protocol violation (a second one is).
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
// How long the host takes to return, at most, when a plugin misbehaves:
//
//   - it crashes, exits, or writes a bad line (garbage, invalid UTF-8, a
//     line over the 4 MiB limit, which is read and discarded without being
//     held, an answer with an unknown or already answered id, or with both
//     result and error): at once, plus the time to read the bad line; the
//     plugin is killed, and its stdout and stderr drained for at most 1 s;
//   - it closes its stdout but keeps running: at once; the process gets 1 s
//     to exit before its group is killed;
//   - it never answers the handshake: [Options.HandshakeTimeout];
//   - it never answers a call: the call's context, then
//     [Options.CancelGrace] after $/cancelRequest;
//   - it ignores shutdown and SIGTERM: [Plugin.Close] takes at most
//     2 × [Options.ShutdownGrace] + [Options.KillGrace], plus the 1 s drain.
//
// A plugin may call the host back at any time while its connection is open,
// also after the request that led to the callback was answered: ui/*
// notifications and requests are served whenever they arrive (a ui/say
// sent after the builder/run answer is shown), since they belong to the
// connection, not to a request. Handles minted for a request are released
// when the host's call returns, right after the answer: a communicator/*
// call on the handle of a provisioner/provision request that was answered
// gets [protocol.ErrUnknownHandle] (one that crosses the answer on the wire
// may still be served). Calls to methods the
// host does not serve get [protocol.ErrMethodNotFound], calls with params
// that do not fit get [protocol.ErrInvalidParams] (a notification with bad
// params is logged to [Options.Stderr]); the plugin stays usable.
//
// # Secrets
//
// Configuration travels to a plugin only in component/prepare, on its
// stdin: never in its arguments or environment. [Options.Tracer] records
// every message, configuration included, so a caller that traces a build
// with secrets must mask the tracer ([protocol.Tracer.WithMask]). The host
// cannot tell a secret from other text: errors and stderr lines are the
// plugin's own words, passed on unchanged, and may quote a secret from the
// configuration; the CLI masks them with the template's masker before
// showing them.
//
// [Connect] speaks to a plugin over any reader and writer, without a process;
// the in-process test harness in pluginkit/plugintest uses it.
package host
