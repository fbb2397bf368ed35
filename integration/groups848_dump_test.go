package integration

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	group848 "github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/integration/harness"
)

// TestDumpLogDecodesConsumerGroupRecords runs a KIP-848 group on each target and checks both
// directions of record compatibility:
//   - while the group is stable, Strom's loader (broker/group's codec and RestoreConsumer) reads the
//     target's __consumer_offsets segments back into the group the target describes: same epochs,
//     member ids, member epochs, subscriptions and assignments. Against Kafka this reads records
//     written by Kafka's own coordinator;
//   - afterwards Apache Kafka's DumpLogSegments --offsets-decoder (Kafka's record serde) reads every
//     segment: every record of the group decodes, with the record types Kafka's coordinator writes.
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
			// Strom's loader reads what the target wrote (for Kafka: records written by Kafka's own
			// coordinator, with tags Strom does not write) back into the group the target describes.
			dg, err := adm.DescribeConsumerGroups(ctx, group)
			if err != nil || dg[group].Err != nil {
				t.Fatalf("describe: %+v %v", dg[group], err)
			}
			live := dg[group]
			segs, err := filepath.Glob(filepath.Join(lc.DataDir(0), "__consumer_offsets-*", "*.log"))
			if err != nil {
				t.Fatal(err)
			}
			img, undecodable := readGroupRecords(t, segs, group)
			if undecodable > 0 {
				t.Errorf("%d records of the group did not decode with Strom's codec", undecodable)
			}
			g := group848.New(group, group848.DefaultConfig(), time.Now())
			if !g.RestoreConsumer(img, time.Now(), time.Minute) {
				t.Fatalf("Strom's loader restored nothing from %d records", len(img))
			}
			restored, _ := g.DescribeConsumer()
			if restored.Epoch != live.Epoch || restored.AssignEpoch != live.AssignmentEpoch || len(restored.Members) != len(live.Members) {
				t.Errorf("restored epoch %d/%d with %d members; the target describes %d/%d with %d",
					restored.Epoch, restored.AssignEpoch, len(restored.Members), live.Epoch, live.AssignmentEpoch, len(live.Members))
			}
			for _, lm := range live.Members {
				i := slices.IndexFunc(restored.Members, func(m group848.ConsumerMemberInfo) bool { return m.MemberID == lm.MemberID })
				if i < 0 {
					t.Errorf("member %s not restored", lm.MemberID)
					continue
				}
				rm := restored.Members[i]
				var got, want []int32
				for _, ps := range rm.Assigned {
					got = append(got, ps...)
				}
				for _, ps := range lm.Assignment {
					for p := range ps {
						want = append(want, p)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if rm.Epoch != lm.MemberEpoch || !slices.Equal(got, want) || !slices.Equal(rm.SubscribedTopics, lm.SubscribedTopics) {
					t.Errorf("member %s restored at epoch %d with %v subscribed to %v; the target says epoch %d, %v, %v",
						lm.MemberID, rm.Epoch, got, rm.SubscribedTopics, lm.MemberEpoch, want, lm.SubscribedTopics)
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

// readGroupRecords replays the consumer-group records (types 3-8) of group found in segment files
// with Strom's codec: the last value per key, tombstones deleting. It counts the group's records whose
// value does not decode. A torn batch at the end of an active segment ends that file.
func readGroupRecords(t *testing.T, files []string, group string) (map[group848.RecordKey][]byte, int) {
	t.Helper()
	img := map[group848.RecordKey][]byte{}
	undecodable := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(raw) >= 61 {
			var b kmsg.RecordBatch
			if b.ReadFrom(raw) != nil || 12+int(b.Length) > len(raw) {
				break
			}
			raw = raw[12+int(b.Length):]
			if b.Attributes&0x20 != 0 || b.Attributes&7 != 0 {
				continue // control batches; the coordinators here write uncompressed
			}
			recs := b.Records
			for range b.NumRecords {
				n, used := binary.Varint(recs)
				if used <= 0 || int(n) > len(recs)-used {
					break
				}
				var r kmsg.Record
				if r.ReadFrom(recs[:used+int(n)]) != nil {
					break
				}
				recs = recs[used+int(n):]
				if len(r.Key) < 2 || !group848.IsConsumerRecordType(int16(binary.BigEndian.Uint16(r.Key))) {
					continue
				}
				k, err := group848.ParseRecordKey(r.Key)
				if err != nil || k.Group != group {
					continue
				}
				if r.Value == nil {
					delete(img, k)
					continue
				}
				if !decodesAs(k.Type, r.Value) {
					undecodable++
					continue
				}
				img[k] = r.Value
			}
		}
	}
	return img, undecodable
}

// decodesAs reports whether value decodes as a value of record type typ.
func decodesAs(typ int16, value []byte) bool {
	var v interface{ ReadFrom([]byte) error }
	switch typ {
	case group848.RecordConsumerGroupMetadata:
		v = &group848.ConsumerGroupMetadataValue{}
	case group848.RecordConsumerGroupPartitionMetadata:
		v = &group848.ConsumerGroupPartitionMetadataValue{}
	case group848.RecordConsumerGroupMemberMetadata:
		v = &group848.ConsumerGroupMemberMetadataValue{}
	case group848.RecordConsumerGroupTargetMetadata:
		v = &group848.ConsumerGroupTargetMetadataValue{}
	case group848.RecordConsumerGroupTargetMember:
		v = &group848.ConsumerGroupTargetMemberValue{}
	default:
		v = &group848.ConsumerGroupCurrentAssignmentValue{}
	}
	return v.ReadFrom(value) == nil
}
