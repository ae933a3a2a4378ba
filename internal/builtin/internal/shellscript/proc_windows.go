//go:build windows

package shellscript

import "os/exec"

// killGroup leaves exec's default: the command itself is killed when its
// context is done. Its children may outlive it.
func killGroup(cmd *exec.Cmd) {}
