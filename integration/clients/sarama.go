package clients

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// saramaDriver runs the scenario with IBM/sarama at its default protocol version (2.8, what most sarama
// users run with). Sarama's API is blocking without contexts; each call is bounded by the client's own
// timeouts, and ReadPartition additionally watches ctx.
type saramaDriver struct {
	seeds  []string
	client sarama.Client // owned; closed by Close
	admin  sarama.ClusterAdmin
}

func newSaramaDriver(_ context.Context, cfg *config) (driver, error) {
	seeds := splitBootstrap(cfg.bootstrap)
	client, err := sarama.NewClient(seeds, saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("sarama client: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sarama admin: %w", err)
	}
	return &saramaDriver{seeds: seeds, client: client, admin: admin}, nil
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "strom-matrix-sarama"
	c.Consumer.Return.Errors = true
	return c
}

// Close closes the admin, which closes the client it was built from.
func (d *saramaDriver) Close() error { return d.admin.Close() }

func (d *saramaDriver) CreateTopic(_ context.Context, topic string, partitions int32) error {
	return d.admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
}

func (d *saramaDriver) PartitionCount(_ context.Context, topic string) (int, error) {
	md, err := d.admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, err
	}
	if len(md) != 1 {
		return 0, fmt.Errorf("metadata for %d topics, want 1", len(md))
	}
	if md[0].Err != sarama.ErrNoError {
		return 0, md[0].Err
	}
	return len(md[0].Partitions), nil
}

func saramaCodec(codec string) (sarama.CompressionCodec, error) {
	switch codec {
	case "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("unknown codec %q", codec)
}

func (d *saramaDriver) Produce(_ context.Context, topic, codec string, idempotent bool, recs []record) error {
	c := saramaConfig()
	var err error
	if c.Producer.Compression, err = saramaCodec(codec); err != nil {
		return err
	}
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	if idempotent {
		// Sarama refuses idempotence unless at most one request is in flight per broker.
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	}
	p, err := sarama.NewSyncProducer(d.seeds, c)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 0, len(recs))
	for _, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition, Key: sarama.StringEncoder(r.Key), Value: sarama.StringEncoder(r.Value)}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: []byte(h.Value)})
		}
		msgs = append(msgs, m)
	}
	return p.SendMessages(msgs)
}

func (d *saramaDriver) EndOffset(_ context.Context, topic string, partition int32) (int64, error) {
	return d.client.GetOffset(topic, partition, sarama.OffsetNewest)
}

func (d *saramaDriver) OffsetForTime(_ context.Context, topic string, partition int32, ts int64) (int64, error) {
	return d.client.GetOffset(topic, partition, ts)
}

func (d *saramaDriver) ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error) {
	if end <= 0 {
		return nil, nil
	}
	c, err := sarama.NewConsumer(d.seeds, saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("consume partition: %w", err)
	}
	defer pc.Close()
	var out []consumed
	for {
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("read %d records so far: %w", len(out), ctx.Err())
		case err := <-pc.Errors():
			return out, err
		case m := <-pc.Messages():
			r := consumed{Offset: m.Offset, record: record{Partition: m.Partition, Key: string(m.Key), Value: string(m.Value)}}
			for _, h := range m.Headers {
				r.Headers = append(r.Headers, header{Key: string(h.Key), Value: string(h.Value)})
			}
			if m.Offset < end {
				out = append(out, r)
			}
			if m.Offset >= end-1 {
				return out, nil
			}
		}
	}
}

func (d *saramaDriver) SetTopicConfig(_ context.Context, topic, key, value string) error {
	return d.admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		key: {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value},
	}, false)
}

func (d *saramaDriver) TopicConfig(_ context.Context, topic, key string) (string, error) {
	es, err := d.admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{key}})
	if err != nil {
		return "", err
	}
	for _, e := range es {
		if e.Name == key {
			return e.Value, nil
		}
	}
	return "", errors.New("config not described")
}
