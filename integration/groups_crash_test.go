package integration

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestGroupOffsetsSurviveKill commits offsets in a tight loop while a
// consumer group is active, kills strom with SIGKILL, restarts it, and
// checks that every acknowledged commit survived (the coordinator rebuilds
// groups and offsets by replaying __consumer_offsets after an unclean stop)
// and that the group is known again.
func TestGroupOffsetsSurviveKill(t *testing.T) {
	c := harness.StartStrom(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic := uniqueName("crash")
	createTopic(ctx, t, adm, topic, 4, 1, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 100, time.Now().Add(-time.Minute)))

	// An active classic group, so group metadata is in the log too.
	member := newClient(t, c, kgo.ConsumerGroup("crash-members"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 100; {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("member consumed %d of 100: %v", n, ctx.Err())
		}
		n += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("member commit: %v", err)
	}

	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		committer := kadm.NewClient(newClient(t, c, kgo.RetryTimeout(time.Second)))
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var recs []kgo.Record
			for p := range int32(4) {
				recs = append(recs, kgo.Record{Topic: topic, Partition: p, Offset: i - 1})
			}
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := committer.CommitOffsets(cctx, "crash", kadm.OffsetsFromRecords(recs...))
			ccancel()
			if err == nil && resp.Error() == nil {
				acked.Store(i)
			}
		}
	}()
	for acked.Load() < 200 {
		if ctx.Err() != nil {
			t.Fatalf("only %d commits acknowledged before the kill", acked.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Kill(0); err != nil {
		t.Fatalf("kill: %v", err)
	}
	last := acked.Load()
	close(stop)
	<-done
	if err := c.Restart(0); err != nil {
		t.Fatalf("restart: %v", err)
	}
	adm2 := kadm.NewClient(newClient(t, c))
	offs, err := adm2.FetchOffsets(ctx, "crash")
	if err != nil {
		t.Fatalf("fetch offsets after restart: %v", err)
	}
	for p := range int32(4) {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.At < last {
			t.Errorf("partition %d: committed %d after restart (found %v), but %d was acknowledged", p, o.At, ok, last)
		}
	}
	mo, err := adm2.FetchOffsets(ctx, "crash-members")
	if err != nil {
		t.Fatalf("fetch member offsets: %v", err)
	}
	total := int64(0)
	mo.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 100 {
		t.Errorf("the group's committed offsets add up to %d, want 100", total)
	}
	lg, err := adm2.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	for _, g := range []string{"crash", "crash-members"} {
		if _, ok := lg[g]; !ok {
			t.Errorf("group %s unknown after restart; groups: %v", g, lg.Groups())
		}
	}
}
