package clients

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// driver is what the shared executor needs from a client that Go orchestrates (an in-process Go library,
// or a command-line tool run once per call). Every method is synchronous: Produce returns after every
// record was acknowledged. A method the client cannot do returns a *notSupported error; the executor turns
// it into an NA result with its reason.
type driver interface {
	// CreateTopic creates topic with the given partitions and replication factor 1.
	CreateTopic(ctx context.Context, topic string, partitions int32) error
	// PartitionCount returns the topic's partition count as the client's metadata sees it.
	PartitionCount(ctx context.Context, topic string) (int, error)
	// Produce writes recs to their partitions with the codec, idempotently if asked, in slice order per
	// partition.
	Produce(ctx context.Context, topic string, codec string, idempotent bool, recs []record) error
	// EndOffset returns the partition's high watermark.
	EndOffset(ctx context.Context, topic string, partition int32) (int64, error)
	// ReadPartition reads the partition from offset 0 up to (not including) end.
	ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error)
	// OffsetForTime returns the offset of the first record with timestamp >= ts (milliseconds).
	OffsetForTime(ctx context.Context, topic string, partition int32, ts int64) (int64, error)
	// SetTopicConfig sets one config of the topic, leaving others as they are.
	SetTopicConfig(ctx context.Context, topic, key, value string) error
	// TopicConfig returns the topic's current value for key.
	TopicConfig(ctx context.Context, topic, key string) (string, error)
	// Close releases the client; it is called once, after the last other call.
	Close() error
}

// notSupported is returned by drivers for what the client cannot do at all.
type notSupported struct{ reason string }

func (e *notSupported) Error() string { return "not supported: " + e.reason }

func unsupported(format string, args ...any) error {
	return &notSupported{reason: fmt.Sprintf(format, args...)}
}

// Bounds of the polling the executor does where Kafka is eventually consistent: a new topic's metadata
// and a config change reach every broker's metadata cache shortly after the controller committed them.
const (
	settleTimeout = 15 * time.Second
	settlePoll    = 200 * time.Millisecond
	// timeGap separates the two records of list-offsets-time from the probe timestamp on either side.
	timeGap = 30 * time.Millisecond
)

// runGo adapts a driver constructor to a runner that executes the scenario with the shared executor.
func runGo(newDriver func(ctx context.Context, cfg *config) (driver, error)) runner {
	return func(ctx context.Context, cfg *config, sc *scenario) ([]Result, error) {
		d, err := newDriver(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return execute(ctx, cfg, d, sc), nil
	}
}

// execute runs every feature of sc through d and returns one result per feature.
func execute(ctx context.Context, cfg *config, d driver, sc *scenario) []Result {
	var rs []Result
	add := func(feature string, err error, note string) {
		r := Result{Client: sc.Client, Feature: feature, Outcome: Pass, Detail: note}
		var ns *notSupported
		switch {
		case errors.As(err, &ns):
			r.Outcome, r.Detail = NA, ns.reason
		case err != nil:
			r.Outcome, r.Detail = Fail, err.Error()
		}
		rs = append(rs, r)
	}
	passed := func(feature string) bool {
		for _, r := range rs {
			if r.Feature == feature {
				return r.Outcome == Pass
			}
		}
		return false
	}

	// create-topic. Without an admin API the topic is created by franz-go so the rest can still run.
	err := d.CreateTopic(ctx, sc.Topic, sc.Partitions)
	var ns *notSupported
	if errors.As(err, &ns) {
		if ferr := cfg.createTopic(ctx, cfg, sc.Topic, sc.Partitions); ferr != nil {
			err = fmt.Errorf("%w; fallback creation with franz-go failed too: %v", err, ferr)
		}
	} else if err == nil {
		err = waitPartitions(ctx, d, sc.Topic, int(sc.Partitions))
	}
	add(FeatureCreateTopic, err, "")

	for _, st := range sc.Produce {
		add(st.Feature, d.Produce(ctx, sc.Topic, st.Codec, st.Idempotent, st.Records), "")
	}

	add(FeatureConsumeByOffset, consumeAll(ctx, d, sc, sc.expected(passed)), "")
	add(FeatureListOffsetsTime, listOffsetsTime(ctx, d, sc), "")
	add(FeatureAlterConfig, alterConfig(ctx, d, sc), "")
	return rs
}

func waitPartitions(ctx context.Context, d driver, topic string, want int) error {
	var n int
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		var err error
		n, err = d.PartitionCount(ctx, topic)
		return err == nil && n == want, err
	})
	if err != nil {
		return fmt.Errorf("topic has %d partitions, want %d: %w", n, want, err)
	}
	return nil
}

func consumeAll(ctx context.Context, d driver, sc *scenario, want map[int32][]record) error {
	for p := int32(0); p < sc.Partitions; p++ {
		end, err := d.EndOffset(ctx, sc.Topic, p)
		if err != nil {
			return fmt.Errorf("end offset of partition %d: %w", p, err)
		}
		got, err := d.ReadPartition(ctx, sc.Topic, p, end)
		if err != nil {
			return fmt.Errorf("read partition %d up to %d: %w", p, end, err)
		}
		if diff := compareConsumed(p, want[p], got); diff != "" {
			return errors.New(diff)
		}
	}
	return nil
}

// listOffsetsTime produces record A, takes a timestamp strictly after A's, produces record B strictly
// after it, and expects the lookup of that timestamp to return B's offset (the last one in the partition).
func listOffsetsTime(ctx context.Context, d driver, sc *scenario) error {
	a, b := sc.TimeRecords[0], sc.TimeRecords[1]
	if err := d.Produce(ctx, sc.Topic, "none", false, []record{a}); err != nil {
		return fmt.Errorf("produce first record: %w", err)
	}
	if err := sleep(ctx, timeGap); err != nil {
		return err
	}
	mid := time.Now().UnixMilli()
	if err := sleep(ctx, timeGap); err != nil {
		return err
	}
	if err := d.Produce(ctx, sc.Topic, "none", false, []record{b}); err != nil {
		return fmt.Errorf("produce second record: %w", err)
	}
	end, err := d.EndOffset(ctx, sc.Topic, sc.TimePartition)
	if err != nil {
		return fmt.Errorf("end offset: %w", err)
	}
	got, err := d.OffsetForTime(ctx, sc.Topic, sc.TimePartition, mid)
	if err != nil {
		return fmt.Errorf("offset for timestamp %d: %w", mid, err)
	}
	if got != end-1 {
		return fmt.Errorf("offset for timestamp %d is %d, want %d (the second record)", mid, got, end-1)
	}
	return nil
}

func alterConfig(ctx context.Context, d driver, sc *scenario) error {
	if err := d.SetTopicConfig(ctx, sc.Topic, sc.ConfigKey, sc.ConfigValue); err != nil {
		return err
	}
	var v string
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		var err error
		v, err = d.TopicConfig(ctx, sc.Topic, sc.ConfigKey)
		return err == nil && v == sc.ConfigValue, err
	})
	if err != nil {
		return fmt.Errorf("describe after alter: %s=%q, want %q: %w", sc.ConfigKey, v, sc.ConfigValue, err)
	}
	return nil
}

// poll calls f until it reports done, at most settleTimeout. The last error of f is returned on timeout.
// A notSupported error ends polling at once.
func poll(ctx context.Context, f func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(settleTimeout)
	for {
		done, err := f(ctx)
		if done {
			return nil
		}
		var ns *notSupported
		if errors.As(err, &ns) {
			return err
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("timed out")
			}
			return err
		}
		if serr := sleep(ctx, settlePoll); serr != nil {
			return serr
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
