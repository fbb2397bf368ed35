package integration

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/internal/testpki"
)

// toolCluster is Kafka's kafka-cluster.sh.
const toolCluster harness.Tool = "org.apache.kafka.tools.ClusterTool"

// TestStromBrokerOnlyNode runs four strom serve processes, three voters and one broker-only node
// (--process-roles broker), with the raft port mutual TLS. The broker-only node leads and follows
// partitions and serves clients; acks=all records written while it leads are read back; once it is
// stopped, Kafka's own kafka-cluster.sh unregisters it (and refuses to unregister a voter), after which
// no node lists it.
func TestStromBrokerOnlyNode(t *testing.T) {
	pki := newTestPKI(t)
	leaf := pki.ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "127.0.0.1")
	certFile := testpki.WriteFile(t, pki.dir, "raft.pem", leaf.CertPEM())
	keyFile := testpki.WriteFile(t, pki.dir, "raft-key.pem", leaf.KeyPEM(t))
	c := harness.StartStrom(t, harness.Nodes(4), harness.Voters(3), harness.StromArgs(
		"--raft-tls-cert-file", certFile, "--raft-tls-key-file", keyFile, "--raft-tls-ca-file", pki.caFile))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	adm := kadm.NewClient(cl)

	topic := uniqueName("broker-only")
	resp, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, resp.Err)
	}
	// kadm's CreateTopic takes no assignment; move partition 0's leadership onto node 4 by reassigning.
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, 0, []int32{4, 1, 2})
	if _, err := adm.AlterPartitionAssignments(ctx, req); err != nil {
		t.Fatalf("reassign partition 0 to 4,1,2: %v", err)
	}
	harness.RunKafkaTool(t, harness.DefaultKafkaVersion, toolLeaderElection, "--bootstrap-server", c.Bootstrap(),
		"--election-type", "preferred", "--topic", topic, "--partition", "0")
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := metadataOf(ctx, cl, 1, topic)
		if err == nil && len(v.Parts) == 1 && v.Parts[0].Leader == 4 && len(v.Parts[0].ISR) == 3 && slices.Contains(v.Brokers, 4) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 not led by broker-only node 4 with a full ISR: %+v %v", v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	const n = 300
	acked := makeRecords(topic, 0, n, time.Now())
	for _, r := range acked {
		r.Partition = 0
	}
	produce(ctx, t, cl, acked)

	// Stop node 4 (a controlled shutdown moves its leadership), then unregister it with Kafka's tool.
	if err := c.StopNode(3); err != nil {
		t.Fatalf("stop node 4: %v", err)
	}
	if _, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, toolCluster, nil,
		"unregister", "--bootstrap-server", c.Bootstrap(), "--id", "1"); err == nil || !strings.Contains(err.Error(), "InvalidRequestException") {
		t.Errorf("unregistering voter 1 was not refused with INVALID_REQUEST: %v", err)
	}
	out := harness.RunKafkaTool(t, harness.DefaultKafkaVersion, toolCluster, "unregister", "--bootstrap-server", c.Bootstrap(), "--id", "4")
	if !strings.Contains(out, "Broker 4 is no longer registered") {
		t.Errorf("kafka-cluster unregister --id 4 printed %q", out)
	}
	for id := int32(1); id <= 3; id++ {
		v, err := metadataOf(ctx, cl, id, "")
		if err != nil || slices.Contains(v.Brokers, 4) {
			t.Errorf("node %d after unregistering 4: brokers %v, %v", id, v.Brokers, err)
		}
	}
	got := consumeN(ctx, t, c, topic, n)
	if len(got) != n {
		t.Fatalf("read back %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if err := sameRecord(r, acked[i]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}
