package datasources

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/packer-stdio/packer/pluginkit"
)

// MaxHTTPBody is the largest body the http data source reads.
const MaxHTTPBody = 16 << 20

// HTTPConfig is the configuration of [HTTP].
type HTTPConfig struct {
	URL            string            `json:"url" jsonschema:"required" jsonschema_description:"The http or https URL to request."`
	Method         string            `json:"method,omitempty" jsonschema:"default=GET" jsonschema_description:"The HTTP method: GET, HEAD, POST or PUT."`
	RequestHeaders map[string]string `json:"request_headers,omitempty" jsonschema_description:"Headers sent with the request."`
	RequestBody    string            `json:"request_body,omitempty" jsonschema_description:"Body sent with the request."`
	Timeout        string            `json:"timeout,omitempty" jsonschema:"default=1m" jsonschema_description:"How long the request may take, e.g. 30s."`
}

// HTTPOutput is the output of [HTTP].
type HTTPOutput struct {
	URL             string            `json:"url" jsonschema_description:"The URL requested."`
	StatusCode      int               `json:"status_code" jsonschema_description:"The response's status code."`
	Body            string            `json:"body" jsonschema_description:"The response body."`
	ResponseHeaders map[string]string `json:"response_headers" jsonschema_description:"The response headers; several values of one header are joined with ', '."`
}

// HTTP is Packer's http data source: it requests a URL and returns the
// response. A status outside 200-299 is an error, as in Packer.
type HTTP struct {
	config  HTTPConfig
	timeout time.Duration
}

var _ pluginkit.Datasource = (*HTTP)(nil)

// Config implements [pluginkit.Configurable].
func (d *HTTP) Config() any { return &d.config }

// Prepare implements [pluginkit.Configurable].
func (d *HTTP) Prepare() ([]string, error) {
	var errs pluginkit.ConfigErrors
	c := &d.config
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, pluginkit.ConfigError{Path: "/url", Message: fmt.Sprintf("%q is not an http or https URL", c.URL)})
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	c.Method = strings.ToUpper(c.Method)
	if !slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut}, c.Method) {
		errs = append(errs, pluginkit.ConfigError{Path: "/method", Message: fmt.Sprintf("must be GET, HEAD, POST or PUT, not %q", c.Method)})
	}
	d.timeout = time.Minute
	if c.Timeout != "" {
		if d.timeout, err = time.ParseDuration(c.Timeout); err != nil || d.timeout <= 0 {
			errs = append(errs, pluginkit.ConfigError{Path: "/timeout", Message: fmt.Sprintf("%q is not a positive duration such as 30s", c.Timeout)})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

// Output implements [pluginkit.Datasource].
func (d *HTTP) Output() any { return &HTTPOutput{} }

// Execute implements [pluginkit.Datasource].
func (d *HTTP) Execute(ctx context.Context) (any, error) {
	c := &d.config
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var body io.Reader
	if c.RequestBody != "" {
		body = strings.NewReader(c.RequestBody)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, c.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.RequestHeaders {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.URL, err)
	}
	if len(b) > MaxHTTPBody {
		return nil, fmt.Errorf("%s: the body is larger than %d bytes", c.URL, MaxHTTPBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: status %s", c.Method, c.URL, resp.Status)
	}
	out := &HTTPOutput{URL: c.URL, StatusCode: resp.StatusCode, Body: string(b), ResponseHeaders: map[string]string{}}
	for k, v := range resp.Header {
		out.ResponseHeaders[k] = strings.Join(v, ", ")
	}
	return out, nil
}
