//go:build !unix

package main

import "os/exec"

// detach does nothing where there are no sessions: the daemon provisioner's
// child then stays in packer's job object.
func detach(*exec.Cmd) {}
