package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestConsumerGroupRestart848 proves that a KIP-848 consumer group lives through a restart of its
// coordinator: two members (franz-go with the server-side balancer, or Apache Kafka 4.3.1's Java
// consumer with group.protocol=consumer) consume with a synchronous commit after every poll, the
// broker is restarted mid-life (SIGTERM, and for franz-go also SIGKILL; same data), more records
// arrive, and then
//   - the group has the same member ids and the same group epoch as before the restart: the members
//     resumed where they were instead of rejoining (a rejoin bumps the epoch),
//   - every record was reported exactly once (a member reports the records of a poll only after its
//     commit succeeded), so no committed position was lost and nothing was read twice,
//   - the committed offsets are the ends of the partitions.
//
// The same scenario runs against Apache Kafka 4.3.1, which persists these groups the same way.
func TestConsumerGroupRestart848(t *testing.T) {
	targets := []struct {
		name  string
		start func(t *testing.T) harness.Cluster
	}{
		{"kafka-" + harness.DefaultKafkaVersion, func(t *testing.T) harness.Cluster { return harness.StartKafka(t) }},
		{"strom", func(t *testing.T) harness.Cluster { return harness.StartStrom(t) }},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel() // separate clusters; most of the scenario waits for broker restarts
			c := tg.start(t)
			for _, tc := range []struct{ client, stop string }{
				{"franz-go", "sigterm"}, {"java", "sigterm"}, {"franz-go", "sigkill"},
			} {
				t.Run(tc.client+"/"+tc.stop, func(t *testing.T) { restart848Scenario(t, c, tc.client, tc.stop == "sigkill") })
			}
		})
	}
}

// restartLedger counts the records members report.
type restartLedger struct {
	mu      sync.Mutex
	counts  map[string]int
	members map[int]int // records per member index
	change  chan struct{}
}

func (l *restartLedger) add(member int, values ...string) {
	l.mu.Lock()
	for _, v := range values {
		l.counts[v]++
	}
	l.members[member] += len(values)
	l.mu.Unlock()
	select {
	case l.change <- struct{}{}:
	default:
	}
}

// waitFor blocks until n distinct records were reported.
func (l *restartLedger) waitFor(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		l.mu.Lock()
		got := len(l.counts)
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-l.change:
		case <-time.After(time.Second):
		case <-ctx.Done():
			t.Fatalf("members reported %d of %d records", got, n)
		}
	}
}

// restart848Scenario runs the scenario with one client kind; kill stops the broker with SIGKILL
// instead of SIGTERM, so only what was durable when a heartbeat or commit was answered survives.
func restart848Scenario(t *testing.T, c harness.Cluster, client string, kill bool) {
	const half = 600
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic, group := uniqueName("restart848"), uniqueName("r848")
	createTopic(ctx, t, adm, topic, 6, 1, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, half, time.Now().Add(-time.Minute)))

	l := &restartLedger{counts: map[string]int{}, members: map[int]int{}, change: make(chan struct{}, 1)}
	var stops []func()
	for i := range 2 {
		switch client {
		case "franz-go":
			stops = append(stops, startKgo848Member(t, c, topic, group, i, l))
		default:
			stops = append(stops, startJava848Member(ctx, t, c, topic, group, i, l))
		}
	}
	stopAll := func() {
		for _, stop := range stops {
			stop()
		}
		stops = nil
	}
	defer stopAll()

	l.waitFor(ctx, t, half)
	var before kadm.DescribedConsumerGroup
	for {
		dg, err := adm.DescribeConsumerGroups(ctx, group)
		if err == nil && dg[group].Err == nil && dg[group].State == "Stable" && len(dg[group].Members) == 2 {
			before = dg[group]
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group never stable with 2 members: %+v %v", dg[group], err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	began := time.Now()
	if kill {
		if err := c.Kill(0); err != nil {
			t.Fatalf("kill: %v", err)
		}
	}
	if err := c.Restart(0); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("restarted in %v", time.Since(began).Round(time.Millisecond))
	cl2 := newClient(t, c)
	produce(ctx, t, cl2, makeRecords(topic, half, half, time.Now().Add(-time.Minute)))
	l.waitFor(ctx, t, 2*half)

	adm2 := kadm.NewClient(cl2)
	dg, err := adm2.DescribeConsumerGroups(ctx, group)
	if err != nil || dg[group].Err != nil {
		t.Fatalf("describe after restart: %+v %v", dg[group], err)
	}
	after := dg[group]
	if ids(before) == nil || !slices.Equal(ids(before), ids(after)) || before.Epoch != after.Epoch {
		t.Errorf("group before restart: epoch %d members %v; after: epoch %d members %v (members rejoined instead of resuming)",
			before.Epoch, ids(before), after.Epoch, ids(after))
	}
	stopAll()

	l.mu.Lock()
	for v, n := range l.counts {
		if n != 1 {
			t.Errorf("record %s reported %d times", v, n)
		}
	}
	if len(l.counts) != 2*half {
		t.Errorf("%d distinct records reported, want %d", len(l.counts), 2*half)
	}
	t.Logf("records per member: %v", l.members)
	l.mu.Unlock()

	ends, err := adm2.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	committed, err := adm2.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		got, ok := committed.Lookup(topic, o.Partition)
		if !ok || got.At != o.Offset {
			t.Errorf("partition %d: committed %d (found %v), end %d", o.Partition, got.At, ok, o.Offset)
		}
	})
}

// ids lists a described group's member ids, sorted.
func ids(g kadm.DescribedConsumerGroup) []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, m.MemberID)
	}
	slices.Sort(out)
	return out
}

// startKgo848Member runs a franz-go KIP-848 member in this process: poll, commit the poll's records
// synchronously, report them once the commit succeeded. The retry timeout outlasts the restart, so a
// commit caught by it is retried rather than failed. The returned func stops it (leaving the group).
func startKgo848Member(t *testing.T, c harness.Cluster, topic, group string, idx int, l *restartLedger) func() {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer(),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RetryTimeout(90*time.Second),
	)
	if err != nil {
		t.Fatalf("new member: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := cl.PollFetches(pctx)
			pcancel()
			if recs := fs.Records(); len(recs) > 0 {
				if err := cl.CommitRecords(ctx, recs...); err != nil {
					if ctx.Err() == nil {
						t.Logf("member %d: commit of %d records failed: %v", idx, len(recs), err)
					}
				} else {
					vals := make([]string, len(recs))
					for i, r := range recs {
						vals[i] = string(r.Value)
					}
					l.add(idx, vals...)
				}
			}
			cl.AllowRebalance()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			cl.Close()
		})
	}
}

// startJava848Member runs java848/GroupConsumer.java with group.protocol=consumer (it commits
// synchronously after every poll and prints "V <value>" for each record of a poll whose commit
// succeeded). The returned func stops it through its stop file and waits for it to exit.
func startJava848Member(ctx context.Context, t *testing.T, c harness.Cluster, topic, group string, idx int,
	l *restartLedger) func() {
	java, err := harness.Java()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	libs, err := harness.KafkaLibs(harness.DefaultKafkaVersion)
	if err != nil {
		t.Fatalf("kafka %s jars: %v", harness.DefaultKafkaVersion, err)
	}
	src, err := filepath.Abs(filepath.Join("java848", "GroupConsumer.java"))
	if err != nil {
		t.Fatal(err)
	}
	stopFile := filepath.Join(t.TempDir(), "stop")
	cmd := exec.CommandContext(ctx, java, "-Xmx256m", "-cp", filepath.Join(libs, "*"), src, c.Bootstrap(), topic, group,
		"consumer", stopFile)
	cmd.Stderr = &tailWriter{t: t, prefix: "java stderr: "}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start java member: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "V "); ok {
				l.add(idx, v)
			} else if strings.HasPrefix(line, "COMMIT-FAILED") {
				t.Logf("java member %d: %s", idx, line)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := os.WriteFile(stopFile, nil, 0o644); err != nil {
				t.Error(err)
			}
			<-done
			if err := cmd.Wait(); err != nil {
				t.Errorf("java member %d: %v", idx, err)
			}
		})
	}
}
