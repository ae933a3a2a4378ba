package protocol_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// TestMaxHandlers: with Options.MaxHandlers, requests over the bound are
// answered at once with ErrTooManyRequests and never reach the handler;
// once one is answered, a new one is handled again (SPEC §10).
func TestMaxHandlers(t *testing.T) {
	const bound, calls = 2, 7
	release := make(chan struct{})
	entered := make(chan struct{}, calls)
	h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (any, error) {
		entered <- struct{}{}
		<-release
		return "done", nil
	})
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	server := protocol.NewConn(ar, aw, pipeCloser{ar, aw}, h, protocol.Options{MaxHandlers: bound})
	client := protocol.NewConn(br, bw, pipeCloser{br, bw}, nil, protocol.Options{})
	defer func() {
		client.Close()
		server.Close()
		client.Wait()
		server.Wait()
	}()
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	defer releaseAll() // before the connections close, even on Fatal

	// Fill the bound, then send more.
	var wg sync.WaitGroup
	held := make(chan error, bound)
	for range bound {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held <- client.Call(t.Context(), "work", nil, nil)
		}()
	}
	for range bound {
		<-entered
	}
	// A generous bound that turns a call left waiting into a failure.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range calls - bound {
		err := client.Call(ctx, "work", nil, nil)
		if !errors.Is(err, protocol.ErrTooManyRequests) {
			t.Fatalf("call %d over the bound: %v; want ErrTooManyRequests", i, err)
		}
	}
	releaseAll()
	wg.Wait()
	close(held)
	for err := range held {
		if err != nil {
			t.Errorf("a call within the bound: %v", err)
		}
	}
	if len(entered) != 0 {
		t.Errorf("%d calls over the bound reached the handler", len(entered))
	}
	var res string
	if err := client.Call(t.Context(), "work", nil, &res); err != nil || res != "done" {
		t.Errorf("a call after the others were answered: %q, %v", res, err)
	}
}
