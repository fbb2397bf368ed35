package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestJavaTransactionalCopier runs Apache Kafka's own exactly-once test
// tool (org.apache.kafka.tools.TransactionalMessageCopier, a Java
// consume-transform-produce loop with random aborts, group subscription
// and sendOffsetsToTransaction with group metadata, i.e. KIP-447) against
// every target: the output must hold every input record exactly once, in
// order, and the group's committed offset must be the input's end.
func TestJavaTransactionalCopier(t *testing.T) {
	for _, tg := range clusters() {
		t.Run(tg.name, func(t *testing.T) { javaCopierScenario(t, tg.kafkaVersion, tg.start(t)) })
	}
}

func javaCopierScenario(t *testing.T, version string, c harness.Cluster) {
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	in, out, group := uniqueName("copy-in"), uniqueName("copy-out"), uniqueName("copy-g")
	createTopic(ctx, t, adm, in, 1, 1, nil)
	createTopic(ctx, t, adm, out, 1, 1, nil)
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: in, Value: []byte(strconv.Itoa(i))})
	}
	produce(ctx, t, cl, rs)

	harness.RunKafkaTool(t, version, harness.Tool("org.apache.kafka.tools.TransactionalMessageCopier"),
		"--broker-list", c.Bootstrap(), "--input-topic", in, "--input-partition", "0", "--output-topic", out,
		"--transactional-id", uniqueName("copier"), "--consumer-group", group, "--transaction-size", "50",
		"--enable-random-aborts", "--group-mode", "--use-group-metadata")

	got := consumeN(ctx, t, c, out, n, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) {
			t.Fatalf("output record %d is %q, want %q", i, r.Value, strconv.Itoa(i))
		}
	}
	// Nothing beyond the n records is committed.
	lso, err := adm.ListCommittedOffsets(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup(out, 0); o.Offset < int64(n) {
		t.Fatalf("output last stable offset %d < %d", o.Offset, n)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(in, 0); !ok || o.At != n {
		t.Fatalf("group committed %+v, want offset %d", o, n)
	}
	t.Logf("copied %d records exactly once", n)
}
