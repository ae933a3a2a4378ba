package host

import (
	"context"
	"io"
	"io/fs"

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
// output discarded. It is [protocol.RemoteCmd], as pluginkit.RemoteCmd is.
type RemoteCmd = protocol.RemoteCmd

// Communicator is a communicator as the host sees it: the builder's (reached
// through the builder process) or any local implementation. Every method
// blocks until the operation has finished; cancelling ctx stops it.
// pluginkit.Communicator has the same methods, so an implementation written
// for plugins serves the host too.
type Communicator interface {
	// Start runs cmd, waits for it and returns its exit status. A non-zero
	// status is not an error; err reports a failure to run it.
	Start(ctx context.Context, cmd *RemoteCmd) (exitStatus int, err error)
	// Upload writes the size bytes of src (size -1 when unknown) to the
	// file dst, with permission bits mode (0: the communicator's default).
	Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error
	// Download writes the contents of the file src to dst.
	Download(ctx context.Context, src string, dst io.Writer) error
	// UploadDir extracts the tar stream archive under the directory dst,
	// skipping entries whose names match a glob (path.Match) in exclude.
	UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error
	// DownloadDir writes a tar stream of the contents of the directory src
	// to archive, skipping entries whose names match a glob in exclude.
	DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error
}

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
