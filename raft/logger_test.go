package raft

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	var l hclog.Logger = newHCLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l = l.Named("net").With("peer", "2")
	l.Trace("trace")
	l.Debug("debug")
	l.Info("info")
	l.Warn("careful", "k", 1)
	l.Error("broken", "err", "x")
	l.StandardLogger(nil).Print("[INFO] chatter")
	l.StandardLogger(nil).Print("[WARN] std warning")
	out := buf.String()
	for _, dropped := range []string{"trace", "debug", "msg=info", "chatter"} {
		if strings.Contains(out, dropped) {
			t.Errorf("%q forwarded:\n%s", dropped, out)
		}
	}
	for _, want := range []string{
		`level=WARN msg=careful component=raft.net peer=2 k=1`,
		`level=ERROR msg=broken component=raft.net peer=2 err=x`,
		`level=WARN msg="[WARN] std warning"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if l.IsInfo() || !l.IsWarn() || l.GetLevel() != hclog.Warn {
		t.Error("level reporting")
	}
}

// TestHCLogAdapterRepeats: one message is logged at most once per
// logRepeatInterval, then with the count of repeats dropped; other
// messages are not held back.
func TestHCLogAdapterRepeats(t *testing.T) {
	var buf bytes.Buffer
	a := newHCLogAdapter(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1000, 0)
	a.limit.now = func() time.Time { return now }
	for range 50 {
		a.Error("failed to heartbeat to", "peer", "x")
	}
	a.Warn("other")
	now = now.Add(logRepeatInterval)
	a.Error("failed to heartbeat to", "peer", "x")
	out := buf.String()
	if n := strings.Count(out, "failed to heartbeat to"); n != 2 {
		t.Fatalf("%d lines of the repeated message:\n%s", n, out)
	}
	if !strings.Contains(out, "msg=other") || !strings.Contains(out, "repeated=49") {
		t.Fatalf("missing the other message or the repeat count:\n%s", out)
	}
}
