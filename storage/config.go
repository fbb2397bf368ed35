package storage

import (
	"log/slog"
	"time"
)

// FsyncPolicy says when appended bytes are forced to stable storage.
type FsyncPolicy int

const (
	// FsyncAlways makes Sync wait for an fsync covering the offset (group commit: one fsync serves every
	// waiter that arrived before it started). Acknowledged data survives power loss.
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval fsyncs from a background goroutine every Config.FsyncInterval; Sync returns at once.
	FsyncInterval
	// FsyncNever leaves flushing to the kernel (Kafka's default); segments are still fsynced at roll and
	// Close so recovery points advance.
	FsyncNever
)

// String names the policy as the command line spells it.
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return "unknown"
}

// Config holds the per-partition settings that Kafka exposes as topic configs. Start from DefaultConfig;
// a zero field where zero makes no sense (sizes, intervals) falls back to its default.
type Config struct {
	SegmentBytes       int64         // segment.bytes: roll when the active segment would exceed this
	SegmentMS          time.Duration // segment.ms: roll a non-empty active segment older than this
	IndexIntervalBytes int           // index.interval.bytes: bytes between sparse index entries
	RetentionMS        time.Duration // retention.ms; < 0 keeps segments forever
	RetentionBytes     int64         // retention.bytes; < 0 means no size limit
	// Compact and Delete encode cleanup.policy: "delete" (Delete only), "compact" (Compact only),
	// "compact,delete" (both). Both false is treated as "delete".
	Compact, Delete bool
	DeleteRetention time.Duration // delete.retention.ms: how long compaction keeps tombstones
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: Compact does work only when the bytes written
	// since the last compaction make up at least this share of the cleanable segments (0 = default 0.5).
	MinCleanableDirtyRatio float64
	// ProducerIDExpiration is producer.id.expiration.ms: EnforceRetention forgets producers whose last
	// batch timestamp is older than this and that have no open transaction (0 = default 24h).
	ProducerIDExpiration time.Duration
	Fsync                FsyncPolicy
	FsyncInterval        time.Duration // period of the FsyncInterval flusher
}

// DefaultConfig returns Kafka's defaults (and fsync always, Strom's default for acks=all durability).
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentMS:              7 * 24 * time.Hour,
		IndexIntervalBytes:     4096,
		RetentionMS:            7 * 24 * time.Hour,
		RetentionBytes:         -1,
		Delete:                 true,
		DeleteRetention:        24 * time.Hour,
		MinCleanableDirtyRatio: 0.5,
		ProducerIDExpiration:   24 * time.Hour,
		Fsync:                  FsyncAlways,
		FsyncInterval:          time.Second,
	}
}

// normalized fills meaningless zero values with defaults.
func (c Config) normalized() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.SegmentBytes < BatchHeaderSize {
		c.SegmentBytes = BatchHeaderSize
	}
	if c.SegmentMS <= 0 {
		c.SegmentMS = d.SegmentMS
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if !c.Compact && !c.Delete {
		c.Delete = true
	}
	if c.DeleteRetention < 0 {
		c.DeleteRetention = 0
	}
	if c.MinCleanableDirtyRatio <= 0 || c.MinCleanableDirtyRatio > 1 {
		c.MinCleanableDirtyRatio = d.MinCleanableDirtyRatio
	}
	if c.ProducerIDExpiration <= 0 {
		c.ProducerIDExpiration = d.ProducerIDExpiration
	}
	if c.FsyncInterval <= 0 {
		c.FsyncInterval = d.FsyncInterval
	}
	return c
}

// Option changes how Open builds a Log (injected dependencies, not partition settings).
type Option func(*options)

type options struct {
	clock  func() time.Time
	logger *slog.Logger
}

func defaultOptions() options {
	return options{clock: time.Now, logger: slog.New(slog.DiscardHandler)}
}

// WithClock injects the time source used for segment.ms rolls and segment ages (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.clock = now
		}
	}
}

// WithLogger sets the logger for recovery and maintenance events.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}
