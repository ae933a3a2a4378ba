package pluginkit

import "time"

// SetProgressClock replaces the clock of progress updates until the
// returned func is called.
func SetProgressClock(now func() time.Time) (restore func()) {
	old := progressClock
	progressClock = now
	return func() { progressClock = old }
}
