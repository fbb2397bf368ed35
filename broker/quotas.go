package broker

// DescribeClientQuotas, versions 0-1.
//
// Strom enforces no client quotas and stores none, so every filter matches
// nothing: the answer is an empty entry list. It is served so Kafka's
// `kafka-configs.sh --describe --entity-type users` (which asks for quotas
// beside the SCRAM credentials) works. AlterClientQuotas is not served.
// It needs DESCRIBE_CONFIGS on the cluster, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(&kmsg.DescribeClientQuotasRequest{}, 0, 1, (*Broker).handleDescribeClientQuotas)
}

func (b *Broker) handleDescribeClientQuotas(rq *request, req *kmsg.DescribeClientQuotasRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !b.authorizedCluster(rq, opDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return now(resp)
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	return now(resp)
}
