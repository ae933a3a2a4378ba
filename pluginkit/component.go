package pluginkit

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

// Configurable is what every component has.
type Configurable interface {
	// Config returns a pointer to the struct the configuration decodes into.
	// pluginkit reflects its JSON Schema (invopop/jsonschema) once, at
	// registration, for the handshake; at component/prepare it validates the
	// merged configuration objects against that schema, decodes them into
	// the pointer Config returns on the fresh instance, then calls Prepare.
	Config() any
	// Prepare checks the decoded configuration. It returns warnings, and an
	// error: use [ConfigErrors] for several errors with JSON-pointer paths;
	// any other error becomes one [ConfigError] with an empty path.
	Prepare() (warnings []string, err error)
}

// Builder builds an artifact. Run is called on the instance that Prepare
// configured; it may call hook to have the host provision the machine. ctx
// is cancelled when the host cancels the request or shuts the plugin down:
// Run should then return promptly (any error it returns is answered as
// cancelled). A nil Artifact means the build produced none.
type Builder interface {
	Configurable
	Run(ctx context.Context, ui UI, hook Hook) (Artifact, error)
}

// Provisioner changes a machine through comm. comm is valid until Provision
// returns; when the build has no communicator its methods return
// [protocol.ErrUnsupported]. data is the builder's generated data.
type Provisioner interface {
	Configurable
	Provision(ctx context.Context, ui UI, comm Communicator, data map[string]any) error
}

// PostProcessor turns an artifact into another. in describes an artifact made
// by another process: its Destroy returns [protocol.ErrUnsupported]. keep asks
// the host to keep in; forceOverride makes keep win over the user's choice.
type PostProcessor interface {
	Configurable
	PostProcess(ctx context.Context, ui UI, in Artifact) (out Artifact, keep, forceOverride bool, err error)
}

// UI talks to the person running the build, through the host. Say,
// Message, Error and Machine send notifications and do not wait for the
// host to show them; they are safe for concurrent use. Errors sending them
// (the connection has closed) are logged, not returned.
type UI interface {
	// Say shows a prominent line.
	Say(msg string)
	// Message shows a detail line.
	Message(msg string)
	// Error shows an error line.
	Error(msg string)
	// Machine emits machine-readable output.
	Machine(typ string, data ...string)
	// Ask asks the user a question and waits for the answer, or for ctx.
	// Hosts that cannot ask answer with [protocol.ErrUnsupported].
	Ask(ctx context.Context, query string) (string, error)
	// TrackProgress wraps r so that reading it reports ui/progress: start
	// at once, an update at most every 64 KiB read and at most four a
	// second, done at EOF or Close (once). current is the number of bytes
	// already transferred, total the size or -1 when unknown. Closing the
	// result closes r.
	TrackProgress(label string, current, total int64, r io.ReadCloser) io.ReadCloser
}

// Hook runs a hook in the host, such as [protocol.HookProvision]. comm, which
// may be nil, is offered to the host for as long as Run runs: the host calls
// its methods, for example for each provisioner. Run blocks until the host
// has run the hook.
type Hook interface {
	Run(ctx context.Context, name string, comm Communicator, data map[string]any) error
}

// RemoteCmd is a command to run on a machine: Command is the command line,
// run by the machine's shell; Stdin is its input and Stdout and Stderr
// receive its output. Stdin, Stdout and Stderr may be nil: no input,
// output discarded. It is [protocol.RemoteCmd], as host.RemoteCmd is.
type RemoteCmd = protocol.RemoteCmd

// Communicator reaches a machine. Methods block until the operation has
// finished, stop early when ctx is done, and may be called concurrently.
// Directories travel as tar streams (see [ArchiveDir] and [ExtractArchive]).
// A builder implements it and offers it through [Hook.Run] (pluginkit/sshcomm,
// pluginkit/dockercomm and pluginkit/localcomm are ready-made ones); a
// provisioner receives one that reaches the build's machine through the
// host. host.Communicator has the same methods, so one implementation
// serves both.
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

// Artifact is what a builder or post-processor produces.
type Artifact interface {
	// BuilderID is the unique id of the component that made it.
	BuilderID() string
	// ID identifies the artifact, e.g. an image id or a path.
	ID() string
	// Files lists the local files that make it up.
	Files() []string
	// String describes it for a person.
	String() string
	// State holds values other components may read by name.
	State() map[string]any
	// Destroy removes it. The host calls it through artifact/destroy.
	Destroy(ctx context.Context) error
}

// BasicArtifact is a ready-made [Artifact]: each method returns the field of
// the same name with the suffix Value (Files returns FilesValue), and Destroy
// calls DestroyFunc, or does nothing when it is nil.
type BasicArtifact struct {
	BuilderIDValue string
	IDValue        string
	StringValue    string
	FilesValue     []string
	StateValue     map[string]any
	DestroyFunc    func(ctx context.Context) error
}

var _ Artifact = (*BasicArtifact)(nil)

// BuilderID returns a.BuilderIDValue.
func (a *BasicArtifact) BuilderID() string { return a.BuilderIDValue }

// ID returns a.IDValue.
func (a *BasicArtifact) ID() string { return a.IDValue }

// Files returns a.FilesValue.
func (a *BasicArtifact) Files() []string { return a.FilesValue }

// String returns a.StringValue.
func (a *BasicArtifact) String() string { return a.StringValue }

// State returns a.StateValue.
func (a *BasicArtifact) State() map[string]any { return a.StateValue }

// Destroy calls a.DestroyFunc if it is set.
func (a *BasicArtifact) Destroy(ctx context.Context) error {
	if a.DestroyFunc == nil {
		return nil
	}
	return a.DestroyFunc(ctx)
}

// ConfigError is one problem with a configuration: Path is a JSON Pointer
// (RFC 6901) into the merged configuration, such as "/source", or empty.
type ConfigError = protocol.ConfigError

// ConfigErrors is several configuration problems. Prepare returns it to
// report each with its path; the host receives them in the data of a
// [protocol.ErrConfigInvalid] answer.
type ConfigErrors []ConfigError

// Error joins the messages, each prefixed with its path.
func (e ConfigErrors) Error() string {
	parts := make([]string, len(e))
	for i, ce := range e {
		if ce.Path == "" {
			parts[i] = ce.Message
		} else {
			parts[i] = ce.Path + ": " + ce.Message
		}
	}
	return strings.Join(parts, "; ")
}

// configErrorsOf turns an error from Prepare into ConfigErrors.
func configErrorsOf(err error) []ConfigError {
	var ces ConfigErrors
	if errors.As(err, &ces) && len(ces) > 0 {
		return ces
	}
	return []ConfigError{{Message: err.Error()}}
}

// PackerConfig holds the packer_* keys the host sends to every component in
// the last configuration object. Embed it in a configuration struct to read
// them; they are accepted (and ignored) by components that do not.
type PackerConfig struct {
	BuildName          string            `json:"packer_build_name,omitempty" jsonschema:"description=Name of the build."`
	BuilderType        string            `json:"packer_builder_type,omitempty" jsonschema:"description=Type of the build's builder."`
	Debug              bool              `json:"packer_debug,omitempty" jsonschema:"description=Debug mode is on."`
	Force              bool              `json:"packer_force,omitempty" jsonschema:"description=The user asked to overwrite existing artifacts."`
	OnError            string            `json:"packer_on_error,omitempty" jsonschema:"description=What to do when the build fails: cleanup or abort or ask."`
	UserVariables      map[string]string `json:"packer_user_variables,omitempty" jsonschema:"description=The template's user variables."`
	SensitiveVariables []string          `json:"packer_sensitive_variables,omitempty" jsonschema:"description=Names of user variables whose values must not be shown."`
}
