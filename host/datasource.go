package host

import (
	"context"
	"fmt"

	"github.com/packer-stdio/packer/protocol"
)

// Execute runs a prepared data source and returns its output object. The
// output is not checked against the component's output_schema here; a
// missing output is a protocol violation. Cancelling ctx works as for
// [Instance.Run].
func (i *Instance) Execute(ctx context.Context) (map[string]any, error) {
	if err := i.want(protocol.MethodDatasourceExecute, protocol.TypeDatasource); err != nil {
		return nil, err
	}
	var res protocol.DatasourceExecuteResult
	if err := i.p.conn.Call(ctx, protocol.MethodDatasourceExecute, protocol.InstanceParams{Instance: i.handle}, &res); err != nil {
		return nil, i.p.callErr(protocol.MethodDatasourceExecute, err)
	}
	if res.Output == nil {
		return nil, &PluginError{Plugin: i.p.name, Op: protocol.MethodDatasourceExecute, Err: fmt.Errorf("%w: the answer has no output object", ErrProtocolViolation)}
	}
	return res.Output, nil
}
