//go:build !unix && !windows

package pluginkit

import "os"

// takeStdout keeps the standard output file for the protocol and points
// os.Stdout at stderr.
func takeStdout() (*os.File, error) {
	f := os.Stdout
	os.Stdout = os.Stderr
	return f, nil
}

// takeStdin keeps the standard input file for the protocol.
func takeStdin() (*os.File, error) { return os.Stdin, nil }
