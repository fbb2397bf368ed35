package integration

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/replicate"
)

// TestMirrorTransactionTimeout stalls an exactly-once `strom mirror` (SIGSTOP) for longer than its
// destination transaction timeout, into Apache Kafka and into Strom. The destination's coordinator
// aborts the open transaction and bumps the producer epoch; when the mirror runs again its next request
// is fenced. That fence is the transaction's own timeout, not a second mirror, so the mirror must start
// a new session from its last committed batch and go on, and the copy must end up exact: no record lost
// or repeated. (Before, the mirror ended with "fenced by another replicator".) A stalled process is
// what a long GC pause, a frozen VM or a laptop lid does to a real mirror; a cut network gives the same
// abort, which TestMirrorNetworkPartition covers for shorter cuts.
func TestMirrorTransactionTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	for _, tg := range []struct {
		name  string
		start func(t testing.TB) *harness.LocalCluster
	}{
		{"to-kafka-" + harness.DefaultKafkaVersion, func(t testing.TB) *harness.LocalCluster {
			return harness.StartKafka(t, harness.BrokerConfig("transaction.abort.timed.out.transaction.cleanup.interval.ms", "300"))
		}},
		{"to-strom", func(t testing.TB) *harness.LocalCluster {
			return harness.StartStrom(t, harness.StromArgs("--transaction-abort-check-interval", "300ms"))
		}},
	} {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			src, dst := mirrorSource(t), tg.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			prefix := uniqueName("mtto")
			topic := prefix + ".data"
			createTopic(ctx, t, kadm.NewClient(newClient(t, src)), topic, 3, 1, nil)
			prod := startAckedProducer(ctx, newClient(t, src), topic, 1000)
			m := startMirrorProc(ctx, t, src, dst, prefix, replicate.ExactlyOnce, "--transaction-timeout", timeout.String())
			m.copied(500, "first records")

			// A stop times a transaction out only when it lands while the destination's coordinator
			// knows the transaction open: from the first produce of a batch until the commit is sent.
			// The rest of the loop (polling the source, waiting for the commit's answer) is outside:
			// runs here needed 1 to 4 stalls, and one CI run saw none of 8 time a transaction out. So
			// stop it again, up to maxStalls times, until its log shows the aborted transaction's session
			// ending (were half the stalls to land outside, 1 run in 10^6 would fail).
			const maxStalls, stall = 20, 2*timeout + time.Second // the timeout plus the check interval, with room
			aborted := func() bool {
				return slices.ContainsFunc(m.restarts(), func(l string) bool { return strings.Contains(l, "was aborted by its coordinator") })
			}
			stalls := 0
			for ; !aborted(); stalls++ {
				if stalls == maxStalls {
					t.Fatalf("no transaction timed out in %d stalls of %v\n%s", maxStalls, stall, tail(m.logPath))
				}
				if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				time.Sleep(stall)
				if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				m.copied(500, "after a stall")
			}
			t.Logf("a transaction timed out after %d stall(s) of %v", stalls, stall)
			prod.finish(ctx, t)
			sent, _ := prod.counts()
			m.requireCopied(sent)
			t.Logf("%d records copied exactly once", sent)
			m.logRestarts()
		})
	}
}
