package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeTarget tells consumers when to stop: when they reached every assigned partition's end offset
// (consume mode), when the group consumed want records, or when the context ends.
type consumeTarget struct {
	from map[int32]int64 // first offset to read per partition
	upTo map[int32]int64 // stop a partition at this offset; nil = no per-partition end
	want atomic.Int64    // stop everything after this many records; 0 = unbounded
	stop context.CancelFunc
}

// consume runs cfg.Consumers direct (group-less) consumers over the topic's partitions, split
// round-robin, until target says stop or ctx ends. Every consumer has ended when it returns.
func (r *runner) consume(ctx context.Context, target *consumeTarget) error {
	n := min(r.cfg.Consumers, len(r.partitions))
	assign := make([]map[int32]kgo.Offset, n)
	for i, p := range r.partitions {
		if assign[i%n] == nil {
			assign[i%n] = map[int32]kgo.Offset{}
		}
		if target.upTo != nil && target.from[p] >= target.upTo[p] {
			continue // nothing to read there
		}
		assign[i%n][p] = kgo.NewOffset().At(target.from[p])
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		if len(assign[i]) == 0 {
			continue
		}
		cl, err := r.client(
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: assign[i]}))
		if err != nil {
			target.stop()
			wg.Wait()
			return fmt.Errorf("consumer client: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			errs[i] = r.consumeLoop(ctx, cl, assign[i], target)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// consumeLoop polls one client until its partitions are done or the run stops.
func (r *runner) consumeLoop(ctx context.Context, cl *kgo.Client, parts map[int32]kgo.Offset,
	target *consumeTarget) error {
	open := len(parts)
	finished := make(map[int32]bool, len(parts))
	stamp := r.mode == ModeE2E
	for open > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			r.c.fail(fmt.Errorf("fetch %s/%d: %w", topic, p, err))
		})
		now := time.Now()
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			// Totals are added once per partition fetch: shared atomics per
			// record were a measurable part of the client's work, which both
			// clusters pay alike and which hides the brokers' difference.
			var bytes int64
			for _, rec := range fp.Records {
				if stamp && len(rec.Value) >= e2eStampBytes {
					sent := int64(binary.BigEndian.Uint64(rec.Value))
					r.e2eLat.Record(now.Sub(time.Unix(0, sent)))
				}
				bytes += int64(len(rec.Key) + len(rec.Value))
			}
			r.c.consumedBytes.Add(bytes)
			if total := r.c.consumed.Add(int64(len(fp.Records))); target.want.Load() > 0 && total >= target.want.Load() {
				target.stop()
			}
			// Records of a partition arrive in offset order, so the last one
			// tells whether the partition is done. >= rather than ==: the
			// last offsets may be control records a consumer never sees.
			last := fp.Records[len(fp.Records)-1]
			if target.upTo != nil && !finished[fp.Partition] && last.Offset+1 >= target.upTo[fp.Partition] {
				finished[fp.Partition] = true
				open--
			}
		})
	}
	return nil
}

// runConsume reads the topic from its start offsets to the end offsets listed when the run begins.
func (r *runner) runConsume(ctx context.Context) error {
	start, end, err := r.offsets(ctx)
	if err != nil {
		return err
	}
	var total int64
	for p, e := range end {
		total += e - start[p]
	}
	if total == 0 {
		return fmt.Errorf("%w: %q (read it after a produce run)", ErrNothingToConsume, r.cfg.Topic)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.cfg.Duration > 0 {
		var cancelT context.CancelFunc
		cctx, cancelT = context.WithTimeout(cctx, r.cfg.Duration)
		defer cancelT()
	}
	target := &consumeTarget{from: start, upTo: end, stop: cancel}
	if r.cfg.Records > 0 {
		target.want.Store(r.cfg.Records)
	}
	r.started = time.Now()
	for range max(r.cfg.Passes, 1) {
		if r.cfg.Client == ClientLean {
			err = r.consumeLean(cctx, target)
		} else {
			err = r.consume(cctx, target)
		}
		// A pass that --records or --duration cut short ends the run.
		if err != nil || cctx.Err() != nil {
			break
		}
	}
	r.elapsed = time.Since(r.started)
	return err
}

// runE2E starts consumers at the current end offsets, then produces; consumers keep reading after the
// producers stopped until they saw every acknowledged record or the drain timeout passed.
func (r *runner) runE2E(ctx context.Context) error {
	_, end, err := r.offsets(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target := &consumeTarget{from: end, stop: cancel}
	var consumeErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		consumeErr = r.consume(cctx, target)
	}()
	r.started = time.Now()
	produceErr := r.produce(ctx, r.deadline())
	r.elapsed = time.Since(r.started)
	// Every record is now acknowledged or failed: the consumers wait for the acknowledged ones only.
	acked := r.c.produced.Load()
	target.want.Store(max(acked, 1))
	if r.c.consumed.Load() >= acked {
		cancel()
	}
	drain := time.NewTimer(r.cfg.DrainTimeout)
	defer drain.Stop()
	select {
	case <-done:
	case <-drain.C:
		cancel()
		<-done
		if got := r.c.consumed.Load(); got < acked {
			r.c.fail(fmt.Errorf("e2e: consumed %d of %d acknowledged records within the drain timeout %v",
				got, acked, r.cfg.DrainTimeout))
		}
	}
	return errors.Join(produceErr, consumeErr)
}
