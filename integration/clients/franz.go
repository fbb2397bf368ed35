package clients

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzDriver runs the scenario with franz-go: kgo for produce and fetch, kadm for admin. A producer client
// is built per Produce call because compression and idempotence are client-wide options in kgo.
type franzDriver struct {
	bootstrap []string
	admin     *kgo.Client // owned; closed by Close
	adm       *kadm.Client
}

func newFranzDriver(_ context.Context, cfg *config) (driver, error) {
	seeds := splitBootstrap(cfg.bootstrap)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, fmt.Errorf("franz-go admin client: %w", err)
	}
	return &franzDriver{bootstrap: seeds, admin: cl, adm: kadm.NewClient(cl)}, nil
}

func splitBootstrap(b string) []string {
	var out []string
	for _, s := range strings.Split(b, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (d *franzDriver) Close() error { d.admin.Close(); return nil }

func (d *franzDriver) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	_, err := d.adm.CreateTopic(ctx, partitions, 1, nil, topic)
	return err
}

func (d *franzDriver) PartitionCount(ctx context.Context, topic string) (int, error) {
	ts, err := d.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	t, ok := ts[topic]
	if !ok {
		return 0, errors.New("topic missing from metadata")
	}
	if t.Err != nil {
		return 0, t.Err
	}
	return len(t.Partitions), nil
}

func franzCodec(codec string) (kgo.CompressionCodec, error) {
	switch codec {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown codec %q", codec)
}

func (d *franzDriver) Produce(ctx context.Context, topic, codec string, idempotent bool, recs []record) error {
	c, err := franzCodec(codec)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(d.bootstrap...),
		kgo.ProducerBatchCompression(c),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer cl.Close()
	krs := make([]*kgo.Record, 0, len(recs))
	for _, r := range recs {
		krs = append(krs, toKgo(topic, r))
	}
	return cl.ProduceSync(ctx, krs...).FirstErr()
}

func toKgo(topic string, r record) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: []byte(r.Key), Value: []byte(r.Value)}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	return kr
}

func fromKgo(kr *kgo.Record) consumed {
	c := consumed{Offset: kr.Offset, record: record{Partition: kr.Partition, Key: string(kr.Key), Value: string(kr.Value)}}
	for _, h := range kr.Headers {
		c.Headers = append(c.Headers, header{Key: h.Key, Value: string(h.Value)})
	}
	return c
}

func (d *franzDriver) EndOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	return lookupOffset(d.adm.ListEndOffsets(ctx, topic))(topic, partition)
}

func (d *franzDriver) OffsetForTime(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	return lookupOffset(d.adm.ListOffsetsAfterMilli(ctx, ts, topic))(topic, partition)
}

func lookupOffset(l kadm.ListedOffsets, err error) func(string, int32) (int64, error) {
	return func(topic string, p int32) (int64, error) {
		if err != nil {
			return 0, err
		}
		o, ok := l.Lookup(topic, p)
		if !ok {
			return 0, fmt.Errorf("partition %d missing from list offsets response", p)
		}
		return o.Offset, o.Err
	}
}

func (d *franzDriver) ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error) {
	krs, err := franzRead(ctx, d.bootstrap, topic, map[int32]int64{partition: end})
	if err != nil {
		return nil, err
	}
	out := make([]consumed, 0, len(krs))
	for _, kr := range krs {
		out = append(out, fromKgo(kr))
	}
	return out, nil
}

// franzRead reads each partition in ends from offset 0 to its end offset (exclusive), in offset order per
// partition.
func franzRead(ctx context.Context, seeds []string, topic string, ends map[int32]int64) ([]*kgo.Record, error) {
	parts := make(map[int32]kgo.Offset)
	left := 0
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().At(0)
			left++
		}
	}
	if left == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer cl.Close()
	var out []*kgo.Record
	done := make(map[int32]bool)
	for len(done) < left {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read %d records so far: %w", len(out), err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("fetch partition %d: %w", p, err) })
		if ferr != nil {
			return out, ferr
		}
		fs.EachRecord(func(kr *kgo.Record) {
			if kr.Offset < ends[kr.Partition] {
				out = append(out, kr)
			}
			if kr.Offset >= ends[kr.Partition]-1 {
				done[kr.Partition] = true
			}
		})
	}
	return out, nil
}

func (d *franzDriver) SetTopicConfig(ctx context.Context, topic, key, value string) error {
	rs, err := d.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
		}
	}
	return nil
}

func (d *franzDriver) TopicConfig(ctx context.Context, topic, key string) (string, error) {
	rcs, err := d.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return "", err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return "", err
	}
	if rc.Err != nil {
		return "", rc.Err
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue(), nil
		}
	}
	return "", fmt.Errorf("config %s not described", key)
}

// fallbackCreateTopic creates the topic with franz-go for clients without an admin API, so the rest of
// their scenario can run. It waits until metadata shows every partition.
func fallbackCreateTopic(ctx context.Context, cfg *config, topic string, partitions int32) error {
	d, err := newFranzDriver(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.CreateTopic(ctx, topic, partitions); err != nil {
		return err
	}
	return waitPartitions(ctx, d, topic, int(partitions))
}
