package schema_test

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/packer-stdio/packer/protocol"
	"github.com/packer-stdio/packer/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validating the params of a message with the embedded schemas, as a
// conformance checker does.
func Example() {
	c := jsonschema.NewCompiler()
	m, _ := schema.Lookup(protocol.MethodBuilderRun)
	f, _ := schema.FS.Open(m.ParamsFile())
	doc, _ := jsonschema.UnmarshalJSON(f)
	f.Close()
	_ = c.AddResource(schema.BaseURI+m.ParamsFile(), doc)
	s, _ := c.Compile(schema.BaseURI + m.ParamsFile())

	for _, params := range []string{`{"instance":"i1"}`, `{"instance":"i1","verbose":true}`} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(params))
		fmt.Printf("%s valid: %v\n", params, s.Validate(v) == nil)
	}
	names, _ := fs.Glob(schema.FS, "builder-run.*")
	fmt.Println(names)
	// Output:
	// {"instance":"i1"} valid: true
	// {"instance":"i1","verbose":true} valid: false
	// [builder-run.params.json builder-run.result.json]
}
