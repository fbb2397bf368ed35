package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// The debug listener serves pprof only while it runs, and a bad address
// fails the start instead of being logged later.
func TestServeDebug(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, _, err := serveDebug("127.0.0.1:notaport", logger); err == nil || !strings.Contains(err.Error(), "--debug-listen") {
		t.Fatalf("bad address: %v", err)
	}
	addr, stop, err := serveDebug("127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		stop()
		t.Fatalf("heap profile: status %d body %.200q", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("/ answered %d; only /debug/pprof/ is served", resp.StatusCode)
		}
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("debug listener still serving after stop")
	}
}
