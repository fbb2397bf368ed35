package broker

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// configType mirrors Kafka's ConfigDef types (DescribeConfigs v3+ ConfigType).
type configType int8

// Kafka's DescribeConfigsResponse config types.
const (
	typeBoolean  configType = 1
	typeString   configType = 2
	typeInt      configType = 3
	typeShort    configType = 4
	typeLong     configType = 5
	typeDouble   configType = 6
	typeList     configType = 7
	typeClass    configType = 8
	typePassword configType = 9
)

// topicConfigDef is one topic-level config as Kafka defines it (LogConfig):
// its type, default, the broker config that supplies the default (synonym),
// and its validity check.
type topicConfigDef struct {
	name       string
	typ        configType
	def        string
	brokerName string // "" when there is no broker-level synonym
	check      func(string) error
	doc        string
}

// topicConfigs is Kafka 4.x's table of topic configs. Values are validated
// here; the storage-relevant ones are applied to storage.Log by
// storageConfig, the produce-relevant ones by produceConfig.
var topicConfigs = func() map[string]topicConfigDef {
	defs := []topicConfigDef{
		{"cleanup.policy", typeList, "delete", "log.cleanup.policy", checkList("delete", "compact"), "retention policy: delete and/or compact"},
		{"compression.type", typeString, "producer", "compression.type", checkEnum("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), "final compression type of the topic"},
		{"compression.gzip.level", typeInt, "-1", "compression.gzip.level", checkIntRange(-1, 9), "gzip level"},
		{"compression.lz4.level", typeInt, "9", "compression.lz4.level", checkIntRange(1, 17), "lz4 level"},
		{"compression.zstd.level", typeInt, "3", "compression.zstd.level", checkIntRange(-131072, 22), "zstd level"},
		{"delete.retention.ms", typeLong, "86400000", "log.cleaner.delete.retention.ms", checkLongMin(0), "how long delete tombstones are kept"},
		{"file.delete.delay.ms", typeLong, "60000", "log.segment.delete.delay.ms", checkLongMin(0), "delay before deleting a file"},
		{"flush.messages", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.flush.interval.messages", checkLongMin(1), "messages between forced flushes"},
		{"flush.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.flush.interval.ms", checkLongMin(0), "time between forced flushes"},
		{"follower.replication.throttled.replicas", typeList, "", "", checkAny, "throttled follower replicas"},
		{"index.interval.bytes", typeInt, "4096", "log.index.interval.bytes", checkIntRange(0, math.MaxInt32), "bytes between offset index entries"},
		{"leader.replication.throttled.replicas", typeList, "", "", checkAny, "throttled leader replicas"},
		{"local.retention.bytes", typeLong, "-2", "log.local.retention.bytes", checkLongMin(-2), "local retention bytes (tiered storage)"},
		{"local.retention.ms", typeLong, "-2", "log.local.retention.ms", checkLongMin(-2), "local retention time (tiered storage)"},
		{"max.compaction.lag.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.cleaner.max.compaction.lag.ms", checkLongMin(1), "max time a record stays uncompacted"},
		{"max.message.bytes", typeInt, "1048588", "message.max.bytes", checkIntRange(0, math.MaxInt32), "largest record batch size allowed"},
		{"message.timestamp.after.max.ms", typeLong, "3600000", "log.message.timestamp.after.max.ms", checkLongMin(0), "max allowed time a timestamp may lie ahead of the broker"},
		{"message.timestamp.before.max.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.message.timestamp.before.max.ms", checkLongMin(0), "max allowed time a timestamp may lie behind the broker"},
		{"message.timestamp.type", typeString, "CreateTime", "log.message.timestamp.type", checkEnum("CreateTime", "LogAppendTime"), "CreateTime or LogAppendTime"},
		{"min.cleanable.dirty.ratio", typeDouble, "0.5", "log.cleaner.min.cleanable.ratio", checkDoubleRange(0, 1), "dirty ratio that triggers compaction"},
		{"min.compaction.lag.ms", typeLong, "0", "log.cleaner.min.compaction.lag.ms", checkLongMin(0), "min time a record stays uncompacted"},
		{"min.insync.replicas", typeInt, "1", "min.insync.replicas", checkIntRange(1, math.MaxInt32), "min ISR size for acks=all"},
		{"preallocate", typeBoolean, "false", "log.preallocate", checkBool, "preallocate segment files"},
		{"remote.log.copy.disable", typeBoolean, "false", "", checkBool, "tiered storage copy disabled"},
		{"remote.log.delete.on.disable", typeBoolean, "false", "", checkBool, "delete remote data when tiering is disabled"},
		{"remote.storage.enable", typeBoolean, "false", "", checkBool, "tiered storage (not supported by Strom)"},
		{"retention.bytes", typeLong, "-1", "log.retention.bytes", checkAny64, "max partition size before old segments are deleted"},
		{"retention.ms", typeLong, "604800000", "log.retention.ms", checkLongMin(-1), "max age of a segment before deletion"},
		{"segment.bytes", typeInt, "1073741824", "log.segment.bytes", checkIntRange(1<<20, math.MaxInt32), "segment file size"},
		{"segment.index.bytes", typeInt, "10485760", "log.index.size.max.bytes", checkIntRange(4, math.MaxInt32), "offset index size"},
		{"segment.jitter.ms", typeLong, "0", "log.roll.jitter.ms", checkLongMin(0), "jitter of segment.ms"},
		{"segment.ms", typeLong, "604800000", "log.roll.ms", checkLongMin(1), "time after which a segment is rolled"},
		{"unclean.leader.election.enable", typeBoolean, "false", "unclean.leader.election.enable", checkBool, "allow out-of-sync leaders"},
	}
	m := make(map[string]topicConfigDef, len(defs))
	for _, d := range defs {
		m[d.name] = d
	}
	return m
}()

// brokerDefaultUnset names the broker synonyms Kafka defines with a null
// default (their value derives from a coarser config such as
// log.retention.hours). Kafka lists no DEFAULT_CONFIG synonym for them, and
// since it drops every synonym listed before the primary broker name, a topic
// config on its default then has no synonyms at all (checked against Kafka
// 4.3.1 by integration's TestDifferential).
var brokerDefaultUnset = map[string]bool{
	"log.retention.ms":      true,
	"log.roll.ms":           true,
	"log.roll.jitter.ms":    true,
	"log.flush.interval.ms": true,
}

// brokerSynonyms maps a broker config name to the topic config it defaults.
var brokerSynonyms = func() map[string]string {
	m := map[string]string{}
	for _, d := range topicConfigs {
		if d.brokerName != "" {
			m[d.brokerName] = d.name
		}
	}
	return m
}()

func checkAny(string) error { return nil }

func checkAny64(v string) error {
	_, err := strconv.ParseInt(v, 10, 64)
	return err
}

func checkBool(v string) error {
	switch strings.ToLower(v) {
	case "true", "false":
		return nil
	}
	return fmt.Errorf("expected true or false, got %q", v)
}

func checkEnum(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

func checkList(vals ...string) func(string) error {
	one := checkEnum(vals...)
	return func(v string) error {
		for _, part := range strings.Split(v, ",") {
			if err := one(strings.TrimSpace(part)); err != nil {
				return err
			}
		}
		return nil
	}
}

func checkIntRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not an int", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is outside [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

func checkLongMin(lo int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a long", v)
		}
		if n < lo {
			return fmt.Errorf("%d is below the minimum %d", n, lo)
		}
		return nil
	}
}

func checkDoubleRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("%q is not a double", v)
		}
		if f < lo || f > hi {
			return fmt.Errorf("%v is outside [%v, %v]", f, lo, hi)
		}
		return nil
	}
}

// validateTopicConfig checks one topic config name and value.
func validateTopicConfig(name string, value *string) error {
	d, ok := topicConfigs[name]
	if !ok {
		return fmt.Errorf("unknown topic config name: %s", name)
	}
	if value == nil {
		return fmt.Errorf("null value not supported for topic config %s", name)
	}
	if err := d.check(*value); err != nil {
		return fmt.Errorf("invalid value %s for configuration %s: %w", *value, name, err)
	}
	return nil
}

// Config sources of DescribeConfigs responses.
const (
	srcDynamicTopic         = int8(kmsg.ConfigSourceDynamicTopicConfig)
	srcDynamicBroker        = int8(kmsg.ConfigSourceDynamicBrokerConfig)
	srcDynamicDefaultBroker = int8(kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	srcStaticBroker         = int8(kmsg.ConfigSourceStaticBrokerConfig)
	srcDefault              = int8(kmsg.ConfigSourceDefaultConfig)
)

// configValue is one resolved value with where it came from; synonyms are
// ordered from the winning source down, as Kafka lists them.
type configValue struct {
	value    string
	source   int8
	synonyms []configSynonym
}

// configSynonym is one candidate value of a config.
type configSynonym struct {
	name   string
	value  string
	source int8
}

// resolveTopicConfig resolves topic config name from the topic's own
// overrides, the broker's dynamic configs (this node, then cluster default),
// the static broker config and Kafka's default, in that order.
func resolveTopicConfig(name string, topic map[string]string, nodeDyn, clusterDyn, static map[string]string) configValue {
	d := topicConfigs[name]
	var syn []configSynonym
	if v, ok := topic[name]; ok {
		syn = append(syn, configSynonym{name, v, srcDynamicTopic})
	}
	if d.brokerName != "" {
		if v, ok := nodeDyn[d.brokerName]; ok {
			syn = append(syn, configSynonym{d.brokerName, v, srcDynamicBroker})
		}
		if v, ok := clusterDyn[d.brokerName]; ok {
			syn = append(syn, configSynonym{d.brokerName, v, srcDynamicDefaultBroker})
		}
		if v, ok := static[d.brokerName]; ok {
			syn = append(syn, configSynonym{d.brokerName, v, srcStaticBroker})
		}
		if !brokerDefaultUnset[d.brokerName] {
			syn = append(syn, configSynonym{d.brokerName, d.def, srcDefault})
		}
	}
	// A topic-only config (no broker synonym) on its default has no synonyms,
	// as in Kafka; its value is still reported with source DEFAULT_CONFIG.
	if len(syn) == 0 {
		return configValue{value: d.def, source: srcDefault}
	}
	return configValue{value: syn[0].value, source: syn[0].source, synonyms: syn}
}

// sortedTopicConfigNames returns every topic config name, sorted.
func sortedTopicConfigNames() []string {
	names := make([]string, 0, len(topicConfigs))
	for n := range topicConfigs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// resolveForTopic resolves one config of a topic with the given overrides
// against the broker configs of the current raft state.
func (b *Broker) resolveForTopic(st *raft.State, name string, topicCfg map[string]string) configValue {
	return resolveTopicConfig(name, topicCfg, st.BrokerConfigs[strconv.Itoa(int(b.cfg.NodeID))], st.BrokerConfigs[""], b.staticConfigs)
}
