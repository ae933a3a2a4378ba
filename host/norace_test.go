//go:build !race

package host_test

// raceEnabled tells tests that the race detector, whose own memory is
// not returned to the system, is in the process.
const raceEnabled = false
