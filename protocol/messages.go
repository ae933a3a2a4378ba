package protocol

import "encoding/json"

// Method names. The direction is given as host → plugin (the host calls the
// plugin), plugin → host, or either.
const (
	// MethodInitialize (host → plugin) is the handshake and the first request.
	MethodInitialize = "initialize"
	// MethodShutdown (host → plugin) asks the plugin to finish and exit.
	MethodShutdown = "shutdown"
	// MethodCancelRequest (either, notification) cancels an in-flight request.
	MethodCancelRequest = "$/cancelRequest"

	// MethodPrepare (host → plugin) configures a new component instance.
	MethodPrepare = "component/prepare"
	// MethodBuilderRun (host → plugin) runs a prepared builder.
	MethodBuilderRun = "builder/run"
	// MethodProvision (host → plugin) runs a prepared provisioner.
	MethodProvision = "provisioner/provision"
	// MethodPostProcess (host → plugin) runs a prepared post-processor.
	MethodPostProcess = "postprocessor/postprocess"
	// MethodArtifactDestroy (host → plugin) destroys an artifact the plugin made.
	MethodArtifactDestroy = "artifact/destroy"
	// MethodDatasourceExecute (host to plugin) computes the output of a
	// prepared data source.
	MethodDatasourceExecute = "datasource/execute"

	// MethodUISay (plugin → host, notification) shows a prominent line.
	MethodUISay = "ui/say"
	// MethodUIMessage (plugin → host, notification) shows a detail line.
	MethodUIMessage = "ui/message"
	// MethodUIError (plugin → host, notification) shows an error line.
	MethodUIError = "ui/error"
	// MethodUIMachine (plugin → host, notification) emits machine-readable output.
	MethodUIMachine = "ui/machine"
	// MethodUIProgress (plugin → host, notification) reports transfer progress.
	MethodUIProgress = "ui/progress"
	// MethodUIAsk (plugin → host) asks the user a question.
	MethodUIAsk = "ui/ask"
	// MethodHookRun (plugin → host) runs a hook, such as provisioning.
	MethodHookRun = "hook/run"

	// MethodCommStart (either) runs a command through a communicator.
	MethodCommStart = "communicator/start"
	// MethodCommUpload (either) uploads one file through a communicator.
	MethodCommUpload = "communicator/upload"
	// MethodCommDownload (either) downloads one file through a communicator.
	MethodCommDownload = "communicator/download"
	// MethodCommUploadDir (either) uploads a directory, as a tar stream.
	MethodCommUploadDir = "communicator/uploadDir"
	// MethodCommDownloadDir (either) downloads a directory, as a tar stream.
	MethodCommDownloadDir = "communicator/downloadDir"

	// MethodStreamRead (either) reads the next chunk of an offered source stream.
	MethodStreamRead = "stream/read"
	// MethodStreamWrite (either) writes a chunk to an offered sink stream.
	MethodStreamWrite = "stream/write"
	// MethodStreamClose (either) ends a stream early (source) or signals end of data (sink).
	MethodStreamClose = "stream/close"

	// MethodStreamData (either, notification, protocol version 2) carries
	// a chunk of a stream's bytes from the side that has them.
	MethodStreamData = "stream/data"
	// MethodStreamCredit (either, notification, protocol version 2) grants
	// the sender of a stream more bytes of window.
	MethodStreamCredit = "stream/credit"
	// MethodStreamEnd (either, notification, protocol version 2) ends a
	// stream: no bytes follow; with an error, the stream was aborted.
	MethodStreamEnd = "stream/end"
	// MethodStreamCancel (either, notification, protocol version 2) tells
	// the sender of a stream that the receiver wants no more bytes.
	MethodStreamCancel = "stream/cancel"
)

// Component types.
const (
	TypeBuilder       = "builder"
	TypeProvisioner   = "provisioner"
	TypePostProcessor = "post-processor"
	// TypeDatasource is a data source: prepared like the others, then
	// datasource/execute computes its output object.
	TypeDatasource = "datasource"
)

// HookProvision is the hook name a builder runs to have the host provision
// the machine through the builder's communicator.
const HookProvision = "packer_provision"

// Peer names one side of the connection.
type Peer struct {
	Name    string `json:"name" jsonschema:"description=Program name, e.g. packer or packer-builder-file."`
	Version string `json:"version" jsonschema:"description=Program version (free form; semantic versions recommended)."`
}

// Limits are what a side accepts.
type Limits struct {
	MaxMessageSize int64 `json:"max_message_size" jsonschema:"description=Largest line in bytes (newline excluded) this side accepts. At least 1048576."`
}

// HostCapabilities are optional host features a plugin may rely on.
type HostCapabilities struct {
	Ask      bool `json:"ask" jsonschema:"description=ui/ask can be answered by a person. When false a plugin must not ask."`
	Progress bool `json:"progress" jsonschema:"description=The host shows ui/progress notifications."`
}

// PluginCapabilities are optional plugin features a host may rely on.
type PluginCapabilities struct {
	Cancel bool `json:"cancel" jsonschema:"description=The plugin honours $/cancelRequest for builder/run, provisioner/provision and postprocessor/postprocess."`
}

// InitializeParams are the params of initialize.
type InitializeParams struct {
	ProtocolVersions []int            `json:"protocol_versions" jsonschema:"minItems=1,description=Protocol versions the host speaks, most preferred first."`
	Host             Peer             `json:"host"`
	Limits           Limits           `json:"limits"`
	Capabilities     HostCapabilities `json:"capabilities"`
}

// InitializeResult is the result of initialize.
type InitializeResult struct {
	ProtocolVersion int                `json:"protocol_version" jsonschema:"description=The version chosen from protocol_versions; the rest of the session uses it."`
	Plugin          Peer               `json:"plugin"`
	Components      []Component        `json:"components" jsonschema:"description=Every component this binary serves."`
	Limits          Limits             `json:"limits"`
	Capabilities    PluginCapabilities `json:"capabilities"`
}

// UnsupportedVersionData is the data of an unsupported-version error.
type UnsupportedVersionData struct {
	Supported []int `json:"supported" jsonschema:"description=Protocol versions the plugin speaks."`
}

// Component describes one component a plugin serves.
type Component struct {
	Type         string          `json:"type" jsonschema:"enum=builder,enum=provisioner,enum=post-processor,enum=datasource"`
	Name         string          `json:"name" jsonschema:"pattern=^[a-z0-9][a-z0-9._-]*$,description=Name used in templates, e.g. file or amazon-ebs."`
	Description  string          `json:"description,omitempty"`
	ConfigSchema json.RawMessage `json:"config_schema" jsonschema:"description=JSON Schema (draft 2020-12) of one configuration object."`
	// OutputSchema is, for a data source, the schema of the object
	// datasource/execute returns.
	OutputSchema json.RawMessage `json:"output_schema,omitempty" jsonschema:"description=Data sources only (required for them): JSON Schema (draft 2020-12) of the object datasource/execute returns."`
}

// PrepareParams are the params of component/prepare.
type PrepareParams struct {
	Type    string            `json:"type" jsonschema:"enum=builder,enum=provisioner,enum=post-processor,enum=datasource"`
	Name    string            `json:"name"`
	Configs []json.RawMessage `json:"configs" jsonschema:"description=Configuration objects merged in order: a key in a later object replaces the same key in an earlier one. The host puts its packer_* keys in the last object."`
}

// PrepareResult is the result of a successful component/prepare.
type PrepareResult struct {
	Instance string   `json:"instance" jsonschema:"description=Handle of the prepared instance; names it in later requests on this connection."`
	Warnings []string `json:"warnings" jsonschema:"description=Problems that do not stop the build."`
	// GeneratedData lists, for a builder, the names of the values its run
	// shares with provisioners (the build template function).
	GeneratedData []string `json:"generated_data,omitempty" jsonschema:"description=Builders only: names of values shared with provisioners through hook data."`
}

// ConfigError is one problem with a configuration.
type ConfigError struct {
	Path    string `json:"path" jsonschema:"description=JSON Pointer (RFC 6901) to the offending key in the merged configuration, or empty when no single key is at fault."`
	Message string `json:"message"`
}

// ConfigInvalidData is the data of a configuration-invalid error.
type ConfigInvalidData struct {
	Errors   []ConfigError `json:"errors" jsonschema:"minItems=1"`
	Warnings []string      `json:"warnings"`
}

// PanicData is the data of a component-panicked error.
type PanicData struct {
	Value string `json:"value" jsonschema:"description=The panic value, formatted."`
}

// Artifact is what a builder or post-processor produces.
type Artifact struct {
	Handle    string         `json:"handle,omitempty" jsonschema:"description=Minted by the process that made the artifact; names it in artifact/destroy on that connection. Empty when the artifact cannot be destroyed."`
	BuilderID string         `json:"builder_id" jsonschema:"description=Unique id of the builder or post-processor that made it, e.g. mitchellh.file."`
	ID        string         `json:"id" jsonschema:"description=Identifier of the artifact, e.g. an image id or a path."`
	Files     []string       `json:"files" jsonschema:"description=Local files that make up the artifact."`
	String    string         `json:"string" jsonschema:"description=Human-readable description."`
	State     map[string]any `json:"state,omitempty" jsonschema:"description=Values other components may read by name."`
}

// InstanceParams name a prepared instance.
type InstanceParams struct {
	Instance string `json:"instance"`
}

// BuilderRunResult is the result of builder/run.
type BuilderRunResult struct {
	Artifact *Artifact `json:"artifact" jsonschema:"description=The artifact, or null when the builder produced none."`
}

// ProvisionParams are the params of provisioner/provision.
type ProvisionParams struct {
	Instance     string         `json:"instance"`
	Communicator string         `json:"communicator" jsonschema:"description=Handle of the communicator to use, minted by the host for this request. Empty when the build has none."`
	Data         map[string]any `json:"data" jsonschema:"description=Generated data shared by the builder."`
}

// PostProcessParams are the params of postprocessor/postprocess.
type PostProcessParams struct {
	Instance string   `json:"instance"`
	Artifact Artifact `json:"artifact" jsonschema:"description=The input artifact. Its handle is not valid on this connection."`
}

// PostProcessResult is the result of postprocessor/postprocess.
type PostProcessResult struct {
	Artifact      *Artifact `json:"artifact" jsonschema:"description=The new artifact, or null when there is none."`
	Keep          bool      `json:"keep" jsonschema:"description=Keep the input artifact."`
	ForceOverride bool      `json:"force_override" jsonschema:"description=Honour keep even when the user asked for the input to be discarded."`
}

// ArtifactDestroyParams are the params of artifact/destroy.
type ArtifactDestroyParams struct {
	Artifact string `json:"artifact" jsonschema:"description=The artifact handle."`
}

// UIMessageParams are the params of ui/say, ui/message and ui/error.
type UIMessageParams struct {
	Message string `json:"message"`
}

// UIMachineParams are the params of ui/machine.
type UIMachineParams struct {
	Type string   `json:"type" jsonschema:"description=Machine-readable message type, e.g. artifact-count."`
	Data []string `json:"data"`
}

// Progress states.
const (
	ProgressStart  = "start"
	ProgressUpdate = "update"
	ProgressDone   = "done"
)

// UIProgressParams are the params of ui/progress.
type UIProgressParams struct {
	ID      string `json:"id" jsonschema:"description=Chosen by the plugin; ties the notifications of one transfer together."`
	State   string `json:"state" jsonschema:"enum=start,enum=update,enum=done"`
	Label   string `json:"label,omitempty"`
	Current int64  `json:"current" jsonschema:"minimum=0"`
	Total   int64  `json:"total" jsonschema:"description=Total bytes, or -1 when unknown."`
}

// UIAskParams are the params of ui/ask.
type UIAskParams struct {
	Query string `json:"query"`
}

// UIAskResult is the result of ui/ask.
type UIAskResult struct {
	Answer string `json:"answer"`
}

// HookRunParams are the params of hook/run.
type HookRunParams struct {
	Name         string         `json:"name" jsonschema:"description=Hook name; packer_provision runs the build's provisioners."`
	Communicator string         `json:"communicator" jsonschema:"description=Handle of a communicator the calling builder offers for the duration of this request, or empty for none."`
	Data         map[string]any `json:"data" jsonschema:"description=Generated data for provisioners."`
}

// CommStartParams are the params of communicator/start.
type CommStartParams struct {
	Communicator string `json:"communicator"`
	Command      string `json:"command" jsonschema:"description=Command line, run by the remote shell."`
	Stdin        string `json:"stdin,omitempty" jsonschema:"description=Source stream handle for the command's stdin; empty means no input."`
	Stdout       string `json:"stdout,omitempty" jsonschema:"description=Sink stream handle for the command's stdout; empty discards it."`
	Stderr       string `json:"stderr,omitempty" jsonschema:"description=Sink stream handle for the command's stderr; empty discards it."`
}

// CommStartResult is the result of communicator/start, sent when the
// command has finished and its output streams are closed.
type CommStartResult struct {
	ExitStatus int `json:"exit_status" jsonschema:"description=The command's exit status."`
}

// CommUploadParams are the params of communicator/upload.
type CommUploadParams struct {
	Communicator string `json:"communicator"`
	Path         string `json:"path" jsonschema:"description=Destination path on the machine."`
	Source       string `json:"source" jsonschema:"description=Source stream handle with the file's bytes."`
	Mode         uint32 `json:"mode,omitempty" jsonschema:"description=Unix permission bits for the new file; 0 means the communicator's default."`
	Size         int64  `json:"size" jsonschema:"description=Size in bytes, or -1 when unknown (used for progress only)."`
}

// CommDownloadParams are the params of communicator/download.
type CommDownloadParams struct {
	Communicator string `json:"communicator"`
	Path         string `json:"path" jsonschema:"description=Source path on the machine."`
	Sink         string `json:"sink" jsonschema:"description=Sink stream handle that receives the file's bytes."`
}

// CommUploadDirParams are the params of communicator/uploadDir. The source
// stream is a tar archive (POSIX ustar or PAX) whose entries are extracted
// under Path.
type CommUploadDirParams struct {
	Communicator string   `json:"communicator"`
	Path         string   `json:"path" jsonschema:"description=Destination directory on the machine."`
	Source       string   `json:"source" jsonschema:"description=Source stream handle with a tar archive."`
	Exclude      []string `json:"exclude,omitempty" jsonschema:"description=Glob patterns of entry names to skip."`
}

// CommDownloadDirParams are the params of communicator/downloadDir. The sink
// receives a tar archive of the directory's contents, names relative to Path.
type CommDownloadDirParams struct {
	Communicator string   `json:"communicator"`
	Path         string   `json:"path" jsonschema:"description=Source directory on the machine."`
	Sink         string   `json:"sink" jsonschema:"description=Sink stream handle that receives a tar archive."`
	Exclude      []string `json:"exclude,omitempty" jsonschema:"description=Glob patterns of entry names to skip."`
}

// StreamReadParams are the params of stream/read.
type StreamReadParams struct {
	Stream string `json:"stream"`
	Max    int    `json:"max" jsonschema:"minimum=1,maximum=262144,description=Most bytes to return."`
}

// StreamReadResult is the result of stream/read.
type StreamReadResult struct {
	Data []byte `json:"data" jsonschema:"description=Base64 (standard alphabet, padded) of up to max bytes."`
	EOF  bool   `json:"eof" jsonschema:"description=No bytes follow these."`
}

// StreamWriteParams are the params of stream/write.
type StreamWriteParams struct {
	Stream string `json:"stream"`
	Data   []byte `json:"data" jsonschema:"description=Base64 (standard alphabet, padded) of at most 262144 bytes."`
}

// StreamCloseParams are the params of stream/close.
type StreamCloseParams struct {
	Stream string `json:"stream"`
}

// StreamRef names a stream in the notifications of protocol version 2.
// Exactly one member is set: Source when the stream is a source (its bytes
// flow from the side that offered it), Sink when it is a sink (its bytes
// flow to the side that offered it). The handle is always the one the
// offering side minted; the member says whose it is.
type StreamRef struct {
	Source string `json:"source,omitempty" jsonschema:"minLength=1,description=Handle of a source stream: minted by the side that offered it and sends its bytes."`
	Sink   string `json:"sink,omitempty" jsonschema:"minLength=1,description=Handle of a sink stream: minted by the side that offered it and receives its bytes."`
}

// StreamDataParams are the params of stream/data. On the wire the stream's
// member comes first and data last (SPEC §7.5.2).
type StreamDataParams struct {
	StreamRef
	Data []byte `json:"data" jsonschema:"description=Base64 (standard alphabet and padded) of 1 to 262144 bytes and no more than the credit left. Last member on the wire."`
}

// StreamCreditParams are the params of stream/credit.
type StreamCreditParams struct {
	StreamRef
	Bytes int64 `json:"bytes" jsonschema:"minimum=1,maximum=1073741824,description=Bytes added to the sender's window."`
}

// StreamEndParams are the params of stream/end.
type StreamEndParams struct {
	StreamRef
	Error *Error `json:"error,omitempty" jsonschema:"description=Set when the stream was aborted: why. Absent: the data is complete."`
}

// StreamCancelParams are the params of stream/cancel.
type StreamCancelParams struct {
	StreamRef
	Error *Error `json:"error,omitempty" jsonschema:"description=Why the receiver stops when it is an error: a failed write or a broken flow-control rule."`
}

// CancelParams are the params of $/cancelRequest.
type CancelParams struct {
	ID json.RawMessage `json:"id" jsonschema:"description=The id of the request to cancel, with its JSON type."`
}
