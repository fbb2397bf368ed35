package raft

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// TestIsSoleVoter: the latest configuration decides, from the log when it
// holds one after the newest snapshot, else from the snapshot.
func TestIsSoleVoter(t *testing.T) {
	self := hraft.ServerID("1")
	voter := func(id string) hraft.Server {
		return hraft.Server{Suffrage: hraft.Voter, ID: hraft.ServerID(id), Address: hraft.ServerAddress("127.0.0.1:1")}
	}
	nonvoter := func(id string) hraft.Server {
		return hraft.Server{Suffrage: hraft.Nonvoter, ID: hraft.ServerID(id), Address: hraft.ServerAddress("127.0.0.1:2")}
	}
	tests := []struct {
		name string
		snap *hraft.Configuration   // nil: no snapshot
		log  []*hraft.Configuration // nil entries are commands
		want bool
	}{
		{"empty", nil, nil, false},
		{"bootstrap", nil, []*hraft.Configuration{{Servers: []hraft.Server{voter("1")}}}, true},
		{"with a nonvoter", nil, []*hraft.Configuration{{Servers: []hraft.Server{voter("1")}}, nil, {Servers: []hraft.Server{voter("1"), nonvoter("2")}}, nil}, true},
		{"voter added", nil, []*hraft.Configuration{{Servers: []hraft.Server{voter("1")}}, {Servers: []hraft.Server{voter("1"), voter("2")}}, nil}, false},
		{"other node only", nil, []*hraft.Configuration{{Servers: []hraft.Server{voter("2")}}}, false},
		{"snapshot only", &hraft.Configuration{Servers: []hraft.Server{voter("1")}}, nil, true},
		{"snapshot then commands", &hraft.Configuration{Servers: []hraft.Server{voter("1"), voter("3")}}, []*hraft.Configuration{nil, nil}, false},
		{"log overrides snapshot", &hraft.Configuration{Servers: []hraft.Server{voter("1"), voter("3")}}, []*hraft.Configuration{{Servers: []hraft.Server{voter("1")}}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			snaps := hraft.NewInmemSnapshotStore()
			idx := uint64(0)
			if tc.snap != nil {
				idx = 10
				_, trans := hraft.NewInmemTransport("")
				sink, err := snaps.Create(hraft.SnapshotVersionMax, idx, 1, *tc.snap, idx, trans)
				if err != nil {
					t.Fatal(err)
				}
				if err := sink.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range tc.log {
				idx++
				e := &hraft.Log{Index: idx, Term: 1, Type: hraft.LogCommand, Data: []byte{0}}
				if c != nil {
					e.Type, e.Data = hraft.LogConfiguration, hraft.EncodeConfiguration(*c)
				}
				if err := store.StoreLog(e); err != nil {
					t.Fatal(err)
				}
			}
			if got := isSoleVoter(store, snaps, self); got != tc.want {
				t.Fatalf("isSoleVoter = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSoleVoterStart: a bootstrapped node starts with the short timeouts,
// relaxes the heartbeat timeout to twice its lease once it leads, logs no
// election warning, and is recognised as the sole voter again on reopen.
func TestSoleVoterStart(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	n, err := Open(Config{NodeID: 1, DataDir: dir, BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// Open waited for the cluster id, which watchLeader proposes only
	// after relaxing the timeouts.
	if !n.soleVoter {
		t.Fatal("bootstrapped node not a sole voter")
	}
	if got := n.r.ReloadableConfig().HeartbeatTimeout; got != 2*soleVoterTimeout {
		t.Fatalf("leader heartbeat timeout %v, want %v", got, 2*soleVoterTimeout)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n, err = Open(Config{NodeID: 1, DataDir: dir, BindAddr: "127.0.0.1:0", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !n.soleVoter {
		t.Fatal("reopened single-voter node not a sole voter")
	}
	if err := n.WaitLeader(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, electionStartMsg) {
		t.Fatalf("election warning logged for a sole voter:\n%s", out)
	}
}

// syncWriter serializes writes from raft's goroutines into w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
