package ui_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Ask reads its answer on a goroutine; none may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
