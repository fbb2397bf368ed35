package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// ackedProducer writes records r000000, r000001, ... to one topic through one client until told to
// stop (at most 200,000), and keeps, per partition, the values the cluster acknowledged, in the order
// the acknowledgements arrived. Fault tests run it while they break the cluster and then check with
// verifyAcked that nothing acknowledged was lost or duplicated.
type ackedProducer struct {
	cl      *kgo.Client
	stopped chan struct{}
	wg      sync.WaitGroup // the producing goroutine, owned by the ackedProducer; finish waits for it

	mu     sync.Mutex
	acked  map[int32][]string // guarded by mu
	failed int                // guarded by mu
}

// startAckedProducer starts producing to topic with cl (the caller's options decide acks, idempotence
// and timeouts), at most rate records per second (0: as fast as the client goes), so that a test of a
// given length neither runs out of its 200,000 records nor stores more than it can read back.
func startAckedProducer(ctx context.Context, cl *kgo.Client, topic string, rate int) *ackedProducer {
	p := &ackedProducer{cl: cl, stopped: make(chan struct{}), acked: map[int32][]string{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		start := time.Now()
		for i := 0; i < 200_000; i++ {
			var pace <-chan time.Time
			if rate > 0 {
				if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
					pace = time.After(wait)
				}
			}
			if pace != nil {
				select {
				case <-p.stopped:
					return
				case <-ctx.Done():
					return
				case <-pace:
				}
			}
			select {
			case <-p.stopped:
				return
			case <-ctx.Done():
				return
			default:
			}
			v := fmt.Sprintf("r%06d", i)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.failed++
					return
				}
				p.acked[r.Partition] = append(p.acked[r.Partition], string(r.Value))
			})
		}
	}()
	return p
}

// counts returns how many records were acknowledged and how many failed so far.
func (p *ackedProducer) counts() (acked, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, vs := range p.acked {
		acked += len(vs)
	}
	return acked, p.failed
}

// finish stops producing and waits until every record sent was acknowledged or failed.
func (p *ackedProducer) finish(ctx context.Context, t testing.TB) {
	t.Helper()
	close(p.stopped)
	p.wg.Wait()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// verify reads the whole topic back and fails t unless every acknowledged record is in its partition
// exactly once and in acknowledgement order, and no record at all was stored twice. It returns how many
// records were acknowledged and stored. Call it after finish.
func (p *ackedProducer) verify(ctx context.Context, t testing.TB, c harness.Cluster, adm *kadm.Client, topic string) (total, stored int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, vs := range p.acked {
		total += len(vs)
	}
	if total == 0 {
		t.Fatal("no record was acknowledged")
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	ends.Each(func(o kadm.ListedOffset) { stored += int(o.Offset) })
	got := byPartition(consumeN(ctx, t, c, topic, stored))
	seen := map[string]int32{}
	for part, rs := range got {
		for _, r := range rs {
			if q, dup := seen[string(r.Value)]; dup {
				t.Errorf("record %s read twice (partitions %d and %d)", r.Value, q, part)
			}
			seen[string(r.Value)] = part
		}
	}
	for part, want := range p.acked {
		var vals []string
		for _, r := range got[part] {
			vals = append(vals, string(r.Value))
		}
		// The acknowledged records must be a subsequence of the partition, in order: a record
		// whose acknowledgement was lost may sit between them, nothing acknowledged may be missing.
		i := 0
		for _, v := range vals {
			if i < len(want) && v == want[i] {
				i++
			}
		}
		if i != len(want) {
			t.Errorf("partition %d: acknowledged record %s (%d of %d) missing or out of order; the partition holds %d records",
				part, want[i], i, len(want), len(vals))
		}
		if !slices.IsSorted(want) {
			t.Logf("partition %d: acknowledgements arrived out of production order", part)
		}
	}
	return total, stored
}
