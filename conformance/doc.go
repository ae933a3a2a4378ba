// Package conformance checks that a plugin binary speaks the protocol of
// SPEC.md, by driving it as a host would through its own raw line reader and
// writer — not through package host — so that it can send malformed and
// edge-case bytes and see exactly what comes back.
//
// The catalogue ([Catalogue]) holds checks with a stable id
// ("framing/parse-error"), the SPEC.md section whose rule each enforces and
// a level, MUST or SHOULD. [Run] runs the selected checks one after the
// other. Each check starts fresh plugin processes (in their own process
// group, with the magic cookie unless the check is about its absence), is
// bounded by a timeout after which the group is killed, and keeps a
// transcript of every line sent and received and of the plugin's stderr.
//
// While a check runs, the runner is the host: it answers the plugin's
// callbacks as described on hostSide (ui/* recorded, ui/ask answered,
// hook/run answered at once, a local communicator in a temporary directory
// for provisioners). It offers protocol versions [2, 1], as packer does: with
// a plugin that picks 2 its byte streams follow SPEC §7.5.2 through the
// runner's own engine (stream2.go), which records every stream rule the
// plugin breaks with the offending line, and the streams/* checks provoke
// and judge those rules; a plugin that picks 1 skips them, and its bytes
// move by §7.5.1. Components that need a real configuration get one
// through [Config.Configs]; without it, a component whose prepare with {}
// fails is skipped by the checks that must run it.
//
// Host mode checks a host instead: [RunHost] runs the host command once per
// scenario of the selected host checks ([HostCatalogue]; checks with the
// same scenario share a run), each time in a fresh directory holding a
// scripted plugin (the runner's own binary, started with [ScriptedPluginArg]; a
// program embedding the runner calls [MaybeServeScriptedPlugin] first) and
// a template, then judges the lines each scripted plugin process received
// and sent, its end of input and the signals it got. The checks of the byte
// streams (hoststreams.go) have the scripted builder offer a communicator
// and the scripted provisioner move bytes through the host's relay to it
// (scripted_comm.go), in whichever protocol version each session chose.
//
// A [Report] prints as a table grouped by SPEC.md section, JSON or JUnit
// XML. cmd/plugin-conformance is the command-line front end.
package conformance
