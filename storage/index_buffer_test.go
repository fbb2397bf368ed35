package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestIndexEntriesBuffered: index entries reach the index files in batches
// (not one write per entry), every entry reaches them on Close, and entries
// lost with a crash are rebuilt by recovery, so reads and timestamp lookups
// are the same in every case.
func TestIndexEntriesBuffered(t *testing.T) {
	const n = 2000 // batches of ~130 bytes, an index entry each (interval 64)
	tests := []struct {
		name    string
		batches int
		crash   bool
	}{
		{"close with few entries pending", 40, false},
		{"crash with few entries pending", 40, true},
		{"close after flushes", n, false},
		{"crash after flushes", n, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := DefaultConfig()
			cfg.IndexIntervalBytes = 64
			cfg.Fsync = FsyncNever
			l := mustOpen(t, dir, cfg)
			bs := fill(t, l, tc.batches, nil)
			segs := *l.segs.Load()
			memEntries := len(segs[len(segs)-1].idx.Load().off)
			idxPath := filepath.Join(dir, segmentName(0)+indexSuffix)
			st, err := os.Stat(idxPath)
			if err != nil {
				t.Fatal(err)
			}
			onDisk := int(st.Size()) / offsetEntrySize
			if onDisk > memEntries || (tc.batches < 100 && onDisk != 0) {
				t.Fatalf("before close: %d entries on disk, %d in memory", onDisk, memEntries)
			}
			if tc.batches == n && onDisk == 0 {
				t.Fatalf("no index entries flushed after %d appends", n)
			}
			if tc.crash {
				crash(l)
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if !tc.crash {
				st, err := os.Stat(idxPath)
				if err != nil {
					t.Fatal(err)
				}
				if got := int(st.Size()) / offsetEntrySize; got != memEntries {
					t.Fatalf("after close: %d entries on disk, want %d", got, memEntries)
				}
			}
			l = mustOpen(t, dir, cfg)
			defer l.Close()
			for i, b := range bs {
				sl, err := l.Read(int64(3*i), 1, l.EndOffset())
				if err != nil {
					t.Fatal(err)
				}
				got, err := sl.Bytes()
				sl.Release()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, b) {
					t.Fatalf("batch %d differs after reopen", i)
				}
				base, _, found, err := l.OffsetForTimestamp(int64(1000 * i))
				if err != nil || !found || base != int64(3*i) {
					t.Fatalf("timestamp of batch %d: base %d found %v err %v", i, base, found, err)
				}
			}
		})
	}
}
