package host

import (
	"context"

	"github.com/packer-stdio/packer/internal/commwire"
	"github.com/packer-stdio/packer/protocol"
)

// UI shows what plugins say to the person running the build. The host calls
// its methods from the connection's goroutines: Say, Message, Error, Machine
// and Progress are called in the order the plugin sent them and must not
// block for long; Ask may block until the person answers or ctx is done.
// An implementation shared by several plugins must be safe for concurrent use.
type UI interface {
	// Say shows a prominent line.
	Say(msg string)
	// Message shows a detail line.
	Message(msg string)
	// Error shows an error line.
	Error(msg string)
	// Machine emits machine-readable output.
	Machine(typ string, data ...string)
	// Ask asks the person a question and returns the answer. ctx is
	// cancelled when the plugin cancels the question or goes away.
	Ask(ctx context.Context, query string) (string, error)
	// Progress reports a transfer's progress.
	Progress(p protocol.UIProgressParams)
}

// RemoteCmd is a command to run through a [Communicator]: Command is the
// command line, run by the remote shell; Stdin is its input and Stdout and
// Stderr receive its output. Stdin, Stdout and Stderr may be nil: no input,
// output discarded. It is the same type as pluginkit.RemoteCmd.
type RemoteCmd = commwire.RemoteCmd

// Communicator is a communicator as the host sees it: the builder's (reached
// through the builder process) or any local implementation. Directories
// travel as tar streams. Every method blocks until the operation has
// finished; cancelling ctx stops it.
//
//   - Start runs a [RemoteCmd], waits for it and returns its exit status (a
//     non-zero status is not an error).
//   - Upload writes a reader to a file with permission bits mode (0: the
//     communicator's default); size is -1 when unknown.
//   - Download writes the contents of a file to a writer.
//   - UploadDir extracts a tar stream into a directory and DownloadDir
//     writes a tar stream of a directory's contents, both skipping entries
//     that match a glob in exclude.
//
// It is the same type as pluginkit.Communicator, so an implementation
// written for plugins serves the host too.
type Communicator = commwire.Communicator

// Hook runs a hook a builder asked for, such as [protocol.HookProvision].
// comm is the builder's communicator (nil when it offered none) and is valid
// only until Run returns. ctx is cancelled when the builder cancels its
// hook/run request or the builder's connection closes.
type Hook interface {
	Run(ctx context.Context, name string, comm Communicator, data map[string]any) error
}

// HookFunc adapts a function to a [Hook].
type HookFunc func(ctx context.Context, name string, comm Communicator, data map[string]any) error

// Run calls f.
func (f HookFunc) Run(ctx context.Context, name string, comm Communicator, data map[string]any) error {
	return f(ctx, name, comm, data)
}

var _ Hook = HookFunc(nil)
