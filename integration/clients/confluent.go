//go:build cgo

package clients

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// confluentDriver runs the scenario with confluent-kafka-go (bundled librdkafka): AdminClient for admin,
// one Producer per Produce call (codec and idempotence are producer-wide), and a Consumer with manual
// assignment for offsets and reads. It needs cgo, hence the build tag; without cgo the client is simply
// not in Clients().
type confluentDriver struct {
	bootstrap string
	admin     *kafka.AdminClient // owned; closed by Close
	consumer  *kafka.Consumer    // owned; closed by Close; never joins its group (assign only, no commits)
}

func init() {
	registry = append(registry, struct {
		name string
		run  runner
	}{"confluent-kafka-go", runGo(newConfluentDriver)})
}

// confluentTimeout bounds the librdkafka calls that take a timeout instead of a context.
const confluentTimeout = 15 * time.Second

func newConfluentDriver(_ context.Context, cfg *config) (driver, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": cfg.bootstrap})
	if err != nil {
		return nil, fmt.Errorf("confluent-kafka-go admin: %w", err)
	}
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  cfg.bootstrap,
		"group.id":           "strom-matrix-confluent-go", // required by librdkafka; unused with Assign
		"enable.auto.commit": false,
		"auto.offset.reset":  "earliest",
	})
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("confluent-kafka-go consumer: %w", err)
	}
	return &confluentDriver{bootstrap: cfg.bootstrap, admin: admin, consumer: consumer}, nil
}

func (d *confluentDriver) Close() error {
	err := d.consumer.Close()
	d.admin.Close()
	return err
}

func (d *confluentDriver) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	rs, err := d.admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: int(partitions), ReplicationFactor: 1}})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Error.Code() != kafka.ErrNoError {
			return r.Error
		}
	}
	return nil
}

func (d *confluentDriver) PartitionCount(_ context.Context, topic string) (int, error) {
	md, err := d.admin.GetMetadata(&topic, false, int(confluentTimeout.Milliseconds()))
	if err != nil {
		return 0, err
	}
	t, ok := md.Topics[topic]
	if !ok {
		return 0, errors.New("topic missing from metadata")
	}
	if t.Error.Code() != kafka.ErrNoError {
		return 0, t.Error
	}
	return len(t.Partitions), nil
}

func (d *confluentDriver) Produce(ctx context.Context, topic, codec string, idempotent bool, recs []record) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":  d.bootstrap,
		"compression.codec":  codec,
		"enable.idempotence": idempotent,
		"acks":               "all",
		"linger.ms":          0,
	})
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	reports := make(chan kafka.Event, len(recs))
	for _, r := range recs {
		m := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: r.Partition},
			Key:            []byte(r.Key),
			Value:          []byte(r.Value),
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
		}
		if err := p.Produce(m, reports); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	for range recs {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-reports:
			m, ok := e.(*kafka.Message)
			if !ok {
				return fmt.Errorf("unexpected delivery event %v", e)
			}
			if m.TopicPartition.Error != nil {
				return m.TopicPartition.Error
			}
		}
	}
	return nil
}

func (d *confluentDriver) EndOffset(_ context.Context, topic string, partition int32) (int64, error) {
	_, high, err := d.consumer.QueryWatermarkOffsets(topic, partition, int(confluentTimeout.Milliseconds()))
	return high, err
}

func (d *confluentDriver) OffsetForTime(_ context.Context, topic string, partition int32, ts int64) (int64, error) {
	tps, err := d.consumer.OffsetsForTimes([]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.Offset(ts)}},
		int(confluentTimeout.Milliseconds()))
	if err != nil {
		return 0, err
	}
	if len(tps) != 1 {
		return 0, fmt.Errorf("%d partitions in the answer, want 1", len(tps))
	}
	return int64(tps[0].Offset), tps[0].Error
}

func (d *confluentDriver) ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error) {
	if end <= 0 {
		return nil, nil
	}
	if err := d.consumer.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.OffsetBeginning}}); err != nil {
		return nil, fmt.Errorf("assign: %w", err)
	}
	defer d.consumer.Unassign()
	var out []consumed
	for {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read %d records so far: %w", len(out), err)
		}
		m, err := d.consumer.ReadMessage(time.Second)
		var kerr kafka.Error
		if errors.As(err, &kerr) && kerr.IsTimeout() {
			continue
		}
		if err != nil {
			return out, err
		}
		c := consumed{Offset: int64(m.TopicPartition.Offset), record: record{Partition: m.TopicPartition.Partition, Key: string(m.Key), Value: string(m.Value)}}
		for _, h := range m.Headers {
			c.Headers = append(c.Headers, header{Key: h.Key, Value: string(h.Value)})
		}
		if c.Offset < end {
			out = append(out, c)
		}
		if c.Offset >= end-1 {
			return out, nil
		}
	}
}

func (d *confluentDriver) SetTopicConfig(ctx context.Context, topic, key, value string) error {
	rs, err := d.admin.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{
		Type:   kafka.ResourceTopic,
		Name:   topic,
		Config: []kafka.ConfigEntry{{Name: key, Value: value, IncrementalOperation: kafka.AlterConfigOpTypeSet}},
	}})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Error.Code() != kafka.ErrNoError {
			return r.Error
		}
	}
	return nil
}

func (d *confluentDriver) TopicConfig(ctx context.Context, topic, key string) (string, error) {
	rs, err := d.admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		if r.Error.Code() != kafka.ErrNoError {
			return "", r.Error
		}
		if e, ok := r.Config[key]; ok {
			return e.Value, nil
		}
	}
	return "", errors.New("config not described")
}
