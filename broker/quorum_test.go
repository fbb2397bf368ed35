package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func describeQuorumReq(version int16, topic string, partition int32) *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = version
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rp.Partition = partition
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// quorumOf sends DescribeQuorum v2 to br and returns its one partition.
func quorumOf(ctx context.Context, t *testing.T, br *kgo.Broker) (*kmsg.DescribeQuorumResponse, kmsg.DescribeQuorumResponseTopicPartition) {
	t.Helper()
	r, p, err := tryQuorumOf(ctx, br)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// tryQuorumOf is quorumOf returning its failure.
func tryQuorumOf(ctx context.Context, br *kgo.Broker) (*kmsg.DescribeQuorumResponse, kmsg.DescribeQuorumResponseTopicPartition, error) {
	resp, err := br.Request(ctx, describeQuorumReq(2, metadataTopic, 0))
	if err != nil {
		return nil, kmsg.DescribeQuorumResponseTopicPartition{}, fmt.Errorf("describe quorum: %w", err)
	}
	r := resp.(*kmsg.DescribeQuorumResponse)
	if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return nil, kmsg.DescribeQuorumResponseTopicPartition{}, fmt.Errorf("describe quorum: %+v", r)
	}
	return r, r.Topics[0].Partitions[0], nil
}

func replicaIDs(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []int32 {
	out := []int32{}
	for _, r := range rs {
		out = append(out, r.ReplicaID)
	}
	return out
}

// quorumSettled: every replica at the leader's log end, which is the high
// watermark, with fetch and caught-up times.
func quorumSettled(p kmsg.DescribeQuorumResponseTopicPartition) bool {
	var leo int64 = -2
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == p.LeaderID {
			leo = v.LogEndOffset
		}
	}
	for _, r := range append(slices.Clone(p.CurrentVoters), p.Observers...) {
		if r.LogEndOffset != leo || r.LastFetchTimestamp < 0 || r.LastCaughtUpTimestamp < 0 {
			return false
		}
	}
	return leo == p.HighWatermark
}

// waitQuorumOf polls br's DescribeQuorum until cond holds.
func waitQuorumOf(ctx context.Context, t *testing.T, cl *kgo.Client, id int32, what string, cond func(kmsg.DescribeQuorumResponseTopicPartition) bool) (*kmsg.DescribeQuorumResponse, kmsg.DescribeQuorumResponseTopicPartition) {
	t.Helper()
	var last error
	for {
		r, p, err := tryQuorumOf(ctx, cl.Broker(int(id)))
		if err == nil && cond(p) {
			return r, p
		}
		last = err
		if err != nil {
			// A node that just (re)started may be unknown to the client
			// yet, or not answering: learn the brokers again and retry.
			_, _ = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last %+v (%v)", what, p, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestQuorumAPIs: three voters and a broker-only node. Every node answers
// DescribeQuorum (v0-2) with the controller as leader, voters 1-3,
// observer 4, every replica caught up, and v2's directory ids and nodes;
// malformed requests and bad voter changes get Kafka's errors; node 4 is
// promoted and node 2 removed (it stays an observer), which DescribeQuorum,
// DescribeCluster's controller endpoints and UnregisterBroker's voter
// check all follow.
func TestQuorumAPIs(t *testing.T) {
	t.Parallel()
	c := startMixedCluster(t, 4, 3, nil)
	ctx := testCtx(t)
	cl := c.client()
	st := waitBrokerState(ctx, t, c.brokers[0], "broker 4 unfenced", func(s *raft.State) bool {
		br, ok := s.Brokers[4]
		return ok && !br.Fenced && s.ControllerID >= 0
	})
	for _, b := range c.brokers {
		r, p := waitQuorumOf(ctx, t, cl, b.cfg.NodeID, "settled quorum", quorumSettled)
		ctrl := b.node.State().ControllerID
		if p.LeaderID != ctrl || p.LeaderEpoch < 1 || !slices.Equal(replicaIDs(p.CurrentVoters), []int32{1, 2, 3}) ||
			!slices.Equal(replicaIDs(p.Observers), []int32{4}) || len(r.Nodes) != 4 {
			t.Fatalf("node %d: quorum %+v nodes %+v (controller %d)", b.cfg.NodeID, p, r.Nodes, ctrl)
		}
		for _, rs := range append(p.CurrentVoters, p.Observers...) {
			if rs.ReplicaDirectoryID != raft.DirectoryID(st.ClusterID, rs.ReplicaID) {
				t.Fatalf("replica %d directory id %x", rs.ReplicaID, rs.ReplicaDirectoryID)
			}
		}
		for _, n := range r.Nodes {
			if len(n.Listeners) == 0 || n.Listeners[0].Port == 0 {
				t.Fatalf("node %+v has no listener", n)
			}
		}
	}
	br := cl.Broker(2)
	for _, v := range []int16{0, 1} {
		resp, err := br.Request(ctx, describeQuorumReq(v, metadataTopic, 0))
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.DescribeQuorumResponse)
		if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions[0].CurrentVoters) != 3 {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
	for _, tc := range []struct {
		name      string
		topic     string
		partition int32
	}{{"other topic", "t", 0}, {"partition 1", metadataTopic, 1}} {
		resp, err := br.Request(ctx, describeQuorumReq(2, tc.topic, tc.partition))
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, tc.name, resp.(*kmsg.DescribeQuorumResponse).ErrorCode, kerr.UnknownTopicOrPartition)
	}

	add := func(clusterID string, id int32, dir [16]byte) *kmsg.AddRaftVoterResponse {
		req := kmsg.NewPtrAddRaftVoterRequest()
		req.ClusterID, req.VoterID, req.VoterDirectoryID, req.TimeoutMillis = kmsg.StringPtr(clusterID), id, dir, 30000
		l := kmsg.NewAddRaftVoterRequestListener()
		l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", 9092
		req.Listeners = append(req.Listeners, l)
		resp, err := br.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.AddRaftVoterResponse)
	}
	remove := func(clusterID string, id int32, dir [16]byte) *kmsg.RemoveRaftVoterResponse {
		req := kmsg.NewPtrRemoveRaftVoterRequest()
		req.ClusterID, req.VoterID, req.VoterDirectoryID = kmsg.StringPtr(clusterID), id, dir
		resp, err := br.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.RemoveRaftVoterResponse)
	}
	cid := st.ClusterID
	dir := func(id int32) [16]byte { return raft.DirectoryID(cid, id) }
	for _, tc := range []struct {
		name string
		code int16
		want *kerr.Error
	}{
		{"add: wrong cluster", add("nope", 4, dir(4)).ErrorCode, kerr.InconsistentClusterID},
		{"add: wrong directory", add(cid, 4, dir(5)).ErrorCode, kerr.InvalidRequest},
		{"add: a voter", add(cid, 1, dir(1)).ErrorCode, kerr.DuplicateVoter},
		{"add: not a raft member", add(cid, 9, dir(9)).ErrorCode, kerr.InvalidRequest},
		{"remove: wrong cluster", remove("nope", 2, dir(2)).ErrorCode, kerr.InconsistentClusterID},
		{"remove: wrong directory", remove(cid, 2, dir(3)).ErrorCode, kerr.VoterNotFound},
		{"remove: an observer", remove(cid, 4, dir(4)).ErrorCode, kerr.VoterNotFound},
		{"remove: unknown", remove(cid, 9, dir(9)).ErrorCode, kerr.VoterNotFound},
	} {
		wantCode(t, tc.name, tc.code, tc.want)
	}

	if r := add(cid, 4, dir(4)); r.ErrorCode != 0 {
		t.Fatalf("add voter 4: %v %s", kerr.ErrorForCode(r.ErrorCode), *r.ErrorMessage)
	}
	if r := remove(cid, 2, dir(2)); r.ErrorCode != 0 {
		t.Fatalf("remove voter 2: %v %s", kerr.ErrorForCode(r.ErrorCode), *r.ErrorMessage)
	}
	waitQuorumOf(ctx, t, cl, 3, "voters 1,3,4 and observer 2", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		return slices.Equal(replicaIDs(p.CurrentVoters), []int32{1, 3, 4}) && slices.Equal(replicaIDs(p.Observers), []int32{2}) && quorumSettled(p)
	})

	// Controllers (DescribeCluster endpoint type 2) follow the voters.
	for {
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.EndpointType = 2
		resp, err := dc.RequestWith(ctx, cl.Broker(1))
		if err != nil || resp.ErrorCode != 0 || resp.EndpointType != 2 {
			t.Fatalf("describe controllers: %+v %v", resp, err)
		}
		var got []int32
		for _, b := range resp.Brokers {
			got = append(got, b.NodeID)
		}
		if slices.Equal(got, []int32{1, 3, 4}) && resp.ControllerID >= 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("controllers %v, want 1,3,4", got)
		case <-time.After(50 * time.Millisecond):
		}
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = 3
	if resp, err := dc.RequestWith(ctx, cl.Broker(1)); err != nil || resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("endpoint type 3: %+v %v", resp, err)
	}
	// Node 4 votes now: it cannot be unregistered.
	if e, err := c.brokers[0].unregisterBroker(ctx, 4); e != kerr.InvalidRequest {
		t.Fatalf("unregister voter 4: %v %v", e, err)
	}
	// Demoted node 2 restarts with its static voter flags and stays an
	// observer: the raft configuration in its log wins.
	c.stop(1)
	c.restart(1)
	waitQuorumOf(ctx, t, c.client(), 2, "node 2 back as an observer", func(p kmsg.DescribeQuorumResponseTopicPartition) bool {
		return slices.Equal(replicaIDs(p.CurrentVoters), []int32{1, 3, 4}) && slices.Equal(replicaIDs(p.Observers), []int32{2}) && quorumSettled(p)
	})
}

// TestQuorumAPIsAuthz: without ACLs, DescribeQuorum needs DESCRIBE and the
// voter changes ALTER on the cluster.
func TestQuorumAPIsAuthz(t *testing.T) {
	b, br := authzBroker(t)
	dq := authzSend[*kmsg.DescribeQuorumResponse](t, br, describeQuorumReq(2, metadataTopic, 0))
	wantCode(t, "describe quorum", dq.ErrorCode, kerr.ClusterAuthorizationFailed)
	add := kmsg.NewPtrAddRaftVoterRequest()
	wantCode(t, "add voter", authzSend[*kmsg.AddRaftVoterResponse](t, br, add).ErrorCode, kerr.ClusterAuthorizationFailed)
	rm := kmsg.NewPtrRemoveRaftVoterRequest()
	wantCode(t, "remove voter", authzSend[*kmsg.RemoveRaftVoterResponse](t, br, rm).ErrorCode, kerr.ClusterAuthorizationFailed)

	grantACLs(t, b, anonACL(resCluster, clusterResource, opDescribe))
	dq = authzSend[*kmsg.DescribeQuorumResponse](t, br, describeQuorumReq(2, metadataTopic, 0))
	if dq.ErrorCode != 0 || dq.Topics[0].Partitions[0].LeaderID != b.cfg.NodeID {
		t.Fatalf("describe quorum with DESCRIBE: %+v", dq)
	}
	wantCode(t, "remove voter with DESCRIBE only", authzSend[*kmsg.RemoveRaftVoterResponse](t, br, rm).ErrorCode, kerr.ClusterAuthorizationFailed)
	grantACLs(t, b, anonACL(resCluster, clusterResource, opAlter))
	rm.VoterID, rm.VoterDirectoryID = b.cfg.NodeID, raft.DirectoryID(b.node.State().ClusterID, b.cfg.NodeID)
	wantCode(t, "remove the only voter", authzSend[*kmsg.RemoveRaftVoterResponse](t, br, rm).ErrorCode, kerr.VoterNotFound)
}

// TestMetaProperties: the broker leaves Kafka's meta.properties in its raft
// directory with the directory id DescribeQuorum reports.
func TestMetaProperties(t *testing.T) {
	b := startTestBroker(t, nil)
	data, err := os.ReadFile(filepath.Join(b.cfg.DataDir, raftDirName, metaPropertiesFile))
	if err != nil {
		t.Fatal(err)
	}
	cid := b.node.State().ClusterID
	for _, want := range []string{"version=1\n", "cluster.id=" + cid + "\n", fmt.Sprintf("node.id=%d\n", b.cfg.NodeID),
		"directory.id=" + kafkaUUID(raft.DirectoryID(cid, b.cfg.NodeID)) + "\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("meta.properties lacks %q:\n%s", want, data)
		}
	}
}
