//go:build windows

package shellscript

import "os/exec"

// killGroup leaves exec's default: the command itself is killed when its
// context is done. Its children may outlive it (packer's job object kills
// them when packer exits).
func killGroup(cmd *exec.Cmd) {}

// killTree does nothing: Windows has no process groups to signal.
func killTree(int) {}

// StopWithParent does nothing on Windows: packer's job object kills the
// plugin and its scripts when packer exits.
func StopWithParent() {}
