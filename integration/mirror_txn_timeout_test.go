package integration

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
			name := uniqueName("mt")
			m := startMirrorProcess(t, src, dst, prefix, name, "--transaction-timeout", timeout.String())
			dadm := kadm.NewClient(newClient(t, dst, kgo.MetadataMinAge(100*time.Millisecond)))
			m.copied(ctx, t, dadm, "eos."+topic, 500, "first records")

			// The mirror is almost always inside a transaction (begin, produce, offset map, commit, then
			// the next poll), but a stop can land between two. Stop it again, up to five times, until its
			// log shows the aborted transaction's session ending.
			const aborted = "was aborted by its coordinator"
			stalls := 0
			for ; !strings.Contains(m.log(), aborted); stalls++ {
				if stalls == 5 {
					t.Fatalf("no transaction timed out in 5 stalls of %v\n%s", 3*timeout, tail(m.logPath))
				}
				if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * timeout) // the timeout plus the coordinator's check interval, with room
				if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				m.copied(ctx, t, dadm, "eos."+topic, 500, "after a stall")
			}
			t.Logf("a transaction timed out after %d stall(s) of %v", stalls, 3*timeout)
			prod.finish(ctx, t)
			sent, _ := prod.counts()
			m.verifyExact(ctx, t, src, dst, prefix, name, sent)
		})
	}
}

// mirrorProcess is a `strom mirror --mode exactly-once` process started by a test, which owns it: it is
// killed by its PID when the test ends, whatever happens.
type mirrorProcess struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan error // receives Wait's result once; whoever takes it puts it back
}

// startMirrorProcess starts an exactly-once mirror of src topics prefix.* into dst, renamed with the
// prefix "eos.", under name, with extra flags.
func startMirrorProcess(t *testing.T, src, dst harness.Cluster, prefix, name string, extra ...string) *mirrorProcess {
	t.Helper()
	m := &mirrorProcess{logPath: t.TempDir() + "/mirror.log", exited: make(chan error, 1)}
	logf, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	args := append([]string{"mirror", "--from", src.Bootstrap(), "--to", dst.Bootstrap(),
		"--topics", regexpQuote(prefix) + `\..*`, "--name", name, "--mode", "exactly-once",
		"--rename", "prefix:eos.", "--progress-interval", "1s", "--log-level", "warn"}, extra...)
	m.cmd = exec.Command(mirrorBinary(t), args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.exited <- m.cmd.Wait() }()
	t.Cleanup(func() {
		_ = m.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die of SIGKILL until continued
		_ = m.cmd.Process.Kill()
		<-m.exited
	})
	return m
}

// log returns the mirror's output so far.
func (m *mirrorProcess) log() string {
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

// copied waits until dstTopic holds n more records than when it was called; it fails the test if the
// mirror exits or ctx ends first.
func (m *mirrorProcess) copied(ctx context.Context, t *testing.T, adm *kadm.Client, dstTopic string, n int64, what string) {
	t.Helper()
	base, _ := endOffsetSum(ctx, adm, dstTopic)
	for {
		if got, _ := endOffsetSum(ctx, adm, dstTopic); got-base >= n {
			return
		}
		select {
		case err := <-m.exited:
			m.exited <- err
			t.Fatalf("%s: mirror exited: %v\n%s", what, err, tail(m.logPath))
		case <-ctx.Done():
			t.Fatalf("%s: the destination did not grow by %d records: %v\n%s", what, n, ctx.Err(), tail(m.logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// verifyExact waits until strom verify finds the destination identical to the source, stops the mirror
// with SIGTERM, and checks that the destination holds exactly the sent records, none twice.
func (m *mirrorProcess) verifyExact(ctx context.Context, t *testing.T, src, dst harness.Cluster, prefix, name string, sent int) {
	t.Helper()
	cfg := mirrorConfig(src, dst, prefix, name)
	cfg.Rename = "prefix:eos."
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var rep replicate.VerifyReport
	for {
		vctx, vcancel := context.WithTimeout(ctx, time.Minute)
		var err error
		rep, err = replicate.Verify(vctx, cfg, io.Discard)
		vcancel()
		if err == nil {
			break
		}
		if !errors.Is(err, replicate.ErrDifferent) || ctx.Err() != nil {
			t.Fatalf("verify: %v (first difference %+v)\n%s", err, rep.First, tail(m.logPath))
		}
		select {
		case err := <-m.exited:
			m.exited <- err
			t.Fatalf("mirror exited: %v\n%s", err, tail(m.logPath))
		case <-time.After(time.Second):
		}
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-m.exited:
		m.exited <- err
		if err != nil {
			t.Fatalf("mirror after SIGTERM: %v\n%s", err, tail(m.logPath))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("mirror did not stop on SIGTERM\n%s", tail(m.logPath))
	}
	copiedN, dups := 0, 0
	for _, p := range rep.Partitions {
		copiedN += p.DstCount
		dups += p.Duplicates
	}
	if copiedN != sent || dups != 0 {
		t.Fatalf("destination holds %d distinct records (%d duplicates), the source %d", copiedN, dups, sent)
	}
	t.Logf("%d records copied exactly once", copiedN)
}
