package protocol

import "io"

// RemoteCmd is a command a communicator runs on a machine (the
// communicator/start request and its streams, as a Go value): Command is
// the command line, run by the machine's shell; Stdin is its input and
// Stdout and Stderr receive its output. Stdin, Stdout and Stderr may be
// nil: no input, output discarded. pluginkit.RemoteCmd and host.RemoteCmd
// are this type.
type RemoteCmd struct {
	// Command is the command line, run by the remote shell.
	Command string
	// Stdin is the command's input.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output.
	Stdout, Stderr io.Writer
}
