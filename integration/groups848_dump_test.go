package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/harness"
)

// TestDumpLogDecodesConsumerGroupRecords runs a KIP-848 group on each target, then reads every
// __consumer_offsets segment with Apache Kafka's DumpLogSegments --offsets-decoder (Kafka's own
// record serde): every record Strom wrote for the group must decode as the same record types Kafka's
// coordinator writes, with no decoding error.
func TestDumpLogDecodesConsumerGroupRecords(t *testing.T) {
	for _, tg := range clusters() {
		if tg.name == "kafka-"+harness.Kafka39Version {
			continue // KIP-848 needs a Kafka 4 broker
		}
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			lc, ok := c.(*harness.LocalCluster)
			if !ok {
				t.Fatalf("%T has no data directory", c)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cl := newClient(t, c)
			adm := kadm.NewClient(cl)
			topic, group := uniqueName("dump848"), uniqueName("d848")
			createTopic(ctx, t, adm, topic, 4, 1, nil)
			produce(ctx, t, cl, makeRecords(topic, 0, 100, time.Now().Add(-time.Minute)))
			l := &restartLedger{counts: map[string]int{}, members: map[int]int{}, change: make(chan struct{}, 1)}
			stop0 := startKgo848Member(t, c, topic, group, 0, l)
			stop1 := startKgo848Member(t, c, topic, group, 1, l)
			l.waitFor(ctx, t, 100)
			for !groupHasMembers(ctx, adm, group, "consumer", 2) {
				select {
				case <-ctx.Done():
					t.Fatal("group never stable with two members")
				case <-time.After(200 * time.Millisecond):
				}
			}
			stop1()
			stop0()

			files, err := filepath.Glob(filepath.Join(lc.DataDir(0), "__consumer_offsets-*", "*.log"))
			if err != nil {
				t.Fatal(err)
			}
			files = slices.DeleteFunc(files, func(f string) bool {
				st, err := os.Stat(f)
				return err != nil || st.Size() == 0
			})
			if len(files) == 0 {
				t.Fatal("no __consumer_offsets segment with data")
			}
			res, err := harness.KafkaTool(ctx, tg.kafkaVersion, harness.ToolDumpLog, nil,
				"--files", strings.Join(files, ","), "--offsets-decoder")
			if err != nil {
				t.Fatal(err)
			}
			types, bad, samples := groupRecordTypes(res.Stdout+res.Stderr, group)
			for _, b := range bad {
				t.Errorf("DumpLogSegments could not decode: %s", b)
			}
			t.Logf("record types written for the group: %v", types)
			for _, ty := range types {
				t.Logf("type %s, first record: %s", ty, samples[ty])
			}
			// Offset commits (1), group metadata (3), members (5), target assignment (6, 7) and
			// current assignments (8): what Kafka 4.3.1's coordinator writes for such a group.
			for _, want := range []string{"1", "3", "5", "6", "7", "8"} {
				if !slices.Contains(types, want) {
					t.Errorf("no record of type %s for the group among %v", want, types)
				}
			}
		})
	}
}

// dumpKeyType matches the key of a decoded record: key: {"type":"5","data":{"groupId":"g",... (offset
// commits name the field "group").
var dumpKeyType = regexp.MustCompile(`key: \{"type":"(\d+)","data":\{"group(?:Id)?":"([^"]*)"`)

// groupRecordTypes lists the record types DumpLogSegments --offsets-decoder printed for group, sorted,
// the lines where it reported a record it could not decode, and the first decoded line of each type.
func groupRecordTypes(out, group string) (types, bad []string, samples map[string]string) {
	seen := map[string]bool{}
	samples = map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		low := strings.ToLower(line)
		if strings.Contains(low, "exception") || strings.Contains(low, "error") || strings.Contains(low, "unknown") ||
			strings.Contains(low, "could not") {
			bad = append(bad, strings.TrimSpace(line))
			continue
		}
		for _, m := range dumpKeyType.FindAllStringSubmatch(line, -1) {
			if m[2] == group {
				seen[m[1]] = true
				if _, ok := samples[m[1]]; !ok {
					samples[m[1]] = line
				}
			}
		}
	}
	for t := range seen {
		types = append(types, t)
	}
	slices.Sort(types)
	return types, bad, samples
}
