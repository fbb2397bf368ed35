package integration

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/replicate"
)

// TestMirrorNetworkPartition runs `strom mirror --mode exactly-once` from Apache Kafka into a three-node
// cluster, Apache Kafka (as a migration to a managed Kafka would) and Strom side by side, whose nodes sit
// in network namespaces of their own, while records keep arriving at the source, and partitions the
// destination's network three times: the leader of a destination partition cut off from its followers
// (the mirror still reaches it), the destination's active controller cut off from everything, the
// mirror included, and a leader losing one follower link. After each heal the mirror must copy again;
// once the source stops, the destination must match it exactly (verify without duplicates allowed): the
// transactional copy neither loses nor repeats a record across the faults.
func TestMirrorNetworkPartition(t *testing.T) {
	for _, tg := range netnsClusters3("to-") {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			mirrorPartitionScenario(t, mirrorSource(t), tg.start(t))
		})
	}
}

func mirrorPartitionScenario(t *testing.T, src, dst *harness.LocalCluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prefix := uniqueName("mpart")
	topic := prefix + ".data"
	dstTopic := "eos." + topic
	scl := newClient(t, src)
	createTopic(ctx, t, kadm.NewClient(scl), topic, 3, 1, nil)
	// Stopped by finish below, or by the end of ctx when the test fails first.
	prod := startAckedProducer(ctx, newClient(t, src), topic, 1000)

	name := uniqueName("mp")
	logPath := t.TempDir() + "/mirror.log"
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	mirror := exec.Command(mirrorBinary(t), "mirror", "--from", src.Bootstrap(), "--to", dst.Bootstrap(),
		"--topics", regexpQuote(prefix)+`\..*`, "--name", name, "--mode", "exactly-once",
		"--rename", "prefix:eos.", "--progress-interval", "1s", "--log-level", "warn")
	mirror.Stdout, mirror.Stderr = logf, logf
	if err := mirror.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- mirror.Wait() }()
	defer func() { // the mirror is ours: end it by its PID whatever happens
		_ = mirror.Process.Kill()
		<-exited
	}()

	dcl := newClient(t, dst, kgo.MetadataMinAge(100*time.Millisecond))
	dadm := kadm.NewClient(dcl)
	// copied waits until the destination holds n more records than when it was called.
	copied := func(n int64, what string) {
		t.Helper()
		base, _ := endOffsetSum(ctx, dadm, dstTopic)
		for {
			if got, _ := endOffsetSum(ctx, dadm, dstTopic); got-base >= n {
				return
			}
			select {
			case err := <-exited:
				exited <- err // for the deferred cleanup
				t.Fatalf("%s: mirror exited: %v\n%s", what, err, tail(logPath))
			case <-ctx.Done():
				t.Fatalf("%s: the destination did not grow by %d records: %v\n%s", what, n, ctx.Err(), tail(logPath))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	copied(500, "first records")
	runCuts(t, dst, partitionCuts(ctx, t, dst, dcl, dstTopic), nil, func(name string) string {
		copied(500, "after: "+name)
		return "the mirror copies"
	})
	prod.finish(ctx, t)
	sent, _ := prod.counts()

	cfg := mirrorConfig(src, dst, prefix, name)
	cfg.Rename = "prefix:eos."
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var rep replicate.VerifyReport
	for {
		vctx, vcancel := context.WithTimeout(ctx, time.Minute)
		rep, err = replicate.Verify(vctx, cfg, io.Discard)
		vcancel()
		if err == nil {
			break
		}
		if !errors.Is(err, replicate.ErrDifferent) || ctx.Err() != nil {
			t.Fatalf("verify: %v (first difference %+v)\n%s", err, rep.First, tail(logPath))
		}
		select {
		case err := <-exited:
			exited <- err // for the deferred cleanup
			t.Fatalf("mirror exited: %v\n%s", err, tail(logPath))
		case <-time.After(time.Second):
		}
	}
	if err := mirror.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred cleanup
		if err != nil {
			t.Fatalf("mirror after SIGTERM: %v\n%s", err, tail(logPath))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("mirror did not stop on SIGTERM\n%s", tail(logPath))
	}
	copiedN, dups := 0, 0
	for _, p := range rep.Partitions {
		copiedN += p.DstCount
		dups += p.Duplicates
	}
	if copiedN != sent || dups != 0 {
		t.Fatalf("destination holds %d distinct records (%d duplicates), the source %d", copiedN, dups, sent)
	}
	t.Logf("%d records copied exactly once through 3 partitions of the destination's network", copiedN)
}
