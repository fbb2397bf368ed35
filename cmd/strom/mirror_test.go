package main

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/stromhq/strom/replicate"
)

// TestReplicateFlags checks that the replicator commands exist with their flags and reject bad input
// before connecting anywhere.
func TestReplicateFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error, or in the output when no error is expected
		err  bool
	}{
		{[]string{"mirror", "--help"}, "--groups", false},
		{[]string{"migrate", "--help"}, "--from-config", false},
		{[]string{"verify", "--help"}, "--allow-duplicates", false},
		{[]string{"mirror", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--mode", "twice"}, "mode \"twice\"", true},
		{[]string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1"}, "--topics is required", true},
		{[]string{"verify", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "("}, "--topics \"(\"", true},
		{[]string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--rename", "upper"}, "--rename", true},
		{[]string{"mirror", "--help"}, "--retry-timeout duration", false},
		{[]string{"migrate", "--help"}, "--retry-timeout duration", false},
		{[]string{"mirror", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--retry-timeout", "0s"}, "--retry-timeout 0s (want a positive duration)", true},
		{[]string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--retry-timeout=-5s"}, "--retry-timeout -5s (want a positive duration)", true},
		{[]string{"mirror", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--retry-timeout", "8"}, `invalid argument "8" for "--retry-timeout" flag`, true},
	}
	for _, tt := range tests {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(tt.args)
		err := root.Execute()
		switch {
		case tt.err && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: err %v, want one containing %q", tt.args, err, tt.want)
		case !tt.err && (err != nil || !strings.Contains(out.String(), tt.want)):
			t.Errorf("%v: err %v, output lacks %q:\n%s", tt.args, err, tt.want, out.String())
		}
	}
}

// TestRetryTimeoutFlag checks that --retry-timeout reaches the replicator's config, 30 s when not given,
// and that verify, which restarts no session, does not take it.
func TestRetryTimeoutFlag(t *testing.T) {
	tests := []struct {
		args    []string
		copying bool
		want    time.Duration
	}{
		{nil, true, 30 * time.Second},
		{[]string{"--retry-timeout", "8s"}, true, 8 * time.Second},
		{[]string{"--retry-timeout=2m"}, true, 2 * time.Minute},
		{nil, false, 30 * time.Second},
	}
	for _, tt := range tests {
		var rf replicateFlags
		fs := pflag.NewFlagSet("mirror", pflag.ContinueOnError)
		rf.add(fs, tt.copying)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if rf.cfg.RetryTimeout != tt.want {
			t.Errorf("%v: RetryTimeout %v, want %v", tt.args, rf.cfg.RetryTimeout, tt.want)
		}
		if got := fs.Lookup("retry-timeout") != nil; got != tt.copying {
			t.Errorf("copying %v: --retry-timeout defined %v", tt.copying, got)
		}
	}
}

// TestProgressView checks the choice of progress view: --json first, then --live, then the terminal test.
func TestProgressView(t *testing.T) {
	tests := []struct {
		json, live, tty bool
		want            replicate.ProgressView
	}{
		{false, false, false, replicate.ViewLog},
		{false, false, true, replicate.ViewTable},
		{false, true, false, replicate.ViewTable},
		{false, true, true, replicate.ViewTable},
		{true, false, false, replicate.ViewJSON},
		{true, false, true, replicate.ViewJSON},
		{true, true, true, replicate.ViewJSON},
	}
	for _, tt := range tests {
		if got := progressView(tt.json, tt.live, tt.tty); got != tt.want {
			t.Errorf("progressView(json=%v, live=%v, tty=%v) = %v, want %v", tt.json, tt.live, tt.tty, got, tt.want)
		}
	}
}

// TestIsTerminal checks the terminal test on a pipe, /dev/null (a character device that is no terminal)
// and a pseudo-terminal.
func TestIsTerminal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("opens /dev/ptmx, a Linux path")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	tests := []struct {
		name string
		f    *os.File
		want bool
	}{{"pipe", w, false}, {"/dev/null", devNull, false}, {"pty", pty, true}}
	for _, tt := range tests {
		if got := isTerminal(tt.f); got != tt.want {
			t.Errorf("isTerminal(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestWriteTopicSummary checks the per-topic lines printed at the end of a migrate.
func TestWriteTopicSummary(t *testing.T) {
	var b bytes.Buffer
	writeTopicSummary(&b, []replicate.TopicSummary{
		{Topic: "orders", Destination: "a.orders", Partitions: 8, Records: 400000, Bytes: 409600000},
		{Topic: "x", Destination: "a.x", Partitions: 1},
	})
	want := "TOPIC   DESTINATION  PARTITIONS  RECORDS  MB\n" +
		"orders  a.orders     8           400000   409.6\n" +
		"x       a.x          1           0        0.0\n"
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestLiveTerminal checks that a log line between two table frames is printed above the table, which is
// drawn again below it, and that after detach log lines no longer touch the table.
func TestLiveTerminal(t *testing.T) {
	type step struct {
		log    bool // a log line, else a table frame
		detach bool
		text   string
	}
	frame1 := "\r\x1b[Ja\x1b[K\nb\x1b[K\n"
	frame2 := "\r\x1b[2A\x1b[Jc\x1b[K\nd\x1b[K\n"
	tests := []struct {
		name    string
		steps   []step
		wantOut string // the terminal, as the bytes arrive (out and err interleaved)
	}{
		{"log before any frame", []step{{log: true, text: "L1\n"}, {text: frame1}}, "L1\n" + frame1},
		{"log between frames", []step{{text: frame1}, {log: true, text: "L1\n"}, {text: frame2}},
			frame1 + "\r\x1b[2A\x1b[J" + "L1\n" + "a\x1b[K\nb\x1b[K\n" + frame2},
		{"two logs redraw the latest frame", []step{{text: frame1}, {text: frame2}, {log: true, text: "L1\n"}, {log: true, text: "L2\n"}},
			frame1 + frame2 + "\r\x1b[2A\x1b[JL1\nc\x1b[K\nd\x1b[K\n" + "\r\x1b[2A\x1b[JL2\nc\x1b[K\nd\x1b[K\n"},
		{"detached", []step{{text: frame1}, {detach: true}, {log: true, text: "L1\n"}}, frame1 + "L1\n"},
	}
	for _, tt := range tests {
		var screen bytes.Buffer
		lt := &liveTerminal{out: &screen, err: &screen}
		for _, s := range tt.steps {
			switch {
			case s.detach:
				lt.detach()
			case s.log:
				if n, err := lt.logWriter().Write([]byte(s.text)); err != nil || n != len(s.text) {
					t.Fatalf("%s: log write = %d, %v", tt.name, n, err)
				}
			default:
				if _, err := lt.tableWriter().Write([]byte(s.text)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if screen.String() != tt.wantOut {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, screen.String(), tt.wantOut)
		}
	}
}
