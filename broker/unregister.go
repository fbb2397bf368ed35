package broker

// UnregisterBroker 0 (kafka-cluster.sh unregister --id N): forget a
// decommissioned broker. The registration leaves the metadata, so the
// broker leaves Metadata and DescribeCluster answers, and a broker-only
// node also leaves the raft configuration, so the leader stops
// replicating the metadata log to it. Partitions that still list it keep
// it as an offline replica until they are reassigned, as in Kafka.
//
// Differences from Kafka, both refusals with INVALID_REQUEST instead of
// an unregistration the cluster would have to undo:
//   - a voter of the static quorum cannot be unregistered (it is part of
//     the quorum every commit needs; Kafka's controllers are not brokers);
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
	if kerrCode, err := b.unregisterBroker(b.ctx, req.BrokerID); err != nil {
		resp.ErrorCode = kerrCode.Code
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
	}
	return now(resp)
}

// unregisterBroker removes broker id's registration and, for a broker-only
// node, its raft membership; on failure it returns the Kafka error to
// answer with.
func (b *Broker) unregisterBroker(ctx context.Context, id int32) (*kerr.Error, error) {
	st := b.node.State()
	br, ok := st.Brokers[id]
	if !ok {
		return kerr.BrokerIDNotRegistered, fmt.Errorf("broker %d is not registered", id)
	}
	if slices.ContainsFunc(b.cfg.Voters, func(v raft.Voter) bool { return v.ID == id }) || (len(b.cfg.Voters) == 0 && id == b.cfg.NodeID) {
		return kerr.InvalidRequest, fmt.Errorf("broker %d is a controller quorum voter and cannot be unregistered", id)
	}
	if !br.Fenced {
		return kerr.InvalidRequest, fmt.Errorf("broker %d is running (unfenced); stop it before unregistering it", id)
	}
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	if _, err := b.node.Apply(ctx, raft.UnregisterBroker{ID: id}); err != nil && !errors.Is(err, raft.ErrUnknownBroker) {
		return metaErr(err), fmt.Errorf("unregister broker %d: %w", id, err)
	}
	if err := b.node.RemoveNonvoter(ctx, id); err != nil {
		return metaErr(err), fmt.Errorf("unregister broker %d: raft membership: %w", id, err)
	}
	b.log.Info("unregistered broker", "broker", id)
	return nil, nil
}
