// Command schemagen writes the JSON Schema files of package schema. It is
// run by `go generate ./schema`:
//
//	go run ./internal/schemagen/cmd/schemagen -dir schema
//
// It writes every file [schemagen.Generate] returns into the directory and
// removes other *.json files there, so a file whose method is gone does not
// linger.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/packer-stdio/packer/internal/schemagen"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the schema files into")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "schemagen: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := schemagen.Generate()
	if err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, ok := files[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
