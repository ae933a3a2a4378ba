package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/packer-stdio/packer/internal/build"
	"github.com/packer-stdio/packer/internal/template"
	"github.com/packer-stdio/packer/internal/template/hcl2"
)

// hcl2Components answers the HCL2 front end's questions about components
// by starting their plugins: the configuration schema from the handshake,
// and data source runs.
type hcl2Components struct {
	catalog *catalog
	logw    io.Writer
	mu      sync.Mutex
	schemas map[string][]byte
}

// ConfigSchema starts the component's plugin and returns the schema its
// handshake declares.
func (h *hcl2Components) ConfigSchema(kind, typ string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.schemas[kind+" "+typ]; ok {
		return s, nil
	}
	args, path, component, err := h.catalog.command(kind, typ)
	if err != nil {
		return nil, err
	}
	p, err := startPlugin(args, path, 0, h.logw, nil)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	component = build.ServedName(p.Components(), build.Component{Type: kind, Name: typ, Component: component})
	for _, c := range p.Components() {
		if c.Type == kind && c.Name == component {
			if h.schemas == nil {
				h.schemas = map[string][]byte{}
			}
			h.schemas[kind+" "+typ] = c.ConfigSchema
			return c.ConfigSchema, nil
		}
	}
	return nil, fmt.Errorf("%s does not serve %s %q", args[0], kind, component)
}

// Execute prepares and runs a data source in its own plugin process.
func (h *hcl2Components) Execute(typ string, config map[string]any) (map[string]any, error) {
	args, path, component, err := h.catalog.command(hcl2.KindDatasource, typ)
	if err != nil {
		return nil, err
	}
	p, err := startPlugin(args, path, 0, h.logw, nil)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	c := build.Component{Type: hcl2.KindDatasource, Name: typ, Component: component}
	c.Component = build.ServedName(p.Components(), c)
	ctx := context.Background()
	inst, warnings, err := p.Prepare(ctx, hcl2.KindDatasource, c.Component, config)
	for _, w := range warnings {
		fmt.Fprintf(h.logw, "data source %s: warning: %s\n", typ, w)
	}
	if err != nil {
		return nil, build.PrepareError(c, build.SchemaKeys(p.Components(), c.Type, c.Component), err)
	}
	return inst.Execute(ctx)
}

var _ hcl2.Schemas = (*hcl2Components)(nil)
var _ hcl2.Datasources = (*hcl2Components)(nil)

// loadHCL2 loads an HCL2 template. With run false, configurations are read
// without plugins (syntax checks, inspect) and data sources do not run.
func loadHCL2(e *env, path string, vars *varFlags, run bool) (*hcl2.Result, error) {
	o := hcl2.Options{PackerVersion: Version, Now: time.Now(), Environ: environ(e)}
	if vars != nil {
		o.Vars, o.VarFiles = vars.vars, vars.files
	}
	if run {
		c, err := discover(e)
		if err != nil {
			return nil, err
		}
		logw, closeLog, err := openLog(e)
		if err != nil {
			return nil, err
		}
		defer closeLog()
		comps := &hcl2Components{catalog: c, logw: logw}
		o.Schemas, o.Datasources = comps, comps
	}
	res, err := hcl2.Load(path, o)
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "Warning: %s\n", w)
	}
	return res, nil
}

// environ is the process environment as e sees it: os.Environ filtered
// through e.getenv, so that tests can replace it.
func environ(e *env) []string {
	var out []string
	seen := map[string]bool{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		if v := e.getenv(k); v != "" || strings.HasPrefix(k, "PKR_VAR_") {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return slices.Clip(out)
}

// masker returns the masker of a run: sensitive variables' values and the
// template's other sensitive values.
func masker(t *template.Template, tctx *template.Context) *template.Masker {
	return template.NewMasker(t.MaskedValues(tctx.UserVars))
}
