package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/replicate"
)

// Replicator tests. Two Kafka clusters from the pool serve as source and destination (the source with a
// fast log cleaner, so a compacted topic gets gaps within seconds); Strom from the pool is the second
// destination. Every test uses its own topic prefix and mirror name, so tests share the clusters.

func mirrorSource(t testing.TB) *harness.LocalCluster {
	return pool.Kafka(t, "mirror-src",
		harness.BrokerConfig("log.cleaner.backoff.ms", "300"),
		harness.BrokerConfig("log.cleaner.threads", "1"),
		harness.BrokerConfig("transaction.state.log.min.isr", "1"))
}

func mirrorDest(t testing.TB) *harness.LocalCluster { return pool.Kafka(t, "mirror-dst") }

// mirrorConfig returns a replicator config from src to dst for topics matching prefix.*.
func mirrorConfig(src, dst harness.Cluster, prefix, name string) replicate.Config {
	cfg := replicate.DefaultConfig()
	cfg.Source.Bootstrap = src.Bootstrap()
	cfg.Dest.Bootstrap = dst.Bootstrap()
	cfg.Topics = regexpQuote(prefix) + `\..*`
	cfg.Name = name
	cfg.ProgressInterval = 2 * time.Second
	cfg.DiscoverInterval = time.Second
	cfg.GroupSyncInterval = time.Second
	cfg.RetryBackoff = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg
}

func regexpQuote(s string) string { return strings.ReplaceAll(s, ".", `\.`) }

// migrate runs replicate.Run in Migrate mode with a time bound and fails t on error.
func migrate(t *testing.T, cfg replicate.Config) replicate.Summary {
	t.Helper()
	cfg.Migrate = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := replicate.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("migrate %s: %v", cfg.Name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("migrate %s did not finish in time (copied %d records)", cfg.Name, sum.Records)
	}
	return sum
}

// verifyOK runs replicate.Verify and fails t on any difference.
func verifyOK(t *testing.T, cfg replicate.Config) replicate.VerifyReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := replicate.Verify(ctx, cfg, &out)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	return rep
}

// fixture is the source data of the at-least-once and exactly-once tests.
type fixture struct {
	prefix string
	// want counts the committed data records per topic.
	want map[string]int
}

// seedSource creates and fills, under a fresh prefix: many partitions with null keys and values and
// headers; large records close to max.message.bytes; a compacted topic with gaps (when compacted is set:
// it needs a source whose log cleaner runs within seconds); a transactional topic with aborted
// transactions.
func seedSource(t *testing.T, src harness.Cluster, compacted bool) fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := fixture{prefix: uniqueName("mir"), want: map[string]int{}}
	cl := newClient(t, src, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(2<<20))
	adm := kadm.NewClient(cl)
	// Recent timestamps: older ones would fall to retention at once.
	ts := time.Now().Add(-time.Hour).Truncate(time.Millisecond)

	many := f.prefix + ".many"
	retention := "86400000"
	createTopic(ctx, t, adm, many, 12, 1, map[string]*string{"retention.ms": &retention})
	var rs []*kgo.Record
	for i := 0; i < 2400; i++ {
		r := &kgo.Record{Topic: many, Partition: int32(i % 12), Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}
		switch i % 4 {
		case 0: // null key and value
		case 1:
			r.Key = fmt.Appendf(nil, "k%d", i)
		case 2:
			r.Value = fmt.Appendf(nil, "v%d", i)
		default:
			r.Key, r.Value = []byte{}, []byte{}
			r.Headers = []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b"}, {Key: "a", Value: fmt.Appendf(nil, "%d", i)}}
		}
		rs = append(rs, r)
	}
	produce(ctx, t, cl, rs)
	f.want[many] = len(rs)

	large := f.prefix + ".large"
	createTopic(ctx, t, adm, large, 2, 1, nil)
	rs = nil
	for i := 0; i < 6; i++ {
		v := bytes.Repeat([]byte{byte('a' + i)}, 1_000_000)
		rs = append(rs, &kgo.Record{Topic: large, Partition: int32(i % 2), Key: []byte{byte(i)}, Value: v, Timestamp: ts})
	}
	produce(ctx, t, cl, rs)
	f.want[large] = len(rs)

	if compacted {
		f.want[f.prefix+".compacted"] = seedCompacted(ctx, t, cl, adm, f.prefix+".compacted")
	}
	f.want[f.prefix+".txn"] = seedTransactional(ctx, t, src, adm, f.prefix+".txn")
	return f
}

// seedCompacted writes keys in several segments and waits until the cleaner removed superseded records,
// leaving gaps in the offsets. It returns the number of records left.
func seedCompacted(ctx context.Context, t *testing.T, cl *kgo.Client, adm *kadm.Client, topic string) int {
	t.Helper()
	compact, segMS, dirty, lag := "compact", "100", "0.01", "0"
	createTopic(ctx, t, adm, topic, 2, 1, map[string]*string{"cleanup.policy": &compact, "segment.ms": &segMS,
		"min.cleanable.dirty.ratio": &dirty, "min.compaction.lag.ms": &lag})
	for wave := 0; wave < 5; wave++ {
		var rs []*kgo.Record
		for i := 0; i < 40; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: fmt.Appendf(nil, "key-%d", i%10),
				Value: fmt.Appendf(nil, "wave %d i %d", wave, i)})
		}
		produce(ctx, t, cl, rs)
		time.Sleep(250 * time.Millisecond) // the next wave rolls a new segment (segment.ms)
	}
	// Wait (bounded) until the cleaner made gaps: fewer records than offsets.
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, gaps := countRecords(ctx, t, cl, topic)
		if gaps {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compacted topic %s has no gaps after 90 s (%d records)", topic, n)
		}
		// Another append rolls the active segment so the cleaner can take the previous one.
		produce(ctx, t, cl, []*kgo.Record{{Topic: topic, Partition: 0, Key: []byte("key-0"), Value: []byte("roll")},
			{Topic: topic, Partition: 1, Key: []byte("key-1"), Value: []byte("roll")}})
		time.Sleep(time.Second)
	}
	// Freeze the topic: no more rolls here (nor on the destination, which copies segment.ms), so the
	// cleaner finishes what is rolled and the content stops changing before the copy and verify.
	week := "604800000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: &week}}, topic); err != nil {
		t.Fatalf("alter %s: %v", topic, err)
	}
	last, stable := -1, 0
	for stable < 3 {
		n, _ := countRecords(ctx, t, cl, topic)
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("compacted topic %s does not settle (%d records)", topic, n)
		}
		time.Sleep(time.Second)
	}
	return last
}

// countRecords reads topic from the start to its end offsets and reports the number of records and
// whether any partition has an offset gap.
func countRecords(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) (int, bool) {
	t.Helper()
	return countRecordsIso(ctx, t, cl, topic, kgo.ReadCommitted())
}

// countRecordsIso is countRecords with the given isolation level (read_uncommitted also counts records of
// aborted transactions).
func countRecordsIso(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, iso kgo.IsolationLevel) (int, bool) {
	t.Helper()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets %s: %v", topic, err)
	}
	parts := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return // a missing topic is listed with an error
		}
		parts[o.Partition] = kgo.NewOffset().AtStart()
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	rd, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchIsolationLevel(iso),
		kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n, gaps := 0, false
	if len(want) == 0 {
		return 0, false
	}
	next := map[int32]int64{}
	for len(want) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := rd.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("reading %s: timed out, still waiting for %v (errors %v)", topic, want, fs.Errors())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				gaps = true
			}
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				n++
			}
			if w, ok := want[r.Partition]; ok && r.Offset+1 >= w {
				delete(want, r.Partition)
			}
		})
	}
	return n, gaps
}

// seedTransactional writes committed and aborted transactions and returns the committed record count.
func seedTransactional(ctx context.Context, t *testing.T, src harness.Cluster, adm *kadm.Client, topic string) int {
	t.Helper()
	createTopic(ctx, t, adm, topic, 3, 1, nil)
	tx := newClient(t, src, kgo.TransactionalID(uniqueName("seed")), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	committed := 0
	for i := 0; i < 8; i++ {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for j := 0; j < 30; j++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(j % 3), Key: fmt.Appendf(nil, "t%d-%d", i, j),
				Value: fmt.Appendf(nil, "txn %d", i)})
		}
		produce(ctx, t, tx, rs)
		commit := i%3 != 1
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
		if commit {
			committed += len(rs)
		}
	}
	return committed
}

// checkDestCounts reads every fixture topic on dst (read_committed; named rename + source name) and
// compares the record counts (the records themselves are compared by verify).
func checkDestCounts(t *testing.T, dst harness.Cluster, f fixture, rename string, allowMore bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, dst)
	for topic, want := range f.want {
		got, _ := countRecords(ctx, t, cl, rename+topic)
		if got != want && !(allowMore && got > want) {
			t.Errorf("destination %s: %d records, want %d", rename+topic, got, want)
		}
	}
}

func TestMirrorAtLeastOnce(t *testing.T) {
	src := mirrorSource(t)
	f := seedSource(t, src, true)
	for _, dt := range []struct {
		name string
		dst  func(testing.TB) harness.Cluster
	}{
		{"kafka-to-kafka", func(t testing.TB) harness.Cluster { return mirrorDest(t) }},
		{"kafka-to-strom", func(t testing.TB) harness.Cluster { return pool.Strom(t, "single") }},
	} {
		t.Run(dt.name, func(t *testing.T) {
			dst := dt.dst(t)
			cfg := mirrorConfig(src, dst, f.prefix, uniqueName("alo"))
			sum := migrate(t, cfg)
			total := 0
			for _, n := range f.want {
				total += n
			}
			if sum.Records != int64(total) {
				t.Errorf("migrate copied %d records, want %d", sum.Records, total)
			}
			verifyOK(t, cfg)
			checkDestCounts(t, dst, f, "", false)

			// Topic configs set on the source are copied.
			adm := kadm.NewClient(newClient(t, dst))
			rcs, err := adm.DescribeTopicConfigs(context.Background(), f.prefix+".many", f.prefix+".compacted")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct{ topic, key, value string }{
				{f.prefix + ".many", "retention.ms", "86400000"},
				{f.prefix + ".compacted", "cleanup.policy", "compact"},
			} {
				rc, err := rcs.On(want.topic, nil)
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				for _, c := range rc.Configs {
					if c.Key == want.key && c.Value != nil {
						got = *c.Value
					}
				}
				if got != want.value {
					t.Errorf("destination %s %s = %q, want %q", want.topic, want.key, got, want.value)
				}
			}

			// Re-running resumes: nothing new, nothing copied.
			if sum := migrate(t, cfg); sum.Records != 0 {
				t.Errorf("second migrate copied %d records, want 0", sum.Records)
			}
		})
	}
}

// srcOffsetOf returns the strom.offset header of a copied record, -1 if absent.
func srcOffsetOf(r *kgo.Record) int64 {
	for _, h := range r.Headers {
		if h.Key == replicate.OffsetHeader && len(h.Value) == 8 {
			return int64(binary.BigEndian.Uint64(h.Value))
		}
	}
	return -1
}

// mirrorDests lists the destinations of the Kafka-source tests: a second Kafka and Strom.
func mirrorDests() []struct {
	name string
	dst  func(testing.TB) harness.Cluster
} {
	return []struct {
		name string
		dst  func(testing.TB) harness.Cluster
	}{
		{"kafka-to-kafka", func(t testing.TB) harness.Cluster { return mirrorDest(t) }},
		{"kafka-to-strom", func(t testing.TB) harness.Cluster { return pool.Strom(t, "single") }},
	}
}

// TestMirrorExactlyOnce copies the fixture (aborted transactions and a compacted source with gaps
// included) transactionally to Kafka and to Strom: verify is strict (no loss, no duplicate), and a
// second run copies nothing.
func TestMirrorExactlyOnce(t *testing.T) {
	src := mirrorSource(t)
	f := seedSource(t, src, true)
	for _, dt := range mirrorDests() {
		t.Run(dt.name, func(t *testing.T) { exactlyOnceScenario(t, src, dt.dst(t), f, "") })
	}
}

// exactlyOnceScenario migrates fixture f from src to dst in exactly-once mode, destination topics named
// rename + source name, and checks the copy strictly.
func exactlyOnceScenario(t *testing.T, src, dst harness.Cluster, f fixture, rename string) {
	cfg := mirrorConfig(src, dst, f.prefix, uniqueName("eos"))
	cfg.Mode = replicate.ExactlyOnce
	cfg.MaxPollRecords = 500 // several transactions
	if rename != "" {
		cfg.Rename = "prefix:" + rename
	}
	sum := migrate(t, cfg)
	total := 0
	for _, n := range f.want {
		total += n
	}
	if sum.Records != int64(total) {
		t.Errorf("migrate copied %d records, want %d", sum.Records, total)
	}
	checkStrict(t, verifyOK(t, cfg))
	checkDestCounts(t, dst, f, rename, false)
	// Nothing is stored on the source in exactly-once mode: no group named like the mirror.
	groups, err := kadm.NewClient(newClient(t, src)).ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[cfg.Name]; ok {
		t.Errorf("exactly-once mirror created group %s on the source", cfg.Name)
	}
	if sum := migrate(t, cfg); sum.Records != 0 {
		t.Errorf("second migrate copied %d records, want 0", sum.Records)
	}
	checkStrict(t, verifyOK(t, cfg))
}

// checkStrict fails t if verify counted any duplicate (verify itself fails on loss or difference).
func checkStrict(t *testing.T, rep replicate.VerifyReport) {
	t.Helper()
	for _, p := range rep.Partitions {
		if p.Duplicates != 0 {
			t.Errorf("%+v: %d duplicates", p, p.Duplicates)
		}
	}
}

// TestMirrorFromStrom uses Strom as the source (at-least-once reads it through a consumer group on Strom,
// exactly-once read_committed with nothing stored on it) and Kafka as the destination. The compacted
// topic is left out: Strom's cleaner runs every log.retention.check.interval (5 min), too slow to seed.
func TestMirrorFromStrom(t *testing.T) {
	src, dst := pool.Strom(t, "single"), mirrorDest(t)
	f := seedSource(t, src, false)
	total := 0
	for _, n := range f.want {
		total += n
	}
	t.Run("at-least-once", func(t *testing.T) {
		rename := "alo."
		cfg := mirrorConfig(src, dst, f.prefix, uniqueName("salo"))
		cfg.Rename = "prefix:" + rename
		sum := migrate(t, cfg)
		if sum.Records != int64(total) {
			t.Errorf("migrate copied %d records, want %d", sum.Records, total)
		}
		checkStrict(t, verifyOK(t, cfg))
		checkDestCounts(t, dst, f, rename, false)
		// The source group on Strom holds the progress: a second run copies nothing.
		if sum := migrate(t, cfg); sum.Records != 0 {
			t.Errorf("second migrate copied %d records, want 0", sum.Records)
		}
		checkStrict(t, verifyOK(t, cfg))
	})
	t.Run("exactly-once", func(t *testing.T) { exactlyOnceScenario(t, src, dst, f, "eos.") })
	// Strom on both sides (one cluster; the renamed copies do not match the topic selection).
	t.Run("exactly-once-strom-to-strom", func(t *testing.T) { exactlyOnceScenario(t, src, src, f, "s2s.") })
}

// TestMirrorGroupSync: a group that committed on the source resumes on the destination after group sync
// and reads exactly the records it had not consumed: none twice, none skipped.
func TestMirrorGroupSync(t *testing.T) {
	src := mirrorSource(t)
	for _, dt := range mirrorDests() {
		t.Run(dt.name, func(t *testing.T) { groupSyncScenario(t, src, dt.dst(t)) })
	}
	// Strom as the source: the application group committed on Strom.
	t.Run("strom-to-kafka", func(t *testing.T) { groupSyncScenario(t, pool.Strom(t, "single"), mirrorDest(t)) })
}

func groupSyncScenario(t *testing.T, src, dst harness.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := uniqueName("grp")
	topic := prefix + ".orders"
	scl := newClient(t, src, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(ctx, t, kadm.NewClient(scl), topic, 3, 1, nil)
	// Transactions put markers (gaps) between records, so translation must be exact, not offset-equal.
	tx := newClient(t, src, kgo.TransactionalID(uniqueName("gtx")), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	total := 0
	for i := 0; i < 10; i++ {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for j := 0; j < 30; j++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(j % 3), Value: fmt.Appendf(nil, "%d-%d", i, j)})
		}
		produce(ctx, t, tx, rs)
		commit := i%4 != 2
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			total += len(rs)
		}
	}
	// The application group consumes part of the data on the source and commits.
	group := prefix + "-app"
	app := newClient(t, src, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	var consumed []*kgo.Record
	for len(consumed) < 100 {
		fs := app.PollRecords(ctx, 100-len(consumed))
		if ctx.Err() != nil {
			t.Fatal("source consumer timed out")
		}
		consumed = append(consumed, fs.Records()...)
	}
	if err := app.CommitRecords(ctx, consumed...); err != nil {
		t.Fatal(err)
	}
	app.Close()
	for _, r := range consumed {
		seen[string(r.Value)] = true
	}

	cfg := mirrorConfig(src, dst, prefix, uniqueName("gs"))
	cfg.Groups = regexpQuote(group)
	sum := migrate(t, cfg)
	if sum.Groups == 0 {
		t.Fatalf("migrate synced no group offsets")
	}

	// The group resumes on the destination.
	dapp := newClient(t, dst, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rest := 0
	for rest < total-len(consumed) {
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		fs := dapp.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		pcancel()
		if timedOut {
			t.Fatalf("destination consumer read %d of %d remaining records", rest, total-len(consumed))
		}
		for _, r := range fs.Records() {
			if seen[string(r.Value)] {
				t.Fatalf("record %q read twice (source and destination)", r.Value)
			}
			seen[string(r.Value)] = true
			rest++
		}
	}
	if len(seen) != total {
		t.Fatalf("read %d distinct records, want %d", len(seen), total)
	}
	// Nothing more arrives: no record was duplicated on the destination.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	if fs := dapp.PollFetches(pctx); fs.NumRecords() > 0 {
		t.Fatalf("extra record after all were read: %q", fs.Records()[0].Value)
	}
	pcancel()
	dapp.Close()

	// Group sync never moves a destination group backwards: the destination group is ahead now.
	before, err := kadm.NewClient(newClient(t, dst)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	migrate(t, cfg)
	after, err := kadm.NewClient(newClient(t, dst)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At != o.At {
			t.Errorf("%s/%d moved from %d to %d", o.Topic, o.Partition, o.At, a.At)
		}
	})
}

// TestMirrorBadInput: every bad input fails before anything is written, naming the cluster and cause.
func TestMirrorBadInput(t *testing.T) {
	src, dst := mirrorSource(t), mirrorDest(t)
	ctx := context.Background()
	prefix := uniqueName("bad")
	adm := kadm.NewClient(newClient(t, src))
	createTopic(ctx, t, adm, prefix+".t", 4, 1, nil)
	// Fresh metadata: the checks below must see a topic created just before.
	dadm := newPollAdmin(t, dst)
	createTopic(ctx, t, dadm, prefix+".t", 2, 1, nil) // fewer partitions than the source

	dead := "127.0.0.1:1"
	tests := []struct {
		name    string
		mod     func(*replicate.Config)
		wantErr error
		wantMsg string
	}{
		{"unreachable source", func(c *replicate.Config) { c.Source.Bootstrap = dead }, replicate.ErrUnreachable, "source cluster 127.0.0.1:1"},
		{"unreachable destination", func(c *replicate.Config) { c.Dest.Bootstrap = dead }, replicate.ErrUnreachable, "destination cluster 127.0.0.1:1"},
		{"auth failure", func(c *replicate.Config) {
			c.Dest.SASLMechanism, c.Dest.User, c.Dest.Password = "SCRAM-SHA-256", "u", "p"
		}, replicate.ErrUnreachable, "destination cluster"},
		{"no topic", func(c *replicate.Config) { c.Topics = prefix + `\.missing` }, replicate.ErrNoTopics, "source cluster"},
		{"fewer partitions", func(c *replicate.Config) {}, replicate.ErrFewerPartitions, "topic " + prefix + ".t has 2 partitions"},
		{"bad regex", func(c *replicate.Config) { c.Topics = "(" }, replicate.ErrBadConfig, "--topics"},
		{"bad mechanism", func(c *replicate.Config) { c.Source.SASLMechanism = "GSSAPI" }, replicate.ErrBadConfig, "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mirrorConfig(src, dst, prefix, uniqueName("bad"))
			cfg.Migrate = true
			tt.mod(&cfg)
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := replicate.Run(rctx, cfg)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			// Nothing written: no offset-map topic on the destination.
			td, err := dadm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if td.Has("strom.mirror." + cfg.Name + ".offsets") {
				t.Fatalf("offset-map topic created despite the error")
			}
		})
	}
}

// killRecords is the size of the kill -9 test's copy; STROM_MIRROR_KILL_RECORDS overrides it.
func killRecords() int {
	if v := os.Getenv("STROM_MIRROR_KILL_RECORDS"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

// TestMirrorKill9 copies a large topic with `strom migrate` (the built binary), SIGKILLs it at random
// moments at least 10 times, restarts it each time, lets the last run finish, and verifies: at-least-once
// loses nothing (duplicates allowed), exactly-once loses nothing and duplicates nothing.
func TestMirrorKill9(t *testing.T) {
	src, dst := mirrorSource(t), mirrorDest(t)
	bin := stromBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	prefix := uniqueName("kill")
	topic := prefix + ".big"
	n := killRecords()
	cl := newClient(t, src, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200_000))
	createTopic(ctx, t, kadm.NewClient(cl), topic, 8, 1, nil)
	start := time.Now()
	var perr error
	done := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%d", i%1000), Value: fmt.Appendf(nil, "value-%08d", i)},
			func(_ *kgo.Record, err error) {
				if err != nil && perr == nil {
					perr = err
				}
			})
	}
	if err := cl.Flush(ctx); err != nil || perr != nil {
		t.Fatalf("produce %d records: %v %v", n, err, perr)
	}
	close(done)
	t.Logf("produced %d records in %v", n, time.Since(start))

	for _, tc := range []struct {
		name, mode string
		dst        harness.Cluster
	}{
		{"at-least-once", "at-least-once", dst},
		{"exactly-once", "exactly-once", dst},
		{"at-least-once-to-strom", "at-least-once", pool.Strom(t, "single")},
		{"exactly-once-to-strom", "exactly-once", pool.Strom(t, "single")},
	} {
		mode, dst := tc.mode, tc.dst
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName("k9")
			args := []string{"migrate", "--from", src.Bootstrap(), "--to", dst.Bootstrap(),
				"--topics", regexpQuote(prefix) + `\..*`, "--name", name, "--mode", mode,
				"--instance-id", name + "-0", "--rename", "prefix:" + mode + ".", "--batch-records", "500", "--progress-interval", "1s", "--log-level", "warn"}
			logPath := t.TempDir() + "/mirror.log"
			logf, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logf.Close()
			run := func() *exec.Cmd {
				cmd := exec.Command(bin, args...)
				cmd.Stdout, cmd.Stderr = logf, logf
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			// Each run is killed after a random time or, sooner, once the destination grew by a random
			// share of n (at most n/15): a fast copy (Strom takes ~150k records/s here) can then not finish
			// before the tenth kill, and most kills land while records and commits are in flight.
			// A short metadata min age: the destination topic appears during the first run, and with the
			// default 5 s the first end-offset checks wait that long for metadata while the copy, no longer
			// held back the same way, runs far past its kill point.
			dadm := kadm.NewClient(newClient(t, dst, kgo.MetadataMinAge(10*time.Millisecond)))
			dstTopic := mode + "." + topic
			kills := 0
			for kills < 10 && ctx.Err() == nil {
				base, _ := endOffsetSum(ctx, dadm, dstTopic)
				target := base + int64(n/40+rng.IntN(n/15-n/40+1))
				cmd := run()
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				deadline := time.After(time.Duration(300+rng.IntN(900)) * time.Millisecond)
				tick := time.NewTicker(20 * time.Millisecond)
			wait:
				for {
					select {
					case err := <-exited:
						tick.Stop()
						t.Fatalf("migrate finished (%v) after only %d kills; raise STROM_MIRROR_KILL_RECORDS\n%s", err, kills, tail(logPath))
					case <-deadline:
						break wait
					case <-tick.C:
						if got, _ := endOffsetSum(ctx, dadm, dstTopic); got >= target {
							break wait
						}
					}
				}
				tick.Stop()
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				<-exited
				kills++
				fmt.Fprintf(logf, "---- test: SIGKILL %d ----\n", kills)
			}
			cmd := run()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("final migrate: %v\n%s", err, tail(logPath))
				}
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("final migrate did not finish\n%s", tail(logPath))
			}
			t.Logf("%d kills; final run: %s", kills, lastLine(logPath))
			cfg := mirrorConfig(src, dst, prefix, name)
			cfg.AllowDuplicates = mode == "at-least-once"
			cfg.Rename = "prefix:" + mode + "."
			rep := verifyOK(t, cfg)
			dups, copied := 0, 0
			for _, p := range rep.Partitions {
				dups += p.Duplicates
				copied += p.DstCount
			}
			if copied != n {
				t.Fatalf("destination holds %d distinct records, want %d", copied, n)
			}
			if mode == "exactly-once" && dups != 0 {
				t.Fatalf("exactly-once left %d duplicates", dups)
			}
			t.Logf("%s: %d records verified, %d duplicates", mode, copied, dups)
			if mode == "exactly-once" {
				// How much the killed runs left in open transactions that the restarts aborted: the
				// destination log holds them, read_committed (and so verify) does not see them.
				all, _ := countRecordsIso(ctx, t, newClient(t, dst), mode+"."+topic, kgo.ReadUncommitted())
				t.Logf("destination log: %d data records, %d of them in transactions aborted after a kill", all, all-copied)
			}
		})
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func lastLine(path string) string {
	lines := strings.Split(tail(path), "\n")
	return lines[len(lines)-1]
}

// waitFor polls cond every 200 ms until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// endOffsetSum returns the sum of topic's end offsets on c and its partition count (0, 0 if missing).
func endOffsetSum(ctx context.Context, adm *kadm.Client, topic string) (int64, int) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0
	}
	var sum int64
	n := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			sum += o.Offset
			n++
		}
	})
	return sum, n
}

// TestMirrorContinuous runs `mirror` (not migrate) and checks that it follows new records, new matching
// topics and partition increases, serves metrics, and that two mirrors in opposite directions over the
// same topic names (active-active) do not copy records back to where they came from.
func TestMirrorContinuous(t *testing.T) {
	for _, mode := range []replicate.Mode{replicate.AtLeastOnce, replicate.ExactlyOnce} {
		t.Run(mode.String(), func(t *testing.T) { continuousScenario(t, mode, mirrorSource(t), mirrorDest(t)) })
	}
	// Kafka and Strom active-active: Strom is the destination of one mirror and the source of the other.
	t.Run("exactly-once-kafka-strom", func(t *testing.T) {
		continuousScenario(t, replicate.ExactlyOnce, mirrorSource(t), pool.Strom(t, "single"))
	})
}

func continuousScenario(t *testing.T, mode replicate.Mode, a, b harness.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := uniqueName("cont")
	acl := newClient(t, a, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	bcl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	aadm, badm := kadm.NewClient(acl), kadm.NewClient(bcl)
	t1 := prefix + ".one"
	createTopic(ctx, t, aadm, t1, 2, 1, nil)
	createTopic(ctx, t, badm, t1, 2, 1, nil)

	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ab := mirrorConfig(a, b, prefix, uniqueName("ab"))
	ab.Mode = mode
	ab.MetricsAddr = metricsAddr
	progress := &syncWriter{w: &bytes.Buffer{}}
	ab.Progress, ab.ProgressView, ab.ProgressInterval = progress, replicate.ViewJSON, 500*time.Millisecond
	ba := mirrorConfig(b, a, prefix, uniqueName("ba"))
	ba.Mode = mode
	mctx, stop := context.WithCancel(ctx)
	errs := make(chan error, 2)
	for _, cfg := range []replicate.Config{ab, ba} {
		go func() {
			_, err := replicate.Run(mctx, cfg)
			errs <- err
		}()
	}
	defer func() {
		stop()
		for i := 0; i < 2; i++ {
			if err := <-errs; err != nil {
				t.Errorf("mirror: %v", err)
			}
		}
	}()

	rec := func(topic string, p int32, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}
	}
	produce(ctx, t, acl, []*kgo.Record{rec(t1, 0, "a0"), rec(t1, 1, "a1"), rec(t1, 0, "a2")})
	produce(ctx, t, bcl, []*kgo.Record{rec(t1, 1, "b0"), rec(t1, 0, "b1")})
	// Each side ends with its own records plus the other's, each once.
	waitFor(t, time.Minute, "both sides hold 5 records", func() bool {
		na, _ := countRecords(ctx, t, acl, t1)
		nb, _ := countRecords(ctx, t, bcl, t1)
		return na == 5 && nb == 5
	})

	// A new matching topic is discovered; a partition increase is followed.
	t2 := prefix + ".two"
	createTopic(ctx, t, aadm, t2, 1, 1, nil)
	produce(ctx, t, acl, []*kgo.Record{rec(t2, 0, "new topic")})
	waitFor(t, time.Minute, "new topic copied", func() bool { n, _ := countRecords(ctx, t, bcl, t2); return n == 1 })
	if _, err := aadm.UpdatePartitions(ctx, 3, t2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "partition increase followed", func() bool { _, p := endOffsetSum(ctx, badm, t2); return p == 3 })
	waitFor(t, 30*time.Second, "source metadata shows 3 partitions", func() bool { _, p := endOffsetSum(ctx, aadm, t2); return p == 3 })
	// A fresh client: acl's metadata may still show one partition.
	produce(ctx, t, newClient(t, a, kgo.RecordPartitioner(kgo.ManualPartitioner())), []*kgo.Record{rec(t2, 2, "new partition")})
	waitFor(t, time.Minute, "record of the new partition copied", func() bool { n, _ := countRecords(ctx, t, bcl, t2); return n == 2 })

	// No echo: after a while the counts are unchanged.
	time.Sleep(2 * time.Second)
	if na, _ := countRecords(ctx, t, acl, t1); na != 5 {
		t.Errorf("side a holds %d records of %s, want 5 (echo?)", na, t1)
	}

	// Metrics and JSON progress.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"strom_mirror_records_total 5", "strom_mirror_lag_records", "strom_mirror_replication_latency_seconds_count",
		`strom_mirror_topic_records_total{topic="` + t1 + `"}`, `strom_mirror_topic_lag_records{topic="` + t1 + `"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	waitFor(t, 10*time.Second, "JSON progress line", func() bool {
		return strings.Contains(progress.String(), `"records":5`) || strings.Contains(progress.String(), `"records":6`)
	})
	// Each interval is one JSON object naming every topic.
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	var last struct {
		Records int64 `json:"records"`
		Topics  []replicate.TopicProgress
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last progress line %q: %v", lines[len(lines)-1], err)
	}
	var sum int64
	names := map[string]bool{}
	for _, tp := range last.Topics {
		sum += tp.Records
		names[tp.Topic] = true
	}
	if !names[t1] || !names[t2] || sum != last.Records {
		t.Errorf("last progress line: topics %v (want %s and %s), per-topic records add up to %d, total %d", names, t1, t2, sum, last.Records)
	}
}

// syncWriter serialises writes to w (the mirror goroutine writes, the test reads).
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestMirrorScaleOut runs two at-least-once mirrors with the same name: the source group splits the
// partitions between them, both copy, and together they copy everything.
func TestMirrorScaleOut(t *testing.T) {
	src, dst := mirrorSource(t), mirrorDest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := uniqueName("scale")
	topic := prefix + ".t"
	cl := newClient(t, src)
	createTopic(ctx, t, kadm.NewClient(cl), topic, 6, 1, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 1, time.Now())) // a record, so the mirror has a topic to start on
	name := uniqueName("so")
	mctx, stop := context.WithCancel(ctx)
	type result struct {
		sum replicate.Summary
		err error
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		cfg := mirrorConfig(src, dst, prefix, name)
		cfg.InstanceID = fmt.Sprintf("%s-%d", name, i)
		go func() {
			sum, err := replicate.Run(mctx, cfg)
			results <- result{sum, err}
		}()
	}
	// Once both processes are members of the source group, the data arrives.
	sadm := kadm.NewClient(cl)
	waitFor(t, time.Minute, "two members in the source group", func() bool {
		d, err := sadm.DescribeGroups(ctx, name)
		if err != nil {
			return false
		}
		g := d[name]
		return g.State == "Stable" && len(g.Members) == 2
	})
	produce(ctx, t, cl, makeRecords(topic, 1, 2999, time.Now()))
	dadm := kadm.NewClient(newClient(t, dst))
	waitFor(t, 2*time.Minute, "3000 records on the destination", func() bool {
		n, _ := endOffsetSum(ctx, dadm, topic)
		return n >= 3000
	})
	stop()
	for i := 0; i < 2; i++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("mirror: %v", r.err)
		}
		if r.sum.Records == 0 {
			t.Errorf("a mirror process copied nothing: the partitions were not shared")
		}
	}
	cfg := mirrorConfig(src, dst, prefix, name)
	cfg.AllowDuplicates = true
	verifyOK(t, cfg)
}

// TestMirrorCLI runs the built binary: migrate with a --from-config file and --json summary, verify
// exiting 0, and verify exiting non-zero with the first difference after the destination is changed.
func TestMirrorCLI(t *testing.T) {
	src, dst := mirrorSource(t), mirrorDest(t)
	bin := stromBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := uniqueName("cli")
	topic := prefix + ".t"
	cl := newClient(t, src)
	createTopic(ctx, t, kadm.NewClient(cl), topic, 2, 1, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 100, time.Now()))
	props := t.TempDir() + "/source.properties"
	if err := os.WriteFile(props, []byte("# source\nbootstrap.servers="+src.Bootstrap()+"\nsecurity.protocol=PLAINTEXT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	strom := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	sel := regexpQuote(prefix) + `\..*`
	name := uniqueName("cli")
	out, err := strom("migrate", "--from-config", props, "--to", dst.Bootstrap(), "--topics", sel,
		"--name", name, "--json", "--log-level", "warn")
	if err != nil || !strings.Contains(out, `"records":100`) {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	// The same name with another --rename: the offset map's positions belong to the first copy, so this
	// is refused instead of reporting a copy of nothing.
	out, err = strom("migrate", "--from", src.Bootstrap(), "--to", dst.Bootstrap(), "--topics", sel,
		"--name", name, "--rename", "prefix:other.", "--log-level", "warn")
	if err == nil || !strings.Contains(out, "destination topic other."+topic+" does not exist") ||
		!strings.Contains(out, "use a new --name") {
		t.Fatalf("migrate under the same name to other topics: err %v\n%s", err, out)
	}
	out, err = strom("verify", "--from", src.Bootstrap(), "--to", dst.Bootstrap(), "--topics", sel)
	if err != nil || !strings.Contains(out, "verify ok: 2 partitions identical") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	// Progress views: stdout is a pipe here, so plain per-topic lines by default and the redrawn table
	// with --live; both end with the per-topic summary.
	for _, view := range []struct {
		flag string
		want []string
	}{
		{"", []string{"progress topic=" + topic + " partitions=2/2 records=100 ", "topic=TOTAL", "final=true"}},
		{"--live", []string{"\x1b[J", "strom mirror: done", "TOPIC", "REC/S", "ETA", "TOTAL"}},
	} {
		name := uniqueName("cli-view")
		args := []string{"migrate", "--from", src.Bootstrap(), "--to", dst.Bootstrap(), "--topics", sel,
			"--name", name, "--rename", "prefix:" + name + ".", "--log-level", "warn"}
		if view.flag != "" {
			args = append(args, view.flag)
		}
		out, err := strom(args...)
		if err != nil {
			t.Fatalf("migrate %s: %v\n%s", view.flag, err, out)
		}
		summary := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(topic) + ` +` + regexp.QuoteMeta(name+"."+topic) + ` +2 +100 +0\.\d\n`)
		for _, want := range view.want {
			if !strings.Contains(out, want) {
				t.Errorf("migrate %s: output lacks %q:\n%s", view.flag, want, out)
			}
		}
		if !summary.MatchString(out) || !strings.Contains(out, "migrate done: 1 topics") {
			t.Errorf("migrate %s: no per-topic summary line for %s:\n%s", view.flag, topic, out)
		}
	}
	// A record written on the destination only makes verify fail, naming topic, partition and offsets.
	produce(ctx, t, newClient(t, dst), []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("stray")}})
	out, err = strom("verify", "--from", src.Bootstrap(), "--to", dst.Bootstrap(), "--topics", sel)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("verify of a changed destination: err %v, want a non-zero exit\n%s", err, out)
	}
	if !strings.Contains(out, topic+"/0") || !strings.Contains(out, "destination has more records") {
		t.Fatalf("verify output lacks the first difference:\n%s", out)
	}
	// Bad input from the command line: unreachable cluster, non-zero exit, the cluster named.
	out, err = strom("migrate", "--from", "127.0.0.1:1", "--to", dst.Bootstrap(), "--topics", sel)
	if err == nil || !strings.Contains(out, "source cluster 127.0.0.1:1") {
		t.Fatalf("migrate from an unreachable cluster: err %v\n%s", err, out)
	}
}

// TestMirrorExactlyOnceFencing starts a second exactly-once mirror with the same name while the first
// runs: the second fences the first (same transactional id), the first ends with ErrFenced at its next
// transaction, and the copy stays exact.
func TestMirrorExactlyOnceFencing(t *testing.T) {
	src := mirrorSource(t)
	for _, dt := range mirrorDests() {
		t.Run(dt.name, func(t *testing.T) { fencingScenario(t, src, dt.dst(t)) })
	}
}

func fencingScenario(t *testing.T, src, dst harness.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := uniqueName("fence")
	topic := prefix + ".t"
	cl := newClient(t, src)
	createTopic(ctx, t, kadm.NewClient(cl), topic, 3, 1, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 500, time.Now()))
	cfg := mirrorConfig(src, dst, prefix, uniqueName("fe"))
	cfg.Mode = replicate.ExactlyOnce
	dadm := kadm.NewClient(newClient(t, dst))
	count := func() int64 {
		ends, err := dadm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return 0
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}

	firstCtx, stopFirst := context.WithCancel(ctx)
	defer stopFirst()
	first := make(chan error, 1)
	go func() { _, err := replicate.Run(firstCtx, cfg); first <- err }()
	// 500 records plus one commit marker per partition at least.
	waitFor(t, time.Minute, "first mirror copied the records", func() bool { return count() >= 503 })

	secondCtx, stopSecond := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { _, err := replicate.Run(secondCtx, cfg); second <- err }()
	// Give the second time to initialise its transactional id (fencing the first), then add records.
	time.Sleep(3 * time.Second)
	produce(ctx, t, cl, makeRecords(topic, 500, 500, time.Now()))
	select {
	case err := <-first:
		if !errors.Is(err, replicate.ErrFenced) {
			t.Fatalf("first mirror ended with %v, want ErrFenced", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("first mirror was not fenced")
	}
	verify := cfg
	waitFor(t, time.Minute, "second mirror copied the new records", func() bool {
		_, err := replicate.Verify(ctx, verify, nil)
		return err == nil
	})
	stopSecond()
	if err := <-second; err != nil {
		t.Fatalf("second mirror: %v", err)
	}
	verifyOK(t, cfg)
}
