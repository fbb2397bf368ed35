package broker

// UnregisterBroker 0 (kafka-cluster.sh unregister --id N): forget a
// decommissioned broker. The registration leaves the metadata, so the
// broker leaves Metadata and DescribeCluster answers, and a broker-only
// node also leaves the raft configuration, so the leader stops
// replicating the metadata log to it. Partitions that still list it keep
// it as an offline replica until they are reassigned, as in Kafka. With the
// authorizer on it needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED).
//
// Differences from Kafka, both refusals with INVALID_REQUEST instead of
// an unregistration the cluster would have to undo:
//   - a current raft voter cannot be unregistered (it is part of the quorum
//     every commit needs; Kafka's controllers are not brokers); remove it
//     from the voters first (RemoveRaftVoter, quorum.go);
//   - a broker that is still unfenced (running and heartbeating) cannot be
//     unregistered: stop it first. Kafka lets the running broker notice and
//     register again.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.UnregisterBrokerRequest{}, 0, 0, (*Broker).handleUnregisterBroker)
}

func (b *Broker) handleUnregisterBroker(rq *request, req *kmsg.UnregisterBrokerRequest) reply {
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	if !b.authorizedCluster(rq, opAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return now(resp)
	}
	if kerrCode, err := b.unregisterBroker(b.ctx, req.BrokerID); err != nil {
		resp.ErrorCode = kerrCode.Code
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
	}
	return now(resp)
}

// isVoter reports whether node id votes in the raft configuration as this
// node knows it: voters change at run time (RemoveRaftVoter demotes a
// static voter, which may then be unregistered; AddRaftVoter promotes a
// broker-only node, which then may not). When the configuration cannot be
// read, the static voter list decides.
func (b *Broker) isVoter(id int32) bool {
	servers, err := b.node.Servers()
	if err != nil {
		return slices.ContainsFunc(b.cfg.Voters, func(v raft.Voter) bool { return v.ID == id }) || (len(b.cfg.Voters) == 0 && id == b.cfg.NodeID)
	}
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == id && s.Voter })
}

// unregisterBroker removes broker id's registration and, for a broker-only
// node, its raft membership; on failure it returns the Kafka error to
// answer with.
func (b *Broker) unregisterBroker(ctx context.Context, id int32) (*kerr.Error, error) {
	if b.isVoter(id) {
		return kerr.InvalidRequest, fmt.Errorf("broker %d is a controller quorum voter and cannot be unregistered", id)
	}
	// Registration and fencing are checked when the command applies: this
	// broker's own view of them may trail the controller's.
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	_, err := b.node.Apply(ctx, raft.UnregisterBroker{ID: id})
	switch {
	case errors.Is(err, raft.ErrBrokerActive):
		return kerr.InvalidRequest, fmt.Errorf("broker %d is running (unfenced); stop it before unregistering it", id)
	case err != nil && !errors.Is(err, raft.ErrUnknownBroker):
		return metaErr(err), fmt.Errorf("unregister broker %d: %w", id, err)
	}
	// Also after ErrUnknownBroker: an earlier unregistration may have
	// stopped between the two steps.
	if rerr := b.node.RemoveNonvoter(ctx, id); rerr != nil {
		return metaErr(rerr), fmt.Errorf("unregister broker %d: raft membership: %w", id, rerr)
	}
	if err != nil {
		return kerr.BrokerIDNotRegistered, fmt.Errorf("broker %d is not registered", id)
	}
	b.log.Info("unregistered broker", "broker", id)
	return nil, nil
}
