package main

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// logHeader starts the log of a command the way Packer's does, so that a
// bug report can be read from it: the version, the platform and the
// command line.
func logHeader(w io.Writer, args []string) {
	now := time.Now().Format("2006/01/02 15:04:05")
	fmt.Fprintf(w, "%s [INFO] Packer version: %s [%s %s %s]\n", now, Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "%s [INFO] CLI args: %q\n", now, append([]string{"packer"}, args...))
}
