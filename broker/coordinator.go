package broker

// FindCoordinator, versions 0-6.
//
// Strom has no group, transaction or share coordinator yet, so every key is
// answered with COORDINATOR_NOT_AVAILABLE: what Kafka answers while it cannot
// host the coordinator (e.g. __consumer_offsets not yet available). Clients
// treat it as retriable. Unknown coordinator types are INVALID_REQUEST.
//
// Why serve it at all: librdkafka decides from ApiVersions which features a
// broker has, and gates LZ4 compression on FindCoordinator v0 being present
// (it predates LZ4's own version marker). Without it librdkafka silently
// produces LZ4 batches uncompressed. Versions 4+ answer per key (KIP-699).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(&kmsg.FindCoordinatorRequest{}, 0, 6, (*Broker).handleFindCoordinator) }

func (b *Broker) handleFindCoordinator(rq *request, req *kmsg.FindCoordinatorRequest) reply {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	e, msg := kerr.CoordinatorNotAvailable, "Strom has no coordinator of this type yet."
	if req.CoordinatorType < 0 || req.CoordinatorType > 2 {
		e, msg = kerr.InvalidRequest, "Unknown coordinator type."
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Port = key, -1, -1
			c.ErrorCode, c.ErrorMessage = e.Code, kmsg.StringPtr(msg)
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return now(resp)
	}
	resp.ErrorCode, resp.NodeID, resp.Port = e.Code, -1, -1
	if req.Version >= 1 {
		resp.ErrorMessage = kmsg.StringPtr(msg)
	}
	return now(resp)
}
