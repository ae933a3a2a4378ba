// Package schema holds the JSON Schemas (draft 2020-12) of every message of
// the plugin protocol, and the table that ties each method to its Go types
// in package protocol and to its schema files.
//
// The files are generated from the Go types by internal/schemagen: run
// `go generate ./schema` after changing a type in protocol/. A test fails
// when the committed files differ from what the generator would write, so
// the schemas cannot drift from the types. SPEC.md links the files from the
// section of each method.
//
// Every file is self-contained (its definitions are in its own $defs) and
// has an $id under [BaseURI], so a validator can load them from [FS] without
// network access. The files are:
//
//   - METHOD.params.json and METHOD.result.json for every method in
//     [Methods], where METHOD is the method name with "/" replaced by "-"
//     ("component/prepare" → "component-prepare"; "$/cancelRequest" →
//     "cancel-request"); notifications have no result file, and a method
//     whose result is null has a result schema that accepts only null;
//   - error-data.NAME.json for the data of the error codes in [ErrorData];
//   - envelope.request.json, envelope.notification.json and
//     envelope.response.json for the JSON-RPC 2.0 envelopes, and
//     envelope.message.json, which accepts any one of them.
package schema

import (
	"embed"
	"strings"

	"github.com/packer-stdio/packer/protocol"
)

//go:generate go run ../internal/schemagen/cmd/schemagen -dir .

// FS holds the committed schema files, named as described in the package
// documentation, at its root.
//
//go:embed *.json
var FS embed.FS

// BaseURI is the prefix of every schema's $id; a file's $id is BaseURI
// followed by its file name.
const BaseURI = "https://packer-stdio.dev/schema/v1/"

// Envelope schema files.
const (
	EnvelopeRequest      = "envelope.request.json"
	EnvelopeNotification = "envelope.notification.json"
	EnvelopeResponse     = "envelope.response.json"
	EnvelopeMessage      = "envelope.message.json"
)

// Direction says which side may send a method.
type Direction int

// Directions.
const (
	// HostToPlugin methods are sent by the host only.
	HostToPlugin Direction = iota + 1
	// PluginToHost methods are sent by the plugin only.
	PluginToHost
	// Either side may send the method.
	Either
)

// String returns "host→plugin", "plugin→host" or "either".
func (d Direction) String() string {
	switch d {
	case HostToPlugin:
		return "host→plugin"
	case PluginToHost:
		return "plugin→host"
	case Either:
		return "either"
	}
	return "invalid direction"
}

// Method describes one protocol method.
type Method struct {
	// Name is the method name on the wire.
	Name string
	// Direction says who sends it.
	Direction Direction
	// Notification is true when the method is sent as a notification
	// (no id, never answered); false when it is a request.
	Notification bool
	// Params is a zero value of the params type, or nil when the method
	// takes no params (the params member is omitted, or an empty object).
	Params any
	// Result is a zero value of the result type, or nil when the result is
	// null (and always for notifications).
	Result any
}

// ParamsFile returns the name of the params schema file in [FS].
func (m Method) ParamsFile() string { return FileBase(m.Name) + ".params.json" }

// ResultFile returns the name of the result schema file in [FS], or "" for a
// notification.
func (m Method) ResultFile() string {
	if m.Notification {
		return ""
	}
	return FileBase(m.Name) + ".result.json"
}

// FileBase returns the file name stem of a method's schemas: the name with
// "/" replaced by "-", except "$/cancelRequest", which is "cancel-request".
func FileBase(method string) string {
	if method == protocol.MethodCancelRequest {
		return "cancel-request"
	}
	return strings.ReplaceAll(method, "/", "-")
}

// Methods lists every method of the protocol, in the order SPEC.md
// describes them.
var Methods = []Method{
	{Name: protocol.MethodInitialize, Direction: HostToPlugin, Params: protocol.InitializeParams{}, Result: protocol.InitializeResult{}},
	{Name: protocol.MethodPrepare, Direction: HostToPlugin, Params: protocol.PrepareParams{}, Result: protocol.PrepareResult{}},
	{Name: protocol.MethodBuilderRun, Direction: HostToPlugin, Params: protocol.InstanceParams{}, Result: protocol.BuilderRunResult{}},
	{Name: protocol.MethodProvision, Direction: HostToPlugin, Params: protocol.ProvisionParams{}},
	{Name: protocol.MethodPostProcess, Direction: HostToPlugin, Params: protocol.PostProcessParams{}, Result: protocol.PostProcessResult{}},
	{Name: protocol.MethodArtifactDestroy, Direction: HostToPlugin, Params: protocol.ArtifactDestroyParams{}},
	{Name: protocol.MethodDatasourceExecute, Direction: HostToPlugin, Params: protocol.InstanceParams{}, Result: protocol.DatasourceExecuteResult{}},
	{Name: protocol.MethodUISay, Direction: PluginToHost, Notification: true, Params: protocol.UIMessageParams{}},
	{Name: protocol.MethodUIMessage, Direction: PluginToHost, Notification: true, Params: protocol.UIMessageParams{}},
	{Name: protocol.MethodUIError, Direction: PluginToHost, Notification: true, Params: protocol.UIMessageParams{}},
	{Name: protocol.MethodUIMachine, Direction: PluginToHost, Notification: true, Params: protocol.UIMachineParams{}},
	{Name: protocol.MethodUIProgress, Direction: PluginToHost, Notification: true, Params: protocol.UIProgressParams{}},
	{Name: protocol.MethodUIAsk, Direction: PluginToHost, Params: protocol.UIAskParams{}, Result: protocol.UIAskResult{}},
	{Name: protocol.MethodHookRun, Direction: PluginToHost, Params: protocol.HookRunParams{}},
	{Name: protocol.MethodCommStart, Direction: Either, Params: protocol.CommStartParams{}, Result: protocol.CommStartResult{}},
	{Name: protocol.MethodCommUpload, Direction: Either, Params: protocol.CommUploadParams{}},
	{Name: protocol.MethodCommDownload, Direction: Either, Params: protocol.CommDownloadParams{}},
	{Name: protocol.MethodCommUploadDir, Direction: Either, Params: protocol.CommUploadDirParams{}},
	{Name: protocol.MethodCommDownloadDir, Direction: Either, Params: protocol.CommDownloadDirParams{}},
	{Name: protocol.MethodStreamRead, Direction: Either, Params: protocol.StreamReadParams{}, Result: protocol.StreamReadResult{}},
	{Name: protocol.MethodStreamWrite, Direction: Either, Params: protocol.StreamWriteParams{}},
	{Name: protocol.MethodStreamClose, Direction: Either, Params: protocol.StreamCloseParams{}},
	{Name: protocol.MethodStreamData, Direction: Either, Notification: true, Params: protocol.StreamDataParams{}},
	{Name: protocol.MethodStreamCredit, Direction: Either, Notification: true, Params: protocol.StreamCreditParams{}},
	{Name: protocol.MethodStreamEnd, Direction: Either, Notification: true, Params: protocol.StreamEndParams{}},
	{Name: protocol.MethodStreamCancel, Direction: Either, Notification: true, Params: protocol.StreamCancelParams{}},
	{Name: protocol.MethodCancelRequest, Direction: Either, Notification: true, Params: protocol.CancelParams{}},
	{Name: protocol.MethodShutdown, Direction: HostToPlugin},
}

// Lookup returns the method named name.
func Lookup(name string) (Method, bool) {
	for _, m := range Methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// ErrorDataType ties an error code to the Go type of its data member.
type ErrorDataType struct {
	// Code is the error code.
	Code int64
	// Name is the file name stem after "error-data.", e.g. "config-invalid".
	Name string
	// Data is a zero value of the data type.
	Data any
}

// File returns the name of the data schema file in [FS].
func (e ErrorDataType) File() string { return "error-data." + e.Name + ".json" }

// ErrorData lists the error codes whose answers carry structured data. An
// answer with one of these codes must carry a data member that validates
// against the file; answers with other codes may carry any data or none.
var ErrorData = []ErrorDataType{
	{Code: protocol.CodeUnsupportedVersion, Name: "unsupported-version", Data: protocol.UnsupportedVersionData{}},
	{Code: protocol.CodeConfigInvalid, Name: "config-invalid", Data: protocol.ConfigInvalidData{}},
	{Code: protocol.CodeComponentPanicked, Name: "component-panicked", Data: protocol.PanicData{}},
}

// LookupErrorData returns the data type of code, if it has one.
func LookupErrorData(code int64) (ErrorDataType, bool) {
	for _, e := range ErrorData {
		if e.Code == code {
			return e, true
		}
	}
	return ErrorDataType{}, false
}
