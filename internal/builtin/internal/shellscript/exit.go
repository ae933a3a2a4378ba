package shellscript

import (
	"fmt"
	"slices"

	"github.com/invopop/jsonschema"
)

// ExitCodes lists the exit statuses that count as success. An empty list
// means [0].
type ExitCodes []int

// JSONSchemaExtend documents the default in the reflected schema.
func (ExitCodes) JSONSchemaExtend(s *jsonschema.Schema) {
	s.Default = []any{0}
}

// Valid reports whether status is one of the codes.
func (c ExitCodes) Valid(status int) bool {
	if len(c) == 0 {
		return status == 0
	}
	return slices.Contains(c, status)
}

// ExitError is returned when a script ends with a status not in the
// provisioner's valid_exit_codes.
type ExitError struct {
	// Script names the script: its path, or "inline script".
	Script string
	// Status is the exit status it ended with.
	Status int
}

// Error implements error.
func (e *ExitError) Error() string {
	return fmt.Sprintf("script %s exited with status %d, which is not a valid exit code; see the output above", e.Script, e.Status)
}
