//go:build !unix

package main

import "os"

// pollableStdio returns the standard input and output as they are.
func pollableStdio() (in, out *os.File) { return os.Stdin, os.Stdout }
