// Package protocol defines the wire protocol between a packer host and its
// plugins: newline-delimited JSON-RPC 2.0 over the plugin's stdin and stdout.
//
// The package is shared by both ends and knows nothing of either. It holds:
//
//   - the protocol version and the launch environment (version.go);
//   - the error codes, as Go error values comparable with errors.Is (errors.go);
//   - the line framing: one message per line, a size cap, and the rules for
//     malformed input (frame.go), with a one-pass scan of each line's
//     members (scan.go), a one-pass encoder of outgoing messages
//     (encode.go), and the record of the requests sent, against which
//     every answer read is judged (answers.go);
//   - the Go type of every method's params and result (messages.go);
//   - a symmetric connection that dispatches requests, carries cancellation
//     both ways and serves byte streams (conn.go): pulled with stream/read
//     in protocol version 1 (streams.go), pushed as stream/data under
//     credit-based flow control in version 2 (flow.go), whose chunk lines
//     the line reader recognises by their prefix and never hands to the
//     jsonrpc2 connection (chunk.go);
//   - an optional trace of every line sent and received (trace.go).
//
// SPEC.md in the repository root is the normative description; the JSON
// Schemas in schema/ are generated from the types in this package.
package protocol
