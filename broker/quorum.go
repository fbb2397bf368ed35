package broker

// DescribeQuorum 0-2, AddRaftVoter 0-1 and RemoveRaftVoter 0: the KRaft
// quorum APIs (KIP-595, KIP-836, KIP-853) that kafka-metadata-quorum.sh
// uses, answered from Strom's hashicorp/raft metadata quorum (the mapping
// of terms, offsets and replica progress is in raft/quorum.go).
//
// Every node answers, as Kafka's brokers do by forwarding to the active
// controller: a node that does not lead raft asks the leader over the raft
// port, so LeaderId, the epoch, the high watermark and each replica's
// progress are the leader's. With no leader reachable the partition error
// is NOT_LEADER_OR_FOLLOWER, Kafka's answer from a controller that does not
// lead. The quorum's one partition is __cluster_metadata-0; a request for
// anything else is UNKNOWN_TOPIC_OR_PARTITION at the top level, as Kafka.
// v2's Nodes list every replica that has a broker registration, with all
// its registered listeners (Strom's controllers are its brokers, so the
// client listeners are the controller endpoints).
//
// AddRaftVoter promotes a raft non-voter (a broker-only node, or a voter
// removed earlier) to voter; RemoveRaftVoter demotes a voter to non-voter,
// which keeps replicating the metadata as an observer, as a removed Kafka
// voter that keeps running does. Differences from Kafka:
//   - a node that is not already a raft member cannot be added
//     (INVALID_REQUEST): the request carries client listeners, not the
//     raft address; start it with --process-roles broker first;
//   - directory ids are derived from the cluster id and node id
//     (raft.DirectoryID), so a request must name that id: INVALID_REQUEST
//     for AddRaftVoter, VOTER_NOT_FOUND for RemoveRaftVoter otherwise;
//   - AddRaftVoter always answers once the change is committed
//     (AckWhenCommitted false is served as true);
//   - the listeners of an AddRaftVoter request are not checked against the
//     node's registration.
//
// ACLs as in Kafka: DescribeQuorum needs DESCRIBE on the cluster, the voter
// changes ALTER (CLUSTER_AUTHORIZATION_FAILED otherwise).

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.DescribeQuorumRequest{}, 0, 2, (*Broker).handleDescribeQuorum)
	register(&kmsg.AddRaftVoterRequest{}, 0, 1, (*Broker).handleAddRaftVoter)
	register(&kmsg.RemoveRaftVoterRequest{}, 0, 0, (*Broker).handleRemoveRaftVoter)
}

// metadataTopic is the name Kafka gives the metadata log's topic.
const metadataTopic = "__cluster_metadata"

// quorumTimeout bounds how long a quorum request waits for a leader, and
// caps AddRaftVoter's timeout.
const quorumTimeout = 10 * time.Second

// metaPropertiesFile is Kafka's per-log-directory identity file.
const metaPropertiesFile = "meta.properties"

// writeMetaProperties writes Kafka's meta.properties (version 1: cluster
// id, node id, directory id) into the raft directory dir, so Kafka's tools
// that read a controller's identity from its metadata log directory work
// on a Strom node: kafka-metadata-quorum.sh add-controller with
// metadata.log.dir set to <data dir>/__raft. Strom itself never reads it.
// Rewritten (atomically) only when its content would change.
func writeMetaProperties(dir, clusterID string, nodeID int32) error {
	content := fmt.Sprintf("#Written by Strom for Kafka's tools; Strom does not read it.\nversion=1\ncluster.id=%s\nnode.id=%d\ndirectory.id=%s\n",
		clusterID, nodeID, kafkaUUID(raft.DirectoryID(clusterID, nodeID)))
	path := filepath.Join(dir, metaPropertiesFile)
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// kafkaUUID formats a 16-byte id as Kafka's Uuid.toString does.
func kafkaUUID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func (b *Broker) handleDescribeQuorum(rq *request, req *kmsg.DescribeQuorumRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	topError := func(e *kerr.Error) reply {
		resp.ErrorCode = e.Code
		if req.Version >= 2 {
			resp.ErrorMessage = kmsg.StringPtr(e.Description)
		}
		return now(resp)
	}
	if !b.authorizedCluster(rq, opDescribe) {
		return topError(kerr.ClusterAuthorizationFailed)
	}
	if len(req.Topics) != 1 || req.Topics[0].Topic != metadataTopic ||
		len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].Partition != 0 {
		return topError(kerr.UnknownTopicOrPartition)
	}
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumResponseTopicPartition()
	ctx, cancel := context.WithTimeout(b.ctx, quorumTimeout)
	defer cancel()
	info, err := b.node.DescribeQuorum(ctx)
	if err != nil {
		e := kerr.NotLeaderForPartition
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, context.DeadlineExceeded) {
			e = kerr.UnknownServerError
		}
		b.log.Debug("describe quorum failed", "err", err)
		rp.ErrorCode, rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = e.Code, -1, -1, -1
		if req.Version >= 2 {
			rp.ErrorMessage = kmsg.StringPtr(err.Error())
		}
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return now(resp)
	}
	st := b.node.State()
	rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = info.LeaderID, info.LeaderEpoch, info.HighWatermark
	state := func(r raft.ReplicaProgress) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		s.ReplicaID, s.LogEndOffset = r.ID, r.LogEndOffset
		s.LastFetchTimestamp, s.LastCaughtUpTimestamp = -1, -1
		if !r.LastFetch.IsZero() {
			s.LastFetchTimestamp = r.LastFetch.UnixMilli()
		}
		if !r.LastCaughtUp.IsZero() {
			s.LastCaughtUpTimestamp = r.LastCaughtUp.UnixMilli()
		}
		if req.Version >= 2 {
			s.ReplicaDirectoryID = raft.DirectoryID(st.ClusterID, r.ID)
		}
		return s
	}
	for _, r := range info.Voters {
		rp.CurrentVoters = append(rp.CurrentVoters, state(r))
	}
	for _, r := range info.Observers {
		rp.Observers = append(rp.Observers, state(r))
	}
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	if req.Version >= 2 {
		for _, r := range append(append([]raft.ReplicaProgress{}, info.Voters...), info.Observers...) {
			br, ok := st.Brokers[r.ID]
			if !ok {
				continue
			}
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = r.ID
			eps := br.Listeners
			if len(eps) == 0 {
				name := rq.c.listenerName()
				if name == "" {
					name = "PLAINTEXT"
				}
				eps = []raft.Endpoint{{Name: name, Host: br.Host, Port: br.Port}}
			}
			for _, ep := range eps {
				l := kmsg.NewDescribeQuorumResponseNodeListener()
				l.Name, l.Host, l.Port = ep.Name, ep.Host, uint16(ep.Port)
				n.Listeners = append(n.Listeners, l)
			}
			resp.Nodes = append(resp.Nodes, n)
		}
	}
	return now(resp)
}

// voterChangeError maps a PromoteVoter/DemoteVoter failure to Kafka's code.
func voterChangeError(err error) *kerr.Error {
	switch {
	case errors.Is(err, raft.ErrDuplicateVoter):
		return kerr.DuplicateVoter
	case errors.Is(err, raft.ErrVoterNotFound):
		return kerr.VoterNotFound
	case errors.Is(err, raft.ErrNotMember):
		return kerr.InvalidRequest
	case errors.Is(err, raft.ErrReplicaLagging), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, raft.ErrLeadershipLost):
		return kerr.RequestTimedOut
	case errors.Is(err, raft.ErrNotLeader):
		return kerr.NotLeaderForPartition
	default:
		return kerr.UnknownServerError
	}
}

// checkVoterKey validates the cluster id and the (id, directory id) pair
// of a voter change; it returns the error to answer with, or nil.
func (b *Broker) checkVoterKey(clusterID *string, id int32, dir [16]byte, badDir *kerr.Error) (*kerr.Error, string) {
	st := b.node.State()
	if clusterID != nil && *clusterID != st.ClusterID {
		return kerr.InconsistentClusterID, fmt.Sprintf("cluster id %q is not this cluster's (%s)", *clusterID, st.ClusterID)
	}
	if id < 0 {
		return kerr.InvalidRequest, fmt.Sprintf("invalid voter id %d", id)
	}
	if want := raft.DirectoryID(st.ClusterID, id); dir != want {
		return badDir, fmt.Sprintf("node %d's directory id is %s, not %s", id, kafkaUUID(want), kafkaUUID(dir))
	}
	return nil, ""
}

// changeVoter is the path AddRaftVoter and RemoveRaftVoter share: authorize
// ALTER on the cluster, run the handler's own checks, then make the change
// (PromoteVoter or DemoteVoter) for voter id within timeout, logging done
// on success. It returns the error to answer with, or nil.
func (b *Broker) changeVoter(rq *request, check func() (*kerr.Error, string), timeout time.Duration,
	id int32, change func(context.Context, int32) error, done string) (*kerr.Error, string) {
	if !b.authorizedCluster(rq, opAlter) {
		return kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description
	}
	if e, msg := check(); e != nil {
		return e, msg
	}
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := change(ctx, id); err != nil {
		return voterChangeError(err), err.Error()
	}
	b.log.Info(done, "node", id)
	return nil, ""
}

func (b *Broker) handleAddRaftVoter(rq *request, req *kmsg.AddRaftVoterRequest) reply {
	resp := req.ResponseKind().(*kmsg.AddRaftVoterResponse)
	check := func() (*kerr.Error, string) {
		if req.VoterDirectoryID == [16]byte{} || len(req.Listeners) == 0 {
			return kerr.InvalidRequest, "the request names no voter directory id or no listener"
		}
		return b.checkVoterKey(req.ClusterID, req.VoterID, req.VoterDirectoryID, kerr.InvalidRequest)
	}
	timeout := quorumTimeout
	if t := time.Duration(req.TimeoutMillis) * time.Millisecond; t > 0 && t < timeout {
		timeout = t
	}
	if e, msg := b.changeVoter(rq, check, timeout, req.VoterID, b.node.PromoteVoter, "added raft voter"); e != nil {
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
	}
	return now(resp)
}

func (b *Broker) handleRemoveRaftVoter(rq *request, req *kmsg.RemoveRaftVoterRequest) reply {
	resp := req.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
	check := func() (*kerr.Error, string) {
		return b.checkVoterKey(req.ClusterID, req.VoterID, req.VoterDirectoryID, kerr.VoterNotFound)
	}
	if e, msg := b.changeVoter(rq, check, quorumTimeout, req.VoterID, b.node.DemoteVoter, "removed raft voter (now an observer)"); e != nil {
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
	}
	return now(resp)
}
