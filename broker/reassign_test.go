package broker

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// createWithAssignment creates topic with one partition per replica list
// and the given configs.
func (c *testCluster) createWithAssignment(topic string, configs map[string]string, replicas ...[]int32) {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, reps := range replicas {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), reps
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(testCtx(c.t), c.client())
	if err != nil {
		c.t.Fatalf("create %s: %v", topic, err)
	}
	if e := kerr.ErrorForCode(resp.Topics[0].ErrorCode); e != nil {
		c.t.Fatalf("create %s: %v", topic, e)
	}
}

// elect sends ElectLeaders for topic/partition (topic "" = every
// partition: a null topic list) and returns the per-partition results.
func (c *testCluster) elect(typ int8, topic string, partition int32) map[string]map[int32]error {
	c.t.Helper()
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType, req.TimeoutMillis = typ, 30000
	if topic != "" {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{partition}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(testCtx(c.t), c.client())
	if err != nil {
		c.t.Fatalf("elect leaders: %v", err)
	}
	out := map[string]map[int32]error{}
	for _, t := range resp.Topics {
		out[t.Topic] = map[int32]error{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = kerr.ErrorForCode(p.ErrorCode)
		}
	}
	return out
}

// reassign sends AlterPartitionReassignments for one partition (nil
// replicas cancels) and returns its error.
func (c *testCluster) reassign(topic string, partition int32, replicas []int32) error {
	c.t.Helper()
	return c.reassignRF(topic, partition, replicas, true)
}

// reassignRF is reassign with v1's AllowReplicationFactorChange.
func (c *testCluster) reassignRF(topic string, partition int32, replicas []int32, allowRFChange bool) error {
	c.t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis = 30000
	req.AllowReplicationFactorChange = allowRFChange
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition, rp.Replicas = partition, replicas
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(c.t), c.client())
	if err != nil {
		c.t.Fatalf("alter partition reassignments: %v", err)
	}
	if e := kerr.ErrorForCode(resp.ErrorCode); e != nil {
		return e
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// listReassignments returns ListPartitionReassignments for every topic.
func (c *testCluster) listReassignments() []kmsg.ListPartitionReassignmentsResponseTopic {
	c.t.Helper()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	resp, err := req.RequestWith(testCtx(c.t), c.client())
	if err != nil {
		c.t.Fatalf("list partition reassignments: %v", err)
	}
	return resp.Topics
}

// checkValuesInOrder fails unless got is v000000.. in order.
func checkValuesInOrder(t *testing.T, got []string) {
	t.Helper()
	for i, v := range got {
		if want := fmt.Sprintf("v%06d", i); v != want {
			t.Fatalf("record %d: %q, want %q (of %d)", i, v, want, len(got))
		}
	}
}

// TestElectPreferredLeaderAfterRestart: the preferred replica stops, leads
// nothing while away and is listed offline; back in the ISR, a preferred
// election gives it the leadership back with epoch + 1; acks=all records
// from before, during and after are all readable.
func TestElectPreferredLeaderAfterRestart(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, nil)
	c.createWithAssignment("pref", map[string]string{"min.insync.replicas": "2"}, []int32{1, 2, 3})
	c.createWithAssignment("pref2", nil, []int32{1, 3, 2})
	cl := c.client()
	produceSeq(t, cl, "pref2", 0, 10)
	produceSeq(t, cl, "pref", 0, 100)
	if errs := c.elect(0, "pref", 0); !errors.Is(errs["pref"][0], kerr.ElectionNotNeeded) {
		t.Fatalf("preferred election with the preferred leader in place: %v", errs)
	}
	c.stop(0)
	c.waitPartition("pref", 0, func(p raft.Partition) bool { return p.Leader > 1 && !slices.Contains(p.ISR, 1) }, "leadership off node 1")
	produceSeq(t, c.client(), "pref", 100, 100)
	if errs := c.elect(0, "pref", 0); !errors.Is(errs["pref"][0], kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election with the preferred replica down: %v", errs)
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("pref")
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(testCtx(t), c.client())
	if err != nil {
		t.Fatal(err)
	}
	if off := mresp.Topics[0].Partitions[0].OfflineReplicas; !slices.Equal(off, []int32{1}) {
		t.Fatalf("offline replicas with node 1 down: %v", off)
	}
	dreq := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	dt.Topic = "pref"
	dreq.Topics = append(dreq.Topics, dt)
	dreq.ResponsePartitionLimit = 100
	dresp, err := dreq.RequestWith(testCtx(t), c.client())
	if err != nil {
		t.Fatal(err)
	}
	if off := dresp.Topics[0].Partitions[0].OfflineReplicas; !slices.Equal(off, []int32{1}) {
		t.Fatalf("DescribeTopicPartitions offline replicas with node 1 down: %v", off)
	}

	c.restart(0)
	c.waitInSync("pref", 0, 3)
	c.waitInSync("pref2", 0, 3)
	before := c.partitionState("pref", 0)
	if before.Leader == 1 {
		t.Fatal("node 1 leads again without an election (auto balancing is not due)")
	}
	if errs := c.elect(0, "pref", 0); errs["pref"][0] != nil {
		t.Fatalf("preferred election: %v", errs)
	}
	c.waitPartition("pref", 0, func(p raft.Partition) bool { return p.PartitionEpoch > before.PartitionEpoch }, "the election applied")
	after := c.partitionState("pref", 0)
	if after.Leader != 1 || after.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("after the election %+v, before %+v", after, before)
	}
	// Every partition (a null topic list): pref2-0 moves back to node 1;
	// pref-0, already led by node 1, is not listed.
	if errs := c.elect(0, "", 0); len(errs["pref"]) != 0 || len(errs["pref2"]) != 1 || errs["pref2"][0] != nil {
		t.Fatalf("election over all partitions: %v", errs)
	}
	c.waitPartition("pref2", 0, func(p raft.Partition) bool { return p.Leader == 1 }, "node 1 leading pref2-0")
	produceSeq(t, c.client(), "pref", 200, 100)
	c.waitInSync("pref", 0, 3)
	checkValuesInOrder(t, consumeValues(t, c, "pref", 300))
}

// TestElectUncleanOnlyWithoutLeader: an unclean election is refused while
// the partition has a leader; once its only ISR member is gone it elects
// the live replica outside the ISR.
func TestElectUncleanOnlyWithoutLeader(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, func(cfg *Config) { cfg.ReplicaLagTimeMax = 500 * time.Millisecond })
	c.createWithAssignment("unclean", nil, []int32{1, 2})
	produceSeq(t, c.client(), "unclean", 0, 10)
	c.waitPartition("unclean", 0, func(p raft.Partition) bool { return len(p.ISR) == 2 }, "both replicas in the ISR")
	if errs := c.elect(1, "unclean", 0); !errors.Is(errs["unclean"][0], kerr.ElectionNotNeeded) {
		t.Fatalf("unclean election with a leader: %v", errs)
	}
	c.brokers[1].fetchers.hold.Store(true)
	c.waitPartition("unclean", 0, func(p raft.Partition) bool { return slices.Equal(p.ISR, []int32{1}) }, "an ISR of node 1 alone")
	c.stop(0)
	c.waitPartition("unclean", 0, func(p raft.Partition) bool { return p.Leader == -1 }, "no leader")
	c.brokers[1].fetchers.hold.Store(false)
	if errs := c.elect(0, "unclean", 0); !errors.Is(errs["unclean"][0], kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election without the preferred replica: %v", errs)
	}
	before := c.partitionState("unclean", 0)
	if errs := c.elect(1, "unclean", 0); errs["unclean"][0] != nil {
		t.Fatalf("unclean election: %v", errs)
	}
	c.waitPartition("unclean", 0, func(p raft.Partition) bool { return p.PartitionEpoch > before.PartitionEpoch }, "the election applied")
	after := c.partitionState("unclean", 0)
	if after.Leader != 2 || !slices.Equal(after.ISR, []int32{2}) || after.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("after the unclean election %+v", after)
	}
	produceSeq(t, c.client(), "unclean", 100, 10)
}

// TestReassignPartitionUnderLoad moves a partition from {1,2} to {2,3}
// while a producer writes with acks=all: node 3 joins, the reassignment is
// listed while node 3 is held back, completes once it is in the ISR,
// leadership leaves node 1, node 1 deletes its replica, and every
// acknowledged record is readable, in order.
func TestReassignPartitionUnderLoad(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, nil)
	c.createWithAssignment("moved", nil, []int32{1, 2})
	produceSeq(t, c.client(), "moved", 0, 200)

	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		produced = 200
		prodErr  error
	)
	pcl := c.client()
	wg.Add(1)
	go func() { // bounded: at most 300 batches of 10
		defer wg.Done()
		ctx := testCtx(t)
		for range 300 {
			select {
			case <-stop:
				return
			default:
			}
			var recs []*kgo.Record
			for i := produced; i < produced+10; i++ {
				recs = append(recs, &kgo.Record{Topic: "moved", Value: []byte(fmt.Sprintf("v%06d", i))})
			}
			if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				prodErr = err
				return
			}
			produced += 10
			time.Sleep(5 * time.Millisecond)
		}
	}()

	c.brokers[2].fetchers.hold.Store(true)
	if err := c.reassign("moved", 0, []int32{2, 3}); err != nil {
		t.Fatalf("reassign: %v", err)
	}
	listed := c.listReassignments()
	if len(listed) != 1 || listed[0].Topic != "moved" || len(listed[0].Partitions) != 1 {
		t.Fatalf("listed reassignments %+v", listed)
	}
	lp := listed[0].Partitions[0]
	if !slices.Equal(lp.Replicas, []int32{2, 3, 1}) || !slices.Equal(lp.AddingReplicas, []int32{3}) || !slices.Equal(lp.RemovingReplicas, []int32{1}) {
		t.Fatalf("listed partition %+v", lp)
	}
	c.brokers[2].fetchers.hold.Store(false)
	c.waitPartition("moved", 0, func(p raft.Partition) bool {
		return !p.Reassigning() && slices.Equal(p.Replicas, []int32{2, 3}) && p.Leader != 1
	}, "reassignment to {2,3} completed")
	dir := partitionDir(c.cfgs[0].DataDir, "moved", 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, os.ErrNotExist) && c.brokers[0].parts.get("moved", 0) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 1 still has %s (%v)", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the producer write to the new leader too
	close(stop)
	wg.Wait()
	if prodErr != nil {
		t.Fatalf("producer during the reassignment: %v", prodErr)
	}
	t.Logf("%d records acknowledged while the reassignment ran", produced-200)
	produceSeq(t, c.client(), "moved", produced, 100)
	total := produced + 100
	if got := c.listReassignments(); len(got) != 0 {
		t.Fatalf("reassignments listed after completion: %+v", got)
	}
	checkValuesInOrder(t, consumeValues(t, c, "moved", total))
}

// TestCancelReassignment: a reassignment whose new replica cannot catch up
// is cancelled; the original replicas come back and the added broker drops
// its replica. Invalid requests get Kafka's errors.
func TestCancelReassignment(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, nil)
	c.createWithAssignment("cancel", nil, []int32{1, 2})
	produceSeq(t, c.client(), "cancel", 0, 50)
	for _, tc := range []struct {
		topic    string
		part     int32
		replicas []int32
		want     error
	}{
		{"cancel", 0, nil, kerr.NoReassignmentInProgress},
		{"nope", 0, []int32{1, 2}, kerr.UnknownTopicOrPartition},
		{"cancel", 5, []int32{1, 2}, kerr.UnknownTopicOrPartition},
		{"cancel", 0, []int32{2, 2}, kerr.InvalidReplicaAssignment},
		{"cancel", 0, []int32{2, 9}, kerr.InvalidReplicaAssignment},
		{"cancel", 0, []int32{}, kerr.InvalidReplicaAssignment},
	} {
		if err := c.reassign(tc.topic, tc.part, tc.replicas); !errors.Is(err, tc.want) {
			t.Errorf("reassign %s-%d to %v: %v, want %v", tc.topic, tc.part, tc.replicas, err, tc.want)
		}
	}
	if err := c.reassignRF("cancel", 0, []int32{1, 2, 3}, false); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("replication factor change without AllowReplicationFactorChange: %v", err)
	}
	c.brokers[2].fetchers.hold.Store(true)
	if err := c.reassign("cancel", 0, []int32{2, 3}); err != nil {
		t.Fatalf("reassign: %v", err)
	}
	// Node 3 opens its replica as an adding replica.
	deadline := time.Now().Add(30 * time.Second)
	for c.brokers[2].parts.get("cancel", 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("node 3 never opened its replica")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.waitPartition("cancel", 0, func(p raft.Partition) bool { return p.PartitionEpoch > 0 }, "the reassignment applied")
	if p := c.partitionState("cancel", 0); !p.Reassigning() {
		t.Fatalf("reassignment finished with node 3 held: %+v", p)
	}
	if err := c.reassign("cancel", 0, nil); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	c.waitPartition("cancel", 0, func(p raft.Partition) bool { return p.PartitionEpoch > 1 }, "the cancel applied")
	p := c.partitionState("cancel", 0)
	// As in Kafka, the original replicas come back in their order within
	// the reassigning list (target first), not their first order.
	if p.Reassigning() || !slices.Equal(p.Replicas, []int32{2, 1}) || p.Leader != 1 {
		t.Fatalf("after cancel %+v", p)
	}
	c.brokers[2].fetchers.hold.Store(false)
	dir := partitionDir(c.cfgs[2].DataDir, "cancel", 0)
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3 still has %s (%v)", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	produceSeq(t, c.client(), "cancel", 50, 50)
	checkValuesInOrder(t, consumeValues(t, c, "cancel", 100))
}

// TestAutoLeaderRebalance: with a short leader.imbalance.check.interval a
// restarted preferred replica gets its leadership back without an
// election request.
func TestAutoLeaderRebalance(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, func(cfg *Config) {
		cfg.LeaderImbalanceCheckInterval = 300 * time.Millisecond
		// A follower stuck after the leader change must not simply be
		// shrunk out of the ISR while the test watches.
		cfg.ReplicaLagTimeMax = time.Minute
	})
	c.createWithAssignment("balanced", nil, []int32{1, 2, 3}, []int32{2, 3, 1})
	produceSeq(t, c.client(), "balanced", 0, 50)
	c.stop(0)
	c.waitPartition("balanced", 0, func(p raft.Partition) bool { return p.Leader > 1 }, "leadership off node 1")
	c.restart(0)
	c.waitPartition("balanced", 0, func(p raft.Partition) bool { return len(p.ISR) == 3 }, "node 1 in the ISR")
	c.waitPartition("balanced", 0, func(p raft.Partition) bool { return p.Leader == 1 && len(p.ISR) == 3 }, "node 1 leading again")
	if p := c.partitionState("balanced", 1); p.Leader != 2 {
		t.Fatalf("partition 1 left its preferred leader: %+v", p)
	}
	produceSeq(t, c.client(), "balanced", 50, 50)
	// The replica that led partition 0 while node 1 was away appended
	// nothing in its epoch; following node 1 again it must drop that
	// epoch and fetch on (storage.Log.TruncateTo at the log end), so
	// every replica gets every record.
	c.waitInSync("balanced", 0, 3)
	c.waitInSync("balanced", 1, 3)
	got := consumeValues(t, c, "balanced", 100)
	slices.Sort(got)
	checkValuesInOrder(t, got)
}

// TestThrottleConfigsStored: the replication throttle rates that
// kafka-reassign-partitions sets and clears are dynamic broker configs
// (stored and described; TestReplicationThrottle shows them enforced); a
// negative rate is INVALID_CONFIG.
func TestThrottleConfigsStored(t *testing.T) {
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	rate := "1048576"
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "leader.replication.throttled.rate", Value: &rate}}, 1); err != nil {
		t.Fatalf("set throttle: %v", err)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("1", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "leader.replication.throttled.rate" {
			found = c.Value != nil && *c.Value == rate && c.Source == kmsg.ConfigSourceDynamicBrokerConfig
		}
	}
	if !found {
		t.Fatalf("throttle rate not described as set: %+v", rc.Configs)
	}
	bad := "-5"
	resp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "follower.replication.throttled.rate", Value: &bad}}, 1)
	if err == nil {
		err = resp[0].Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("negative rate: %v, want INVALID_CONFIG", err)
	}
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.rate"},
		{Op: kadm.DeleteConfig, Name: "replica.alter.log.dirs.io.max.bytes.per.second"}}, 1); err != nil {
		t.Fatalf("clear throttles: %v", err)
	}
}
