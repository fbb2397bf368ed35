package clients

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

// kafkaGoDriver runs the scenario with segmentio/kafka-go: kafka.Client for admin and offsets, kafka.Writer
// for produce and kafka.Reader for consume, as applications use them. The Writer cannot be told a
// partition per message; it uses kafka-go's Murmur2Balancer, which the scenario's keys are chosen for.
type kafkaGoDriver struct {
	seeds  []string
	client *kafka.Client
}

func newKafkaGoDriver(_ context.Context, cfg *config) (driver, error) {
	seeds := splitBootstrap(cfg.bootstrap)
	return &kafkaGoDriver{seeds: seeds, client: &kafka.Client{Addr: kafka.TCP(seeds...), Timeout: 30 * time.Second}}, nil
}

func (d *kafkaGoDriver) Close() error { return nil }

func (d *kafkaGoDriver) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	resp, err := d.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: int(partitions), ReplicationFactor: 1}},
	})
	if err != nil {
		return err
	}
	return resp.Errors[topic]
}

func (d *kafkaGoDriver) PartitionCount(ctx context.Context, topic string) (int, error) {
	resp, err := d.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		if t.Name == topic {
			return len(t.Partitions), t.Error
		}
	}
	return 0, errors.New("topic missing from metadata")
}

func kafkaGoCodec(codec string) (kafka.Compression, error) {
	switch codec {
	case "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("unknown codec %q", codec)
}

func (d *kafkaGoDriver) Produce(ctx context.Context, topic, codec string, idempotent bool, recs []record) error {
	if idempotent {
		return unsupported("kafka-go has no idempotent producer")
	}
	c, err := kafkaGoCodec(codec)
	if err != nil {
		return err
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(d.seeds...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		Compression:  c,
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, len(recs))
	for _, r := range recs {
		m := kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value)}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
		}
		msgs = append(msgs, m)
	}
	return w.WriteMessages(ctx, msgs...)
}

func (d *kafkaGoDriver) listOffset(ctx context.Context, topic string, req kafka.OffsetRequest) (kafka.PartitionOffsets, error) {
	resp, err := d.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {req}}})
	if err != nil {
		return kafka.PartitionOffsets{}, err
	}
	for _, po := range resp.Topics[topic] {
		if po.Partition == req.Partition {
			return po, po.Error
		}
	}
	return kafka.PartitionOffsets{}, fmt.Errorf("partition %d missing from list offsets response", req.Partition)
}

func (d *kafkaGoDriver) EndOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	po, err := d.listOffset(ctx, topic, kafka.LastOffsetOf(int(partition)))
	return po.LastOffset, err
}

func (d *kafkaGoDriver) OffsetForTime(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	po, err := d.listOffset(ctx, topic, kafka.TimeOffsetOf(int(partition), time.UnixMilli(ts)))
	if err != nil {
		return 0, err
	}
	var offs []int64
	for off := range po.Offsets {
		offs = append(offs, off)
	}
	if len(offs) != 1 {
		return 0, fmt.Errorf("offsets %v in the answer, want exactly one", offs)
	}
	return offs[0], nil
}

func (d *kafkaGoDriver) ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error) {
	if end <= 0 {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: d.seeds, Topic: topic, Partition: int(partition), MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return nil, err
	}
	var out []consumed
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return out, fmt.Errorf("after %d records: %w", len(out), err)
		}
		c := consumed{Offset: m.Offset, record: record{Partition: int32(m.Partition), Key: string(m.Key), Value: string(m.Value)}}
		for _, h := range m.Headers {
			c.Headers = append(c.Headers, header{Key: h.Key, Value: string(h.Value)})
		}
		if m.Offset < end {
			out = append(out, c)
		}
		if m.Offset >= end-1 {
			return out, nil
		}
	}
}

func (d *kafkaGoDriver) SetTopicConfig(ctx context.Context, topic, key, value string) error {
	resp, err := d.client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic,
			Configs:      []kafka.IncrementalAlterConfigsRequestConfig{{Name: key, Value: value, ConfigOperation: kafka.ConfigOperationSet}},
		}},
	})
	if err != nil {
		return err
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return r.Error
		}
	}
	return nil
}

func (d *kafkaGoDriver) TopicConfig(ctx context.Context, topic, key string) (string, error) {
	resp, err := d.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{key}}},
	})
	if err != nil {
		return "", err
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return "", r.Error
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == key {
				return e.ConfigValue, nil
			}
		}
	}
	return "", errors.New("config not described")
}
