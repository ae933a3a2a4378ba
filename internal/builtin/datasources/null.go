package datasources

import (
	"context"

	"github.com/packer-stdio/packer/pluginkit"
)

// NullConfig is the configuration of [Null].
type NullConfig struct {
	Input string `json:"input" jsonschema:"required" jsonschema_description:"The value the output returns."`
}

// NullOutput is the output of [Null].
type NullOutput struct {
	Output string `json:"output" jsonschema_description:"The input, unchanged."`
}

// Null is Packer's null data source: its output is its input. It gives a
// computed value a name and stands in for a real data source in tests.
type Null struct {
	config NullConfig
}

var _ pluginkit.Datasource = (*Null)(nil)

// Config implements [pluginkit.Configurable].
func (d *Null) Config() any { return &d.config }

// Prepare implements [pluginkit.Configurable]; input may be empty.
func (d *Null) Prepare() ([]string, error) { return nil, nil }

// Output implements [pluginkit.Datasource].
func (d *Null) Output() any { return &NullOutput{} }

// Execute implements [pluginkit.Datasource].
func (d *Null) Execute(context.Context) (any, error) {
	return &NullOutput{Output: d.config.Input}, nil
}
