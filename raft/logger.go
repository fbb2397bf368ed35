package raft

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

// hclogAdapter lets hashicorp/raft log through our slog.Logger. It is quiet
// by design: raft's trace/debug/info chatter (heartbeats, elections on every
// start) is dropped; warnings and errors are forwarded, each distinct
// message at most once per logRepeatInterval (a voter that is down makes
// raft repeat "failed to heartbeat to" and friends many times a second),
// with the number suppressed in between.
type hclogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
	// soleVoter, shared by every derived adapter, is set when this node is
	// the only voter: its election at every start is expected, so raft's
	// warning about it is dropped.
	soleVoter *atomic.Bool
	// limit is shared by every derived adapter.
	limit *logLimiter
}

// logRepeatInterval is how often one raft message may be logged.
const logRepeatInterval = 5 * time.Second

// logLimiter remembers, per message text, when it was last logged and how
// many repeats were dropped since. mu guards both maps; now is the clock.
type logLimiter struct {
	mu      sync.Mutex
	last    map[string]time.Time
	dropped map[string]int
	now     func() time.Time
}

// allow reports whether msg may be logged now and how many repeats were
// dropped before it.
func (l *logLimiter) allow(msg string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if t, ok := l.last[msg]; ok && now.Sub(t) < logRepeatInterval {
		l.dropped[msg]++
		return false, 0
	}
	if len(l.last) > 1024 { // bounded: messages are raft's constants, but be safe
		clear(l.last)
		clear(l.dropped)
	}
	l.last[msg] = now
	n := l.dropped[msg]
	delete(l.dropped, msg)
	return true, n
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger) *hclogAdapter {
	return &hclogAdapter{l: l, name: "raft", soleVoter: new(atomic.Bool),
		limit: &logLimiter{last: map[string]time.Time{}, dropped: map[string]int{}, now: time.Now}}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case hclog.Warn:
		sl = slog.LevelWarn
	case hclog.Error:
		sl = slog.LevelError
	default:
		return
	}
	if msg == electionStartMsg && a.soleVoter.Load() {
		return
	}
	ok, dropped := a.limit.allow(msg)
	if !ok {
		return
	}
	attrs := make([]any, 0, 4+len(a.implied)+len(args))
	attrs = append(attrs, "component", a.name)
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, args...)
	if dropped > 0 {
		attrs = append(attrs, "repeated", dropped)
	}
	a.l.Log(context.Background(), sl, msg, attrs...)
}

// electionStartMsg is hashicorp/raft's warning when a follower's heartbeat
// timeout fires.
const electionStartMsg = "heartbeat timeout reached, starting election"

func (a *hclogAdapter) Trace(msg string, args ...any) {}
func (a *hclogAdapter) Debug(msg string, args ...any) {}
func (a *hclogAdapter) Info(msg string, args ...any)  {}
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return false }
func (a *hclogAdapter) IsDebug() bool { return false }
func (a *hclogAdapter) IsInfo() bool  { return false }
func (a *hclogAdapter) IsWarn() bool  { return true }
func (a *hclogAdapter) IsError() bool { return true }

func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	cp := *a
	cp.implied = append(append([]any(nil), a.implied...), args...)
	return &cp
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	cp := *a
	cp.name = a.name + "." + name
	return &cp
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	cp := *a
	cp.name = name
	return &cp
}

// SetLevel is ignored: the level is fixed at warn.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level { return hclog.Warn }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter forwards lines that carry hclog's [WARN]/[ERROR] level
// prefix and drops the rest, matching the adapter's level.
func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdWriter{a}
}

type stdWriter struct{ a *hclogAdapter }

func (w stdWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case bytes.Contains(p, []byte("[ERR")):
		w.a.Log(hclog.Error, line)
	case bytes.Contains(p, []byte("[WARN")):
		w.a.Log(hclog.Warn, line)
	}
	return len(p), nil
}
