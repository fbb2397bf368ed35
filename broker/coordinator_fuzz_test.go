package broker

import (
	"testing"
	"time"

	"github.com/stromhq/strom/broker/group"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testEpoch is a fixed clock for deterministic tests.
var testEpoch = time.Unix(1_700_000_000, 0)

// FuzzReplayRecord feeds arbitrary __consumer_offsets records to the
// coordinator's loader: undecodable records are skipped, never a panic, and
// what it restores from a group record (classic or consumer protocol) is
// usable by the state machine. The
// input is a 2-byte key length, the key, then the value (empty = tombstone).
func FuzzReplayRecord(f *testing.F) {
	f.Add([]byte{0, 2, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		n := int(data[0])<<8 | int(data[1])
		if n > len(data)-2 {
			return
		}
		key, value := data[2:2+n], data[2+n:]
		if len(value) == 0 {
			value = nil
		}
		metas := map[string]*kmsg.GroupMetadataValue{}
		offsets := map[string]map[group.TopicPartition]*group.Offset{}
		consumers := map[string]map[group.RecordKey][]byte{}
		replayRecord(key, value, metas, consumers, offsets)
		for id, recs := range consumers {
			g := group.New(id, group.DefaultConfig(), testEpoch)
			g.RestoreConsumer(recs, testEpoch, 45*time.Second)
			g.Tick(testEpoch.Add(1 << 40))
			_ = g.ConsumerRecords()
			_ = g.ConsumerTombstones()
		}
		for id, v := range metas {
			g := group.New(id, group.DefaultConfig(), testEpoch)
			g.Restore(v, testEpoch)
			_ = g.Heartbeat(testEpoch, "m-1", nil, v.Generation)
			g.Tick(testEpoch.Add(1 << 40))
			snap := g.Snapshot()
			_ = snap.AppendTo(nil)
		}
		for _, os := range offsets {
			for _, o := range os {
				_ = offsetValue(*o)
			}
		}
	})
}

// TestReplayRoundTrip checks that what the coordinator writes, its loader
// reads back.
func TestReplayRoundTrip(t *testing.T) {
	metas := map[string]*kmsg.GroupMetadataValue{}
	offsets := map[string]map[group.TopicPartition]*group.Offset{}
	tp := group.TopicPartition{Topic: "t", Partition: 2}
	for _, tc := range []struct {
		o    group.Offset
		tomb bool
	}{
		{o: group.Offset{Offset: 10, LeaderEpoch: 4, Metadata: "x", CommitTime: 99, ExpireTime: -1}},
		{o: group.Offset{Offset: 11, LeaderEpoch: -1, Metadata: "", CommitTime: 100, ExpireTime: 500}},
		{tomb: true},
	} {
		var v []byte
		if !tc.tomb {
			v = offsetValue(tc.o)
		}
		replayRecord(offsetKey("g", tp), v, metas, nil, offsets)
		got, ok := offsets["g"][tp]
		switch {
		case tc.tomb && ok:
			t.Errorf("tombstone kept %+v", got)
		case !tc.tomb && (!ok || *got != tc.o):
			t.Errorf("offset %+v read back as %+v", tc.o, got)
		}
	}
	g := group.New("g", group.DefaultConfig(), testEpoch)
	rec := groupRecord(g, testEpoch)
	replayRecord(rec.key, rec.value, metas, nil, offsets)
	if v := metas["g"]; v == nil || v.Generation != 0 {
		t.Fatalf("group record read back as %+v", v)
	}
	g.MarkDead(testEpoch)
	rec = groupRecord(g, testEpoch)
	replayRecord(rec.key, rec.value, metas, nil, offsets)
	if _, ok := metas["g"]; ok {
		t.Fatal("group tombstone ignored")
	}
}
