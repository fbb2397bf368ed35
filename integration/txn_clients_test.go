package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/gaps"
	"github.com/stromhq/strom/integration/harness"
)

// txnClientCase is the setup of one client's transaction proof: a one-partition output topic, a
// two-partition input topic holding inCount records, a group and a transactional id prefix.
type txnClientCase struct {
	out, in, group, tid string
	inCount             int
	inputs              []*kgo.Record // as produced, with partitions and offsets
}

// newTxnClientCase creates the topics and fills the input topic.
func newTxnClientCase(ctx context.Context, t testing.TB, c harness.Cluster) txnClientCase {
	t.Helper()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	tc := txnClientCase{out: uniqueName("txn-out"), in: uniqueName("txn-in"), group: uniqueName("txn-g"),
		tid: uniqueName("txn-id"), inCount: 20}
	createTopic(ctx, t, adm, tc.out, 1, 1, nil)
	createTopic(ctx, t, adm, tc.in, 2, 1, nil)
	tc.inputs = makeRecords(tc.in, 0, tc.inCount, time.Now())
	produce(ctx, t, cl, tc.inputs)
	return tc
}

// check verifies what a client's transactional run left, read with franz-go, and what the client's own
// read_committed consumer printed (clientRead, in order):
//   - read_committed sees a-0..a-9, b-0..b-9, then "t-"+value once per input record, each input
//     partition's records in their offset order, and nothing else;
//   - read_uncommitted sees the aborted x-0..x-9 between them (the abort really wrote and aborted them);
//   - the group's committed offsets (sent with the transactions) are the input's end offsets;
//   - the client's read_committed consumer read exactly the same sequence.
func (tc txnClientCase) check(ctx context.Context, t testing.TB, c harness.Cluster, clientRead []string) {
	t.Helper()
	want := 20 + tc.inCount
	recs := consumeN(ctx, t, c, tc.out, want, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value))
	}
	if len(got) != want {
		t.Errorf("read_committed: %d records, want %d: %q", len(got), want, got)
	}
	for i := range min(20, len(got)) {
		w := fmt.Sprintf("a-%d", i)
		if i >= 10 {
			w = fmt.Sprintf("b-%d", i-10)
		}
		if got[i] != w {
			t.Errorf("read_committed record %d = %q, want %q (all: %q)", i, got[i], w, got)
			break
		}
	}
	pos := map[string]int{}
	for i, v := range got {
		if strings.HasPrefix(v, "x-") {
			t.Errorf("read_committed sees aborted record %q at %d", v, i)
		}
		if strings.HasPrefix(v, "t-") {
			if _, dup := pos[v]; dup {
				t.Errorf("read_committed sees %q twice", v)
			}
			pos[v] = i
		}
	}
	byP := byPartition(tc.inputs)
	for p, rs := range byP {
		last := -1
		for _, r := range rs {
			v := "t-" + string(r.Value)
			i, ok := pos[v]
			if !ok {
				t.Errorf("transformed record %q (input %d/%d) missing", v, r.Partition, r.Offset)
				continue
			}
			if i < last {
				t.Errorf("input partition %d: %q out of order in the output", p, v)
			}
			last = i
		}
	}
	unc := consumeN(ctx, t, c, tc.out, 30+tc.inCount)
	for i := 10; i < 20 && i < len(unc); i++ {
		if w := fmt.Sprintf("x-%d", i-10); string(unc[i].Value) != w {
			t.Errorf("read_uncommitted record %d = %q, want aborted %q", i, unc[i].Value, w)
		}
	}
	adm := kadm.NewClient(newClient(t, c))
	offs, err := adm.FetchOffsets(ctx, tc.group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", tc.group, err)
	}
	for p, rs := range byP {
		end := rs[len(rs)-1].Offset + 1
		if o, ok := offs.Lookup(tc.in, p); !ok || o.Err != nil || o.At != end {
			t.Errorf("group %s, input partition %d: committed %+v, want %d", tc.group, p, o, end)
		}
	}
	if !slices.Equal(clientRead, got) {
		t.Errorf("the client's read_committed consumer read\n%q\nfranz-go read\n%q", clientRead, got)
	}
}

// TestTransactionsConfluentPython runs the transaction proof with confluent-kafka-python (Debian's 1.7.0
// on librdkafka 2.0.2): commit and abort, read_committed order, and consume-transform-produce with
// send_offsets_to_transaction (its first transaction aborted and redone).
func TestTransactionsConfluentPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatalf("confluent-kafka-python not importable by %s (apt-get install python3-confluent-kafka): %v", python, err)
	}
	script, err := filepath.Abs(filepath.Join("python", "ck_txn.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range groupTargets() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			gaps.Run(t, func(t testing.TB) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				start := time.Now()
				tc := newTxnClientCase(ctx, t, c)
				var stderr bytes.Buffer
				cmd := exec.CommandContext(ctx, python, "-u", script, c.Bootstrap(), tc.out, tc.in, tc.group, tc.tid,
					strconv.Itoa(tc.inCount))
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("ck_txn.py: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
				}
				var read, steps []string
				sc := bufio.NewScanner(bytes.NewReader(out))
				for sc.Scan() {
					if v, ok := strings.CutPrefix(sc.Text(), "READ "); ok {
						read = append(read, v)
					} else {
						steps = append(steps, sc.Text())
					}
				}
				if !slices.Contains(steps, "DONE") || !slices.ContainsFunc(steps, func(s string) bool {
					return strings.HasPrefix(s, "CTP aborted")
				}) {
					t.Errorf("ck_txn.py did not report an aborted consume-transform-produce step and DONE: %q", steps)
				}
				t.Logf("ck_txn.py steps: %q", steps)
				tc.check(ctx, t, c, read)
				t.Logf("confluent-kafka-python transactions: %v", time.Since(start).Round(time.Millisecond))
			})
		})
	}
}
