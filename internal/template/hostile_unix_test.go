//go:build unix

package template_test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/packer-stdio/packer/internal/template"
)

// endless is /dev/zero without the file.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestHostileInputFiles: inputs that never end, block or are not files are
// refused with an error that says what the file is.
func TestHostileInputFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, dir, "t.json", `{"builders":[{"type":"null"}], "variables": {"a": "1"}}`)
	tmpl, err := template.ParseFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		want string
		kind error
	}{
		{"template /dev/zero", func() error { _, err := template.ParseFile("/dev/zero"); return err },
			"/dev/zero: template is not a regular file (it is a character device)", template.ErrInvalid},
		{"template FIFO", func() error { _, err := template.ParseFile(fifo); return err },
			fifo + ": template is not a regular file (it is a named pipe)", template.ErrInvalid},
		{"template directory", func() error { _, err := template.ParseFile(dir); return err },
			dir + ": template is not a regular file (it is a directory)", template.ErrInvalid},
		{"var file /dev/zero", func() error {
			_, err := template.ResolveVariables(tmpl, nil, []string{"/dev/zero"}, nil)
			return err
		}, "/dev/zero: variable file is not a regular file (it is a character device)", template.ErrVariable},
		{"var file FIFO", func() error {
			_, err := template.ResolveVariables(tmpl, nil, []string{fifo}, nil)
			return err
		}, fifo + ": variable file is not a regular file (it is a named pipe)", template.ErrVariable},
		{"endless standard input", func() error {
			_, err := template.Parse(io.MultiReader(strings.NewReader(`{"a":"`), endless{}), "-")
			return err
		},
			"-: template is larger than 16 MiB", template.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want %v containing %q", err, tt.kind, tt.want)
			}
		})
	}
}
