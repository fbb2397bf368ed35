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
	scl := newClient(t, src)
	createTopic(ctx, t, kadm.NewClient(scl), topic, 3, 1, nil)
	// Stopped by finish below, or by the end of ctx when the test fails first.
	prod := startAckedProducer(ctx, newClient(t, src), topic, 1000)

	m := startMirrorProc(ctx, t, src, dst, prefix, replicate.ExactlyOnce)
	m.copied(500, "first records")
	runCuts(t, dst, partitionCuts(ctx, t, dst, m.dcl, m.dstTopic), nil, func(name string) string {
		m.copied(500, "after: "+name)
		return "the mirror copies"
	})
	prod.finish(ctx, t)
	sent, _ := prod.counts()
	m.requireCopied(sent)
	t.Logf("%d records copied exactly once through 3 partitions of the destination's network", sent)
	m.logRestarts()
}

// mirrorProc is a `strom mirror` process the partition tests run between two clusters, copying the
// topics under prefix to destination topics under a prefix of their own. It is killed by its PID when
// the test ends, whatever happened.
type mirrorProc struct {
	t       *testing.T
	ctx     context.Context // bounds every wait
	src     *harness.LocalCluster
	dst     *harness.LocalCluster
	mode    replicate.Mode
	prefix  string
	rename  string
	name    string // --name: the source group (at-least-once), the transactional id (exactly-once)
	cmd     *exec.Cmd
	exited  chan error // the result of cmd.Wait, put back by whoever takes it so the cleanup finds it
	logPath string
	// dstTopic is the destination copy of prefix + ".data"; dcl reads destination metadata quickly.
	dstTopic string
	dcl      *kgo.Client
}

// startMirrorProc starts the mirror, in mode, of the topics under prefix from src to dst, with extra
// flags.
func startMirrorProc(ctx context.Context, t *testing.T, src, dst *harness.LocalCluster, prefix string, mode replicate.Mode, extra ...string) *mirrorProc {
	t.Helper()
	dstPrefix := "eos."
	if mode == replicate.AtLeastOnce {
		dstPrefix = "alo."
	}
	m := &mirrorProc{t: t, ctx: ctx, src: src, dst: dst, mode: mode, prefix: prefix, rename: "prefix:" + dstPrefix,
		name: uniqueName("mp"), exited: make(chan error, 1), logPath: t.TempDir() + "/mirror.log",
		dstTopic: dstPrefix + prefix + ".data"}
	logf, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	args := append([]string{"mirror", "--from", src.Bootstrap(), "--to", dst.Bootstrap(),
		"--topics", regexpQuote(prefix) + `\..*`, "--name", m.name, "--mode", mode.String(),
		"--rename", m.rename, "--progress-interval", "1s", "--log-level", "warn"}, extra...)
	m.cmd = exec.Command(stromBinary(t), args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.exited <- m.cmd.Wait() }()
	t.Cleanup(func() { // the mirror is ours: end it by its PID whatever happens
		_ = m.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies of SIGKILL only once continued
		_ = m.cmd.Process.Kill()
		<-m.exited
	})
	m.dcl = newClient(t, dst, kgo.MetadataMinAge(100*time.Millisecond))
	return m
}

// partitionEnds returns the end offsets of the destination topic's partitions (nil while unknown).
func (m *mirrorProc) partitionEnds() map[int32]int64 {
	ends, err := kadm.NewClient(m.dcl).ListEndOffsets(m.ctx, m.dstTopic)
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// copied waits until the destination holds n more records than when it was called, at least n/6 more
// in each of its partitions (the source's keys spread evenly over them), so a mirror stuck on one
// partition does not pass for one that copies; it fails the test when the mirror exits or ctx ends.
func (m *mirrorProc) copied(n int64, what string) {
	m.t.Helper()
	base := m.partitionEnds()
	for {
		got := m.partitionEnds()
		var sum int64
		each := len(got) > 0
		for p, end := range got {
			grew := end - base[p]
			sum += grew
			if grew < n/6 {
				each = false
			}
		}
		if sum >= n && each {
			return
		}
		select {
		case err := <-m.exited:
			m.exited <- err // for the cleanup
			m.t.Fatalf("%s: mirror exited: %v\n%s", what, err, tail(m.logPath))
		case <-m.ctx.Done():
			m.t.Fatalf("%s: the destination did not grow by %d records (%d in each partition): %v; base %v, now %v\n%s",
				what, n, n/6, m.ctx.Err(), base, got, tail(m.logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// finish waits, once the source stopped taking records, until verify finds the destination equal to
// the source (duplicates allowed only at-least-once), stops the mirror with SIGTERM, which it must obey
// cleanly, and returns the distinct records and the duplicates verify counted on the destination.
func (m *mirrorProc) finish() (copied, dups int) {
	t := m.t
	t.Helper()
	cfg := mirrorConfig(m.src, m.dst, m.prefix, m.name)
	cfg.Rename = m.rename
	cfg.AllowDuplicates = m.mode == replicate.AtLeastOnce
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var rep replicate.VerifyReport
	for {
		vctx, vcancel := context.WithTimeout(m.ctx, time.Minute)
		var err error
		rep, err = replicate.Verify(vctx, cfg, io.Discard)
		vcancel()
		if err == nil {
			break
		}
		if !errors.Is(err, replicate.ErrDifferent) || m.ctx.Err() != nil {
			t.Fatalf("verify: %v (first difference %+v)\n%s", err, rep.First, tail(m.logPath))
		}
		select {
		case err := <-m.exited:
			m.exited <- err // for the cleanup
			t.Fatalf("mirror exited: %v\n%s", err, tail(m.logPath))
		case <-time.After(time.Second):
		}
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-m.exited:
		m.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("mirror after SIGTERM: %v\n%s", err, tail(m.logPath))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("mirror did not stop on SIGTERM\n%s", tail(m.logPath))
	}
	for _, p := range rep.Partitions {
		copied += p.DstCount
		dups += p.Duplicates
	}
	return copied, dups
}

// requireCopied finishes the mirror (finish) and fails the test unless verify found want distinct
// records on the destination, the source's count, and, exactly-once, none of them twice. It returns the
// duplicates verify counted, which only an at-least-once mirror may leave.
func (m *mirrorProc) requireCopied(want int) (dups int) {
	m.t.Helper()
	copied, dups := m.finish()
	if copied != want || (m.mode == replicate.ExactlyOnce && dups != 0) {
		m.t.Fatalf("destination holds %d distinct records (%d duplicates), the source %d", copied, dups, want)
	}
	return dups
}

// restarts returns the mirror log's warnings about failed sessions, each restarted from the last
// durable position, for the test log: a fault may end a session, the copy must stay exact anyway.
func (m *mirrorProc) restarts() []string {
	b, _ := os.ReadFile(m.logPath)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "mirror session failed") {
			out = append(out, line)
		}
	}
	return out
}

// logRestarts logs how many sessions the mirror restarted, and why the first few failed.
func (m *mirrorProc) logRestarts() {
	m.t.Helper()
	r := m.restarts()
	m.t.Logf("%d mirror session restarts", len(r))
	for i, line := range r {
		if i == 5 {
			m.t.Logf("  ...")
			break
		}
		m.t.Logf("  %s", line)
	}
}
