package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/packer-stdio/packer/protocol"
)

// Environment variables that control logging and tracing.
const (
	// envLog turns the log on: any value but "" and "0" writes it to
	// stderr (or to envLogPath).
	envLog = "PACKER_LOG"
	// envLogPath writes the log to this file instead of stderr.
	envLogPath = "PACKER_LOG_PATH"
	// envTrace writes the protocol trace (every message to and from every
	// plugin, as JSON lines) to this file.
	envTrace = "PACKER_RPC_TRACE"
	// envPrepareTimeout bounds each component/prepare (a duration; the
	// default is host.DefaultPrepareTimeout).
	envPrepareTimeout = "PACKER_PREPARE_TIMEOUT"
	// envTraceData makes the trace record stream payloads (scripts,
	// command output, uploaded files), masked after decoding; without it
	// the trace holds only their length.
	envTraceData = "PACKER_RPC_TRACE_DATA"
)

// prepareTimeout returns PACKER_PREPARE_TIMEOUT, or 0 (the host's default)
// when it is not set.
func prepareTimeout(e *env) (time.Duration, error) {
	v := e.getenv(envPrepareTimeout)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 2m", envPrepareTimeout, v)
	}
	return d, nil
}

// openLog returns where the log goes, and a closer for it. The log holds
// packer's own lines and every plugin's stderr lines prefixed with the
// plugin's binary name. Files are created owner-only: the log and the trace
// can hold what plugins print.
func openLog(e *env) (io.Writer, func(), error) {
	v := e.getenv(envLog)
	path := e.getenv(envLogPath)
	if v == "" || v == "0" {
		return io.Discard, func() {}, nil
	}
	if path == "" {
		return e.stderr, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", envLogPath, err)
	}
	return &warnOnce{w: f, stderr: e.stderr, what: envLogPath + " file " + path}, func() { f.Close() }, nil
}

// openTrace returns the protocol tracer named by PACKER_RPC_TRACE, or nil.
// Every string it records goes through mask, if not nil, so values of
// sensitive variables never reach the file; a masked record is re-encoded
// (keys sorted), an unmasked one holds the bytes exactly as sent. Stream
// payloads are recorded as their length unless PACKER_RPC_TRACE_DATA is
// set (to anything but "" and "0").
func openTrace(e *env, mask func(string) string) (*protocol.Tracer, func(), error) {
	path := e.getenv(envTrace)
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", envTrace, err)
	}
	w := &warnOnce{w: f, stderr: e.stderr, what: envTrace + " file " + path}
	data := e.getenv(envTraceData)
	return protocol.NewTracer(w).WithMask(mask).WithStreamData(data != "" && data != "0"), func() { f.Close() }, nil
}

// warnOnce passes writes to a log or trace file and, the first time one
// fails (a full disk, a quota, a file on a device that refuses writes),
// says so on stderr: the build goes on, but the user learns that the file
// is incomplete. Later errors are returned without a word.
type warnOnce struct {
	w      io.Writer
	stderr io.Writer
	what   string
	once   sync.Once
}

func (w *warnOnce) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if err != nil {
		w.once.Do(func() {
			fmt.Fprintf(w.stderr, "packer: warning: writing the %s failed: %v; it is incomplete from here on\n", w.what, err)
		})
	}
	return n, err
}
