//go:build !unix

package template

// openFlags: without FIFOs there is nothing to open without blocking.
const openFlags = 0
