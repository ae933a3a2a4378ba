//go:build !unix

package postprocessors

// openNoFollow is 0: the path was checked with Lstat just before.
const openNoFollow = 0
