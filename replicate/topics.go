package replicate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster is one side's clients: cl for admin and producing, adm over it.
type cluster struct {
	name string
	opts []kgo.Opt
	cl   *kgo.Client
	adm  *kadm.Client
	id   string // cluster id from Metadata
}

// connect builds the admin client of c and checks that the cluster answers Metadata (reachability,
// TLS and SASL all fail here, before anything is written anywhere). Every client of the cluster (the
// admin client here, the session's producer or consumer from its opts) reissues a failed request for
// retryTimeout (Config.RetryTimeout) before giving up.
func connect(ctx context.Context, c ClientConfig, retryTimeout time.Duration) (*cluster, error) {
	c.RetryTimeout = retryTimeout
	opts, err := c.KgoOpts()
	if err != nil {
		return nil, err
	}
	// The admin client lists offsets of topics this process has just created (the offset-map topic, new
	// destination topics); a partition Kafka lists without a leader for a moment must not cost the
	// default 5 s minimum between metadata refreshes (seen as a 5 s stall of every at-least-once start).
	cl, err := kgo.NewClient(append(slices.Clone(opts), kgo.MetadataMinAge(250*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("%s cluster %s: %w", c.Name, c.Bootstrap, err)
	}
	adm := kadm.NewClient(cl)
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	md, err := adm.BrokerMetadata(mctx)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("%s cluster %s: %w: %w", c.Name, c.Bootstrap, ErrUnreachable, err)
	}
	return &cluster{name: c.Name, opts: opts, cl: cl, adm: adm, id: md.Cluster}, nil
}

func (c *cluster) close() { c.cl.Close() }

// topicInfo is what the replicator knows of one source topic and its destination.
type topicInfo struct {
	src, dst      string
	srcID         [16]byte
	partitions    int32           // source partition count
	leaders       map[int32]int32 // source partition leaders
	dstPartitions int32           // 0 when the destination topic does not exist yet
	configs       map[string]*string
}

// listTopics returns the selected source topics with their partition counts, leaders and replicable
// configs, and the destination's partition counts.
func listTopics(ctx context.Context, src, dst *cluster, sel *selector) (map[string]*topicInfo, error) {
	sd, err := src.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("source cluster: list topics: %w", err)
	}
	out := map[string]*topicInfo{}
	for _, td := range sd {
		if td.Err != nil || td.IsInternal || !sel.selects(td.Topic) {
			continue
		}
		ti := &topicInfo{src: td.Topic, dst: sel.dest(td.Topic), srcID: td.ID,
			partitions: int32(len(td.Partitions)), leaders: map[int32]int32{}}
		for _, p := range td.Partitions {
			ti.leaders[p.Partition] = p.Leader
		}
		out[td.Topic] = ti
	}
	if len(out) == 0 {
		return out, nil
	}
	names := slices.Sorted(maps.Keys(out))
	rcs, err := src.adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("source cluster: describe topic configs: %w", err)
	}
	for _, rc := range rcs {
		ti := out[rc.Name]
		if ti == nil || rc.Err != nil {
			continue
		}
		ti.configs = map[string]*string{}
		for _, c := range rc.Configs {
			if c.Source == 1 /* DYNAMIC_TOPIC_CONFIG */ && !SkippedConfigs[c.Key] && c.Value != nil {
				ti.configs[c.Key] = c.Value
			}
		}
	}
	dstNames := make([]string, 0, len(out))
	for _, ti := range out {
		dstNames = append(dstNames, ti.dst)
	}
	dd, err := dst.adm.ListTopics(ctx, dstNames...)
	if err != nil {
		return nil, fmt.Errorf("destination cluster: list topics: %w", err)
	}
	for _, ti := range out {
		if d, ok := dd[ti.dst]; ok && d.Err == nil {
			ti.dstPartitions = int32(len(d.Partitions))
		}
	}
	return out, nil
}

// checkTopics fails if a destination topic exists with fewer partitions than its source and the mirror
// has not copied into it before (known reports topics the offset map holds: their growth is ours to do).
func checkTopics(topics map[string]*topicInfo, known func(topic string) bool) error {
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		ti := topics[name]
		if ti.dstPartitions > 0 && ti.dstPartitions < ti.partitions && !known(ti.src) {
			return fmt.Errorf("destination cluster: topic %s has %d partitions, source topic %s has %d: %w",
				ti.dst, ti.dstPartitions, ti.src, ti.partitions, ErrFewerPartitions)
		}
	}
	return nil
}

// ensureTopics creates missing destination topics and grows ones with fewer partitions than the source.
func ensureTopics(ctx context.Context, dst *cluster, topics map[string]*topicInfo) error {
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		ti := topics[name]
		switch {
		case ti.dstPartitions == 0:
			resp, err := dst.adm.CreateTopic(ctx, ti.partitions, -1, ti.configs, ti.dst)
			if err == nil {
				err = resp.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("destination cluster: create topic %s (%d partitions, configs %v): %w",
					ti.dst, ti.partitions, configString(ti.configs), err)
			}
			ti.dstPartitions = ti.partitions
		case ti.dstPartitions < ti.partitions:
			resp, err := dst.adm.UpdatePartitions(ctx, int(ti.partitions), ti.dst)
			if err == nil {
				var r kadm.CreatePartitionsResponse
				if r, err = resp.On(ti.dst, nil); err == nil {
					err = r.Err
				}
			}
			if err != nil {
				return fmt.Errorf("destination cluster: grow topic %s to %d partitions: %w", ti.dst, ti.partitions, err)
			}
			ti.dstPartitions = ti.partitions
		}
	}
	return nil
}

func configString(m map[string]*string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = *v
	}
	return out
}

// ensureOffsetsTopic creates the compacted offset-map topic on the destination if it is missing.
func ensureOffsetsTopic(ctx context.Context, dst *cluster, name string) error {
	compact := "compact"
	resp, err := dst.adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, offsetsTopic(name))
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("destination cluster: create offset-map topic %s: %w", offsetsTopic(name), err)
	}
	return nil
}

// maxMessageBytes returns the smallest max.message.bytes among the destination topics (the producer's
// batch limit must fit all of them), at least Kafka's default.
func maxMessageBytes(ctx context.Context, dst *cluster, topics map[string]*topicInfo) int32 {
	limit := int32(1048588)
	names := make([]string, 0, len(topics))
	for _, ti := range topics {
		names = append(names, ti.dst)
	}
	rcs, err := dst.adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return limit
	}
	lowest := int32(0)
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if v, err := strconv.Atoi(*c.Value); err == nil && v > 0 && (lowest == 0 || int32(v) < lowest) {
					lowest = int32(v)
				}
			}
		}
	}
	if lowest > 0 {
		return lowest
	}
	return limit
}
