//go:build !linux && !windows

package host

import (
	"errors"
	"fmt"
	"runtime"
)

// AdoptOrphans returns an error wrapping errors.ErrUnsupported: this
// system has no child subreaper that packer uses.
func AdoptOrphans() error {
	return fmt.Errorf("adopting orphaned plugin processes on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// KillOrphans does nothing on this system and returns 0.
func KillOrphans() int { return 0 }
