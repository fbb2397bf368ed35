package integration

import (
	"context"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/kafkacontainer"
	"github.com/stromhq/strom/integration/stromcontainer"
)

// containerCluster adapts a broker container's address to what newClient needs.
type containerCluster struct{ bootstrap string }

func (c containerCluster) Bootstrap() string { return c.bootstrap }
func (containerCluster) Nodes() int          { return 1 }
func (containerCluster) Stop() error         { return nil }
func (containerCluster) Kill(int) error      { return nil }
func (containerCluster) Restart(int) error   { return nil }

// TestStromContainer builds the Strom image from the static binary (docker import, no registry), runs it
// with testcontainers-go on host networking, and produces and consumes through it with franz-go. It needs
// a Docker engine (.ci/provision starts one as root) and fails, naming the engine's error, without one.
func TestStromContainer(t *testing.T) {
	// Ryuk's image would come from a registry, which is unreachable here; cleanup is ours.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	bin := stromBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctr, err := stromcontainer.Run(ctx, stromcontainer.WithBinary(bin))
	if ctr != nil {
		testcontainers.CleanupContainer(t, ctr)
	}
	if err != nil {
		t.Fatalf("strom container: %v", err)
	}

	produceConsumeContainer(ctx, t, containerCluster{ctr.Bootstrap()})
}

// TestKafkaContainer builds the Apache Kafka image (Debian's Java 17 and the cached Kafka jars, docker
// import, no registry; reused while its inputs are unchanged), runs one KRaft node with testcontainers-go
// on host networking, and produces and consumes through it with franz-go, as TestStromContainer does
// for Strom. It needs a Docker engine and the Java runtime on the host.
func TestKafkaContainer(t *testing.T) {
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	ctr, err := kafkacontainer.Run(ctx)
	if ctr != nil {
		testcontainers.CleanupContainer(t, ctr)
	}
	if err != nil {
		t.Fatalf("kafka container: %v", err)
	}
	t.Logf("kafka container %s ready in %.1fs", ctr.Image(), time.Since(began).Seconds())
	produceConsumeContainer(ctx, t, containerCluster{ctr.Bootstrap()})
}

// produceConsumeContainer creates a two-partition topic on c, produces 50 records and checks that a
// consumer reads them back per partition in order and unchanged.
func produceConsumeContainer(ctx context.Context, t *testing.T, c containerCluster) {
	t.Helper()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic := uniqueName("container")
	createTopic(ctx, t, adm, topic, 2, 1, nil)
	rs := makeRecords(topic, 0, 50, time.Now().Truncate(time.Millisecond))
	produce(ctx, t, cl, rs)
	got := byPartition(consumeN(ctx, t, c, topic, len(rs), kgo.FetchMaxWait(time.Second)))
	for p, want := range byPartition(rs) {
		if len(got[p]) != len(want) {
			t.Errorf("partition %d: consumed %d records, want %d", p, len(got[p]), len(want))
			continue
		}
		for i := range want {
			if err := sameRecord(got[p][i], want[i]); err != nil {
				t.Errorf("partition %d record %d: %v", p, i, err)
				break
			}
		}
	}
}
