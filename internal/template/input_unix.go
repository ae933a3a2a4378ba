//go:build unix

package template

import "syscall"

// openFlags opens a FIFO without waiting for a writer, so that it can be
// refused instead of blocking.
const openFlags = syscall.O_NONBLOCK
