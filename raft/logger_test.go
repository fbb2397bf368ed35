package raft

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

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
