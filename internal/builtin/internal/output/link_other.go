//go:build !unix

package output

// isNoLink reports true: where links may not exist, rename after checking.
func isNoLink(error) bool { return true }
