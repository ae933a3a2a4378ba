package datasources_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/builtin/datasources"
	"github.com/packer-stdio/packer/pluginkit"
)

func TestNull(t *testing.T) {
	d := new(datasources.Null)
	d.Config().(*datasources.NullConfig).Input = "hello"
	if _, err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	out, err := d.Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&datasources.NullOutput{Output: "hello"}, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			w.Header().Set("X-Echo", r.Header.Get("X-Token")+" "+r.Method)
			w.Write([]byte(`{"version":"1.2.3"}`))
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		cfg     datasources.HTTPConfig
		want    *datasources.HTTPOutput
		wantErr string
	}{
		{name: "get", cfg: datasources.HTTPConfig{URL: srv.URL + "/version", RequestHeaders: map[string]string{"X-Token": "t"}},
			want: &datasources.HTTPOutput{URL: srv.URL + "/version", StatusCode: 200, Body: `{"version":"1.2.3"}`}},
		{name: "post", cfg: datasources.HTTPConfig{URL: srv.URL + "/version", Method: "post", RequestBody: "x"},
			want: &datasources.HTTPOutput{URL: srv.URL + "/version", StatusCode: 200, Body: `{"version":"1.2.3"}`}},
		{name: "not found", cfg: datasources.HTTPConfig{URL: srv.URL + "/missing"}, wantErr: "404 Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := new(datasources.HTTP)
			*d.Config().(*datasources.HTTPConfig) = tc.cfg
			if _, err := d.Prepare(); err != nil {
				t.Fatal(err)
			}
			out, err := d.Execute(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*datasources.HTTPOutput)
			if got.ResponseHeaders["X-Echo"] == "" {
				t.Errorf("response headers lack X-Echo: %v", got.ResponseHeaders)
			}
			got.ResponseHeaders = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPPrepareErrors(t *testing.T) {
	d := new(datasources.HTTP)
	*d.Config().(*datasources.HTTPConfig) = datasources.HTTPConfig{URL: "ftp://x", Method: "DELETE", Timeout: "soon"}
	_, err := d.Prepare()
	var errs pluginkit.ConfigErrors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want ConfigErrors", err)
	}
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	if diff := cmp.Diff([]string{"/url", "/method", "/timeout"}, paths); diff != "" {
		t.Errorf("error paths (-want +got):\n%s", diff)
	}
}
