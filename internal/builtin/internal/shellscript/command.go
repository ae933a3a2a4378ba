package shellscript

import (
	"context"
	"os/exec"
	"time"
)

// waitDelay bounds how long Wait waits for the output pipes to close once
// the command has exited or been killed: a background grandchild that keeps
// them open must not hang the build.
const waitDelay = 5 * time.Second

// Command returns an *exec.Cmd for argv that runs in its own process group
// (on Unix) and is killed, with everything it started, when ctx is done.
func Command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	killGroup(cmd)
	cmd.WaitDelay = waitDelay
	return cmd
}
