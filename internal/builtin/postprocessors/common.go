package postprocessors

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/packer-stdio/packer/internal/builtin/internal/output"
)

// renderOutput executes the output template text with data.
func renderOutput(text string, data any) (string, error) {
	t, err := template.New("output").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("renders as an empty path")
	}
	return b.String(), nil
}

// removeFiles removes each path, ignoring those already gone.
func removeFiles(paths []string) error {
	var first error
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// atomicWrite writes path through a temporary file in the same directory
// (parents created) that replaces path only when write succeeded.
func atomicWrite(path string, write func(f *os.File) error) error {
	return writeThrough(path, write, func(tmp string) error { return os.Rename(tmp, path) })
}

// createOutput writes path like atomicWrite, with the -force rule of
// package output: an existing path is an error unless force is set (it is
// checked before anything is written, and again when the file is put in
// place), and a path that is not a regular file is never replaced.
func createOutput(path string, force bool, write func(f *os.File) error) error {
	if err := output.Check(path, force); err != nil {
		return err
	}
	return writeThrough(path, write, func(tmp string) error { return output.Place(tmp, path, force) })
}

func writeThrough(path string, write func(f *os.File) error, place func(tmp string) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.part")
	if err != nil {
		return err
	}
	err = write(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = place(tmp.Name())
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
