package raft

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	hclog "github.com/hashicorp/go-hclog"
)

// hclogAdapter lets hashicorp/raft log through our slog.Logger. It is quiet
// by design: raft's trace/debug/info chatter (heartbeats, elections on every
// start) is dropped; warnings and errors are forwarded.
type hclogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
	// soleVoter, shared by every derived adapter, is set when this node is
	// the only voter: its election at every start is expected, so raft's
	// warning about it is dropped.
	soleVoter *atomic.Bool
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger) *hclogAdapter {
	return &hclogAdapter{l: l, name: "raft", soleVoter: new(atomic.Bool)}
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
	attrs := make([]any, 0, 2+len(a.implied)+len(args))
	attrs = append(attrs, "component", a.name)
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, args...)
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
