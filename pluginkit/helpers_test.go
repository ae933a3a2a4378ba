package pluginkit_test

import (
	"bytes"
	"sync"

	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
