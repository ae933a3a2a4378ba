package protocol

// DatasourceExecuteResult is the result of datasource/execute, whose
// params are [InstanceParams].
type DatasourceExecuteResult struct {
	Output map[string]any `json:"output" jsonschema:"description=The data source's output: an object valid against the output_schema its component declared in the handshake."`
}
