package broker

import (
	"context"
	"errors"
	"time"

	"github.com/stromhq/strom/storage"
)

// maintain runs the periodic log work Kafka's LogManager schedules: retention
// (retention.ms / retention.bytes, whole segments), compaction of compacted
// topics (the log cleaner), and checkpoints of log start offset, high
// watermark and recovery point so a crash has less to scan. It stops when the
// broker's context is cancelled; it is owned by bgWG.
func (b *Broker) maintain() {
	defer b.bgWG.Done()
	retention := time.NewTicker(b.cfg.RetentionCheckInterval)
	defer retention.Stop()
	checkpoint := time.NewTicker(b.cfg.CheckpointInterval)
	defer checkpoint.Stop()
	// Kafka checks ISR lag every half replica.lag.time.max.ms.
	lag := time.NewTicker(max(b.cfg.ReplicaLagTimeMax/2, 10*time.Millisecond))
	defer lag.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-lag.C:
			b.shrinkLaggingISR(now, b.cfg.ReplicaLagTimeMax)
		case now := <-retention.C:
			b.enforceRetention(now)
		case <-checkpoint.C:
			for _, p := range b.parts.all() {
				if err := p.log.Checkpoint(); err != nil && !errors.Is(err, storage.ErrClosed) {
					b.log.Warn("checkpoint", "topic", p.topic, "partition", p.index, "err", err)
				}
			}
		}
	}
}

// enforceRetention applies retention and compaction to every hosted
// partition. Storage allows both to run beside the partition's writer.
func (b *Broker) enforceRetention(now time.Time) {
	for _, p := range b.parts.all() {
		if b.ctx.Err() != nil {
			return
		}
		n, err := p.log.EnforceRetention(now)
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			b.log.Warn("retention", "topic", p.topic, "partition", p.index, "err", err)
		}
		if n > 0 {
			b.log.Info("retention deleted segments", "topic", p.topic, "partition", p.index, "segments", n, "log_start", p.log.LogStartOffset())
			p.wake() // parked fetches may now be out of range
		}
		if p.cfg.Load().store.Compact {
			ctx, cancel := context.WithTimeout(b.ctx, b.cfg.RetentionCheckInterval)
			err := p.log.Compact(ctx, now)
			cancel()
			if err != nil && !errors.Is(err, storage.ErrClosed) && !errors.Is(err, context.Canceled) {
				b.log.Warn("compaction", "topic", p.topic, "partition", p.index, "err", err)
			}
		}
	}
}
