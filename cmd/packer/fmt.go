package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/packer-stdio/packer/internal/template/hcl2"
)

const fmtHelp = `Rewrites HCL2 templates (.pkr.hcl) and variable files (.pkrvars.hcl) in
the canonical format, with hashicorp/hcl's formatter as Packer does. PATH is
a file, a directory (its files; -recursive for its subdirectories too) or -
for standard input, which is written to standard output.

The names of the files that change are printed. Exit status: 0, 1 on an
error (a syntax error is reported with its position), 3 with -check when a
file is not formatted.`

func runFmt(e *env, args []string) int {
	fs := newFlagSet(e, "fmt", "PATH", fmtHelp)
	check := fs.Bool("check", false, "only check: exit 3 when a file is not formatted, change nothing")
	diff := fs.Bool("diff", false, "print the differences (unified diff, with the diff program)")
	write := fs.Bool("write", true, "write the result to the file (false: print it)")
	recursive := fs.Bool("recursive", false, "also format the files of subdirectories")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	if *check {
		*write = false
	}
	f := &formatter{e: e, check: *check, diff: *diff, write: *write}
	path := fs.Arg(0)
	if path == "-" {
		src, err := io.ReadAll(e.stdin)
		if err != nil {
			fmt.Fprintf(e.stderr, "packer fmt: %v\n", err)
			return 1
		}
		out, err := formatHCL(src, "<stdin>")
		if err != nil {
			fmt.Fprintf(e.stderr, "packer fmt: %v\n", err)
			return 1
		}
		if !*check {
			e.stdout.Write(out)
		}
		if *check && !bytes.Equal(src, out) {
			return 3
		}
		return 0
	}
	files, err := fmtFiles(path, *recursive)
	if err != nil {
		fmt.Fprintf(e.stderr, "packer fmt: %v\n", err)
		return 1
	}
	var errs []error
	for _, file := range files {
		if err := f.file(file); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(e.stderr, "packer fmt: %v\n", err)
		return 1
	}
	if *check && f.changed > 0 {
		return 3
	}
	return 0
}

// fmtFiles lists the .pkr.hcl and .pkrvars.hcl files of path.
func fmtFiles(path string, recursive bool) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".pkr.hcl") || strings.HasSuffix(p, ".pkrvars.hcl") {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

type formatter struct {
	e                  *env
	check, diff, write bool
	changed            int
}

func (f *formatter) file(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := formatHCL(src, path)
	if err != nil {
		return err
	}
	if bytes.Equal(src, out) {
		return nil
	}
	f.changed++
	fmt.Fprintln(f.e.stdout, path)
	if f.diff {
		d, err := unifiedDiff(path, src, out)
		if err != nil {
			return err
		}
		f.e.stdout.Write(d)
	}
	switch {
	case f.write:
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		return os.WriteFile(path, out, fi.Mode().Perm())
	case !f.check && !f.diff:
		f.e.stdout.Write(out)
	}
	return nil
}

// formatHCL checks the syntax of src and returns it formatted by hclwrite.
func formatHCL(src []byte, name string) ([]byte, error) {
	p := hclparse.NewParser()
	if _, diags := p.ParseHCL(src, name); diags.HasErrors() {
		return nil, &hcl2.Error{Diags: diags}
	}
	return hclwrite.Format(src), nil
}

// unifiedDiff runs diff -u on the two versions, as Packer does.
func unifiedDiff(path string, a, b []byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "packer-fmt-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fa, fb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(fa, a, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(fb, b, 0o600); err != nil {
		return nil, err
	}
	out, err := exec.Command("diff", "-u", "--label", "old/"+filepath.ToSlash(path), "--label", "new/"+filepath.ToSlash(path), fa, fb).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return out, nil // differences found
	}
	if err != nil {
		return nil, fmt.Errorf("running diff: %w", err)
	}
	return out, nil
}
