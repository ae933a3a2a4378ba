package pluginkit

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// A tracked reader sends a progress update once it has read progressEvery
// bytes and progressInterval has passed since the last notification, so
// updates come "at most a few per second, or every 64 KiB or so" (SPEC
// §7.1), whichever is rarer: a fast local copy sends a few a second rather
// than thousands, each of which the host would decode and draw.
const (
	progressEvery    = 64 << 10
	progressInterval = 250 * time.Millisecond
)

// progressClock is the clock of progress updates; tests replace it.
var progressClock = time.Now

// remoteUI sends ui/* to the host.
type remoteUI struct{ s *session }

var _ UI = remoteUI{}

func (s *session) ui() UI { return remoteUI{s} }

func (u remoteUI) notify(method string, params any) {
	if err := u.s.conn.Notify(context.Background(), method, params); err != nil {
		u.s.logger.Printf("%s: %v", method, err)
	}
}

func (u remoteUI) Say(msg string) {
	u.notify(protocol.MethodUISay, protocol.UIMessageParams{Message: msg})
}

func (u remoteUI) Message(msg string) {
	u.notify(protocol.MethodUIMessage, protocol.UIMessageParams{Message: msg})
}

func (u remoteUI) Error(msg string) {
	u.notify(protocol.MethodUIError, protocol.UIMessageParams{Message: msg})
}

func (u remoteUI) Machine(typ string, data ...string) {
	if data == nil {
		data = []string{}
	}
	u.notify(protocol.MethodUIMachine, protocol.UIMachineParams{Type: typ, Data: data})
}

// Ask calls ui/ask. When the host said in the handshake that it cannot ask,
// Ask returns protocol.ErrUnsupported without asking.
func (u remoteUI) Ask(ctx context.Context, query string) (string, error) {
	u.s.mu.Lock()
	can := u.s.hostCaps.Ask
	u.s.mu.Unlock()
	if !can {
		return "", protocol.ErrUnsupported.WithMessage("the host cannot ask questions")
	}
	var res protocol.UIAskResult
	if err := u.s.conn.Call(ctx, protocol.MethodUIAsk, protocol.UIAskParams{Query: query}, &res); err != nil {
		return "", err
	}
	return res.Answer, nil
}

// TrackProgress wraps r; see [UI]. Nothing is sent when the host said in
// the handshake that it does not show progress.
func (u remoteUI) TrackProgress(label string, current, total int64, r io.ReadCloser) io.ReadCloser {
	u.s.mu.Lock()
	show := u.s.hostCaps.Progress
	id := u.s.mint('p')
	u.s.mu.Unlock()
	if !show {
		return r
	}
	p := &progressReader{u: u, r: r, params: protocol.UIProgressParams{ID: id, Label: label, Current: current, Total: total}}
	p.send(protocol.ProgressStart)
	return p
}

type progressReader struct {
	u      remoteUI
	r      io.ReadCloser
	mu     sync.Mutex
	params protocol.UIProgressParams
	since  int64     // bytes read since the last notification
	last   time.Time // when the last notification was sent
	done   bool
}

func (p *progressReader) send(state string) {
	params := p.params
	params.State = state
	p.last = progressClock()
	p.u.notify(protocol.MethodUIProgress, params)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.params.Current += int64(n)
	p.since += int64(n)
	switch {
	case err == io.EOF:
		p.finish()
	case p.since >= progressEvery && !p.done && progressClock().Sub(p.last) >= progressInterval:
		p.since = 0
		p.send(protocol.ProgressUpdate)
	}
	return n, err
}

// finish sends done once. p.mu must be held.
func (p *progressReader) finish() {
	if !p.done {
		p.done = true
		p.send(protocol.ProgressDone)
	}
}

func (p *progressReader) Close() error {
	p.mu.Lock()
	p.finish()
	p.mu.Unlock()
	return p.r.Close()
}
