package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/integration/harness"
)

// partView is one partition as a node's Metadata describes it.
type partView struct {
	Leader, LeaderEpoch int32
	Replicas, ISR       []int32
}

// nodeView is what one node's Metadata answers: the unfenced brokers and the partitions of one topic.
type nodeView struct {
	Controller int32
	Brokers    []int32
	Parts      []partView
}

// metadataOf asks node id (1-based broker id) itself, not whichever broker the client prefers; topic ""
// asks for brokers only.
func metadataOf(ctx context.Context, cl *kgo.Client, id int32, topic string) (nodeView, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // "": brokers only
	if topic != "" {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	raw, err := cl.Broker(int(id)).Request(rctx, req)
	if err != nil {
		return nodeView{}, err
	}
	resp := raw.(*kmsg.MetadataResponse)
	v := nodeView{Controller: resp.ControllerID}
	for _, b := range resp.Brokers {
		v.Brokers = append(v.Brokers, b.NodeID)
	}
	slices.Sort(v.Brokers)
	for _, tp := range resp.Topics {
		if err := kerr.ErrorForCode(tp.ErrorCode); err != nil {
			return v, fmt.Errorf("topic %s: %w", topic, err)
		}
		for _, p := range tp.Partitions {
			for int(p.Partition) >= len(v.Parts) {
				v.Parts = append(v.Parts, partView{})
			}
			v.Parts[p.Partition] = partView{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR}
		}
	}
	return v, nil
}

// waitViews polls every node in ids until ok holds for each node's view and all views agree on the
// partitions, failing t when ctx ends first. It returns the agreed view.
func waitViews(ctx context.Context, t *testing.T, cl *kgo.Client, ids []int32, topic, what string,
	ok func(nodeView) bool) nodeView {
	t.Helper()
	var last string
	for {
		var views []nodeView
		var problem string
		for _, id := range ids {
			v, err := metadataOf(ctx, cl, id, topic)
			switch {
			case err != nil:
				problem = fmt.Sprintf("node %d: %v", id, err)
			case !ok(v):
				problem = fmt.Sprintf("node %d: %+v", id, v)
			case len(views) > 0 && fmt.Sprint(v.Parts) != fmt.Sprint(views[0].Parts):
				problem = fmt.Sprintf("node %d disagrees with node %d: %+v vs %+v", id, ids[0], v.Parts, views[0].Parts)
			}
			if problem != "" {
				break
			}
			views = append(views, v)
		}
		if problem == "" {
			return views[0]
		}
		last = problem
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last: %s", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestStromCluster: a three-node Strom cluster (static raft voters) agrees on metadata from every node;
// a topic created through a node that is not the controller has the same replicas and leaders
// everywhere; SIGKILL of a partition leader gets it fenced after the broker session timeout, with its
// partitions led by another replica (leader epoch + 1) and itself out of every ISR; records can be
// produced to the new leaders; restarted, it comes back unfenced. Then a rolling restart (controlled
// shutdowns) and a restart of the whole cluster each end with every partition led.
func TestStromCluster(t *testing.T) {
	c := harness.StartStrom(t, harness.Nodes(3))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := newClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
	all := []int32{1, 2, 3}
	topic := uniqueName("cluster")

	// Every node lists every broker and names the same controller.
	first := waitViews(ctx, t, cl, all, "", "every broker listed", func(v nodeView) bool {
		return slices.Equal(v.Brokers, all) && v.Controller >= 1
	})
	creator := int32(1)
	if first.Controller == creator {
		creator = 2
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 6, 3
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	raw, err := cl.Broker(int(creator)).Request(ctx, req)
	if err != nil {
		t.Fatalf("create topic through node %d: %v", creator, err)
	}
	if err := kerr.ErrorForCode(raw.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic through node %d (controller %d): %v", creator, first.Controller, err)
	}
	// The creating node answers with the topic at once; the others agree.
	if v, err := metadataOf(ctx, cl, creator, topic); err != nil || len(v.Parts) != 6 {
		t.Fatalf("node %d right after creating: %+v %v", creator, v, err)
	}
	view := waitViews(ctx, t, cl, all, topic, "the topic on every node", func(v nodeView) bool {
		if len(v.Parts) != 6 {
			return false
		}
		for _, p := range v.Parts {
			if len(p.Replicas) != 3 || p.Leader < 1 || len(p.ISR) != 3 {
				return false
			}
		}
		return true
	})
	leaders := map[int32]bool{}
	for _, p := range view.Parts {
		leaders[p.Leader] = true
	}
	if len(leaders) < 2 {
		t.Errorf("leaders not spread over the brokers: %+v", view.Parts)
	}

	produceSome := func(what string, from int) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
		defer pcancel()
		var rs []*kgo.Record
		for i := range 12 {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 6), Value: fmt.Appendf(nil, "%s-%d", what, from+i)})
		}
		pcl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(50))
		if err := pcl.ProduceSync(pctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", what, err)
		}
	}
	produceSome("before", 0)

	// Kill the leader of partition 0.
	victim := view.Parts[0].Leader
	survivors := slices.DeleteFunc(slices.Clone(all), func(id int32) bool { return id == victim })
	killed := time.Now()
	if err := c.Kill(int(victim - 1)); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, harness.StromSessionTimeout+30*time.Second)
	after := waitViews(fctx, t, cl, survivors, topic, fmt.Sprintf("broker %d fenced and its partitions moved", victim),
		func(v nodeView) bool {
			if slices.Contains(v.Brokers, victim) {
				return false
			}
			for _, p := range v.Parts {
				if p.Leader == victim || p.Leader < 1 || slices.Contains(p.ISR, victim) {
					return false
				}
			}
			return true
		})
	fcancel()
	t.Logf("broker %d fenced and its leaderships moved %.1fs after SIGKILL (session timeout %v)", victim,
		time.Since(killed).Seconds(), harness.StromSessionTimeout)
	for i, p := range after.Parts {
		old := view.Parts[i]
		if old.Leader == victim && p.LeaderEpoch <= old.LeaderEpoch {
			t.Errorf("partition %d moved from %d to %d without a new leader epoch: %d -> %d", i, victim, p.Leader,
				old.LeaderEpoch, p.LeaderEpoch)
		}
		if !slices.Equal(p.Replicas, old.Replicas) {
			t.Errorf("partition %d replicas changed: %v -> %v", i, old.Replicas, p.Replicas)
		}
	}
	// What an admin client sees agrees.
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || tds[topic].Err != nil {
		t.Fatalf("kadm list topics: %v %v", err, tds[topic].Err)
	}
	for _, p := range tds[topic].Partitions.Sorted() {
		if p.Leader == victim || p.Leader < 1 || slices.Contains(p.ISR, victim) {
			t.Errorf("kadm after the failover: %+v", p)
		}
	}
	produceSome("failover", 100)

	// Restarted, it is unfenced: Restart itself waits for Metadata to list it again.
	if err := c.Restart(int(victim - 1)); err != nil {
		t.Fatal(err)
	}
	back := waitViews(ctx, t, cl, all, topic, fmt.Sprintf("broker %d back", victim), func(v nodeView) bool {
		return slices.Equal(v.Brokers, all)
	})
	for _, p := range back.Parts {
		if p.Leader < 1 {
			t.Errorf("partition without a leader after the restart: %+v", back.Parts)
		}
	}
	produceSome("after", 200)

	// Rolling restart: Restart stops each node with SIGTERM, whose controlled shutdown moves its
	// leaderships away before it exits; every partition has a leader again once the node is back.
	for i := range all {
		if err := c.Restart(i); err != nil {
			t.Fatalf("rolling restart of node %d: %v", i, err)
		}
		waitViews(ctx, t, cl, all, topic, fmt.Sprintf("node %d back in the rolling restart", i+1), func(v nodeView) bool {
			if !slices.Equal(v.Brokers, all) {
				return false
			}
			for _, p := range v.Parts {
				if p.Leader < 1 {
					return false
				}
			}
			return true
		})
	}
	produceSome("rolled", 300)

	// Whole cluster down and up again (started in parallel: each needs a quorum of the others).
	for i := range all {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, len(all))
	for i := range all {
		go func() { errs <- c.Restart(i) }()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Fatalf("restart after killing every node: %v", err)
		}
	}
	waitViews(ctx, t, cl, all, topic, "every partition led after the full restart", func(v nodeView) bool {
		if !slices.Equal(v.Brokers, all) || len(v.Parts) != 6 {
			return false
		}
		for _, p := range v.Parts {
			if p.Leader < 1 {
				return false
			}
		}
		return true
	})
	produceSome("restarted", 400)
	if t.Failed() {
		t.Logf("views: %s", strings.Join([]string{fmt.Sprint(view), fmt.Sprint(after), fmt.Sprint(back)}, "\n"))
	}
}
