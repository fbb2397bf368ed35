package broker

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// Group configs (resource type GROUP, KIP-848's group-level overrides): the names, defaults and limits
// of Apache Kafka 4.3's GroupConfig, so kafka-configs --entity-type groups behaves as on Kafka. Strom's
// consumer groups (KIP-848) honour consumer.session.timeout.ms and consumer.heartbeat.interval.ms; the
// other configs, for share and streams groups and the assignment interval, are stored, validated and
// described like Kafka's but steer nothing, as Strom has neither share nor streams groups and assigns
// at every heartbeat.

// groupConfigDef is one group config.
type groupConfigDef struct {
	name string
	typ  configType
	// synonym is the broker config whose value is the default, listed as the DEFAULT_CONFIG synonym.
	synonym string
	// def is the default; for the consumer timeouts it is this broker's setting.
	def func(b *Broker) string
	// atLeast is the smallest value the type accepts (INT configs); the message differs from limits'.
	atLeast *int64
	// min and max are the broker-side limits (Kafka's group.*.min/max.* configs), named in the error.
	min, max         func(b *Broker) int64
	minName, maxName string
	// check validates a STRING or BOOLEAN value.
	check func(name, v string) error
}

func fixed(v string) func(*Broker) string { return func(*Broker) string { return v } }
func limit(v int64) func(*Broker) int64   { return func(*Broker) int64 { return v } }
func least(v int64) *int64                { return &v }

func millis(d time.Duration) int64 { return d.Milliseconds() }

// groupConfigDefs lists every group config, sorted by name (DescribeConfigs answers in this order).
var groupConfigDefs = []groupConfigDef{
	{name: "consumer.assignment.interval.ms", typ: typeInt, synonym: "group.consumer.assignment.interval.ms",
		def: fixed("1000"), atLeast: least(0), max: limit(15000), maxName: "group.consumer.max.assignment.interval.ms"},
	// Kafka requires the broker defaults to lie within the limits; Strom's limits widen to take in
	// whatever --consumer-group-heartbeat-interval and --consumer-group-session-timeout say.
	{name: "consumer.heartbeat.interval.ms", typ: typeInt, synonym: "group.consumer.heartbeat.interval.ms",
		def:     func(b *Broker) string { return strconv.FormatInt(millis(b.cfg.ConsumerGroupHeartbeatInterval), 10) },
		atLeast: least(1),
		min:     func(b *Broker) int64 { return min(5000, millis(b.cfg.ConsumerGroupHeartbeatInterval)) },
		max:     func(b *Broker) int64 { return max(15000, millis(b.cfg.ConsumerGroupHeartbeatInterval)) },
		minName: "group.consumer.min.heartbeat.interval.ms", maxName: "group.consumer.max.heartbeat.interval.ms"},
	{name: "consumer.session.timeout.ms", typ: typeInt, synonym: "group.consumer.session.timeout.ms",
		def:     func(b *Broker) string { return strconv.FormatInt(millis(b.cfg.ConsumerGroupSessionTimeout), 10) },
		atLeast: least(1),
		min:     func(b *Broker) int64 { return min(45000, millis(b.cfg.ConsumerGroupSessionTimeout)) },
		max:     func(b *Broker) int64 { return max(60000, millis(b.cfg.ConsumerGroupSessionTimeout)) },
		minName: "group.consumer.min.session.timeout.ms", maxName: "group.consumer.max.session.timeout.ms"},
	{name: "share.assignment.interval.ms", typ: typeInt, synonym: "group.share.assignment.interval.ms",
		def: fixed("1000"), atLeast: least(0), max: limit(15000), maxName: "group.share.max.assignment.interval.ms"},
	{name: "share.auto.offset.reset", typ: typeString, synonym: "share.auto.offset.reset", def: fixed("latest"),
		check: checkShareAutoOffsetReset},
	{name: "share.delivery.count.limit", typ: typeInt, synonym: "group.share.delivery.count.limit",
		def: fixed("5"), atLeast: least(2), max: limit(10), maxName: "group.share.max.delivery.count.limit"},
	{name: "share.heartbeat.interval.ms", typ: typeInt, synonym: "group.share.heartbeat.interval.ms",
		def: fixed("5000"), atLeast: least(1), min: limit(5000), max: limit(15000),
		minName: "group.share.min.heartbeat.interval.ms", maxName: "group.share.max.heartbeat.interval.ms"},
	{name: "share.isolation.level", typ: typeString, synonym: "share.isolation.level", def: fixed("read_uncommitted"),
		check: checkOneOf("read_committed", "read_uncommitted")},
	{name: "share.partition.max.record.locks", typ: typeInt, synonym: "group.share.partition.max.record.locks",
		def: fixed("2000"), atLeast: least(100), max: limit(4000), maxName: "group.share.max.partition.max.record.locks"},
	{name: "share.record.lock.duration.ms", typ: typeInt, synonym: "group.share.record.lock.duration.ms",
		def: fixed("30000"), atLeast: least(1000), min: limit(15000), max: limit(60000),
		minName: "group.share.min.record.lock.duration.ms", maxName: "group.share.max.record.lock.duration.ms"},
	{name: "share.renew.acknowledge.enable", typ: typeBoolean, synonym: "share.renew.acknowledge.enable", def: fixed("true"),
		check: checkBoolean},
	{name: "share.session.timeout.ms", typ: typeInt, synonym: "group.share.session.timeout.ms",
		def: fixed("45000"), atLeast: least(1), min: limit(45000), max: limit(60000),
		minName: "group.share.min.session.timeout.ms", maxName: "group.share.max.session.timeout.ms"},
	{name: "streams.assignment.interval.ms", typ: typeInt, synonym: "group.streams.assignment.interval.ms",
		def: fixed("1000"), atLeast: least(0), max: limit(15000), maxName: "group.streams.max.assignment.interval.ms"},
	{name: "streams.heartbeat.interval.ms", typ: typeInt, synonym: "group.streams.heartbeat.interval.ms",
		def: fixed("5000"), atLeast: least(1), min: limit(5000), max: limit(15000),
		minName: "group.streams.min.heartbeat.interval.ms", maxName: "group.streams.max.heartbeat.interval.ms"},
	{name: "streams.initial.rebalance.delay.ms", typ: typeInt, synonym: "group.streams.initial.rebalance.delay.ms",
		def: fixed("3000"), atLeast: least(0)},
	{name: "streams.num.standby.replicas", typ: typeInt, synonym: "group.streams.num.standby.replicas",
		def: fixed("0"), atLeast: least(0), max: limit(2), maxName: "group.streams.max.standby.replicas"},
	{name: "streams.session.timeout.ms", typ: typeInt, synonym: "group.streams.session.timeout.ms",
		def: fixed("45000"), atLeast: least(1), min: limit(45000), max: limit(60000),
		minName: "group.streams.min.session.timeout.ms", maxName: "group.streams.max.session.timeout.ms"},
}

// groupTimeoutPairs are the session timeouts that must exceed their heartbeat intervals.
var groupTimeoutPairs = [][2]string{
	{"consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"},
	{"share.session.timeout.ms", "share.heartbeat.interval.ms"},
	{"streams.session.timeout.ms", "streams.heartbeat.interval.ms"},
}

func groupConfigDefByName(name string) (groupConfigDef, bool) {
	i, ok := slices.BinarySearchFunc(groupConfigDefs, name, func(d groupConfigDef, n string) int {
		switch {
		case d.name < n:
			return -1
		case d.name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return groupConfigDef{}, false
	}
	return groupConfigDefs[i], true
}

func invalidGroupValue(name, v, why string) *configErr {
	return &configErr{kerr.InvalidConfig, fmt.Sprintf("Invalid value %s for configuration %s: %s", v, name, why)}
}

func checkOneOf(vals ...string) func(name, v string) error {
	return func(name, v string) error {
		if !slices.Contains(vals, v) {
			return fmt.Errorf("String must be one of: %s", strings.Join(vals, ", "))
		}
		return nil
	}
}

func checkBoolean(_, v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("Expected value to be either true or false")
	}
	return nil
}

// isoDuration is what Java's Duration.parse takes without signs: days, hours, minutes, seconds.
var isoDuration = regexp.MustCompile(`^P(?:[0-9]+D)?(?:T(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:\.[0-9]{1,9})?S)?)?$`)

func checkShareAutoOffsetReset(name, v string) error {
	if v == "earliest" || v == "latest" {
		return nil
	}
	if d, ok := strings.CutPrefix(v, "by_duration:"); ok && isoDuration.MatchString(d) && d != "P" && d != "PT" {
		return nil
	}
	return fmt.Errorf("Invalid value `%s` for configuration %s. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.", v, name)
}

// validateGroupConfigValue checks one value as Kafka's ConfigDef does (name, type, atLeast, choices);
// nil means a delete, which any known name allows.
func validateGroupConfigValue(name string, value *string) *configErr {
	d, ok := groupConfigDefByName(name)
	if !ok {
		return &configErr{kerr.InvalidConfig, "Unknown group config name: " + name}
	}
	if value == nil {
		return nil
	}
	v := *value
	switch d.typ {
	case typeInt:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return invalidGroupValue(name, v, "Not a number of type INT")
		}
		if d.atLeast != nil && n < *d.atLeast {
			return invalidGroupValue(name, v, fmt.Sprintf("Value must be at least %d", *d.atLeast))
		}
	default:
		if err := d.check(name, v); err != nil {
			return invalidGroupValue(name, v, err.Error())
		}
	}
	return nil
}

// validateGroupConfigs checks a group's full set of overrides against the broker's limits and each
// session timeout against its heartbeat interval, as Kafka's GroupConfig.validate does once the
// individual values are known to parse.
func (b *Broker) validateGroupConfigs(overrides map[string]string) *configErr {
	value := func(name string) int64 {
		d, _ := groupConfigDefByName(name)
		s, ok := overrides[name]
		if !ok {
			s = d.def(b)
		}
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	for _, d := range groupConfigDefs {
		if d.typ != typeInt {
			continue
		}
		v := value(d.name)
		if d.min != nil && v < d.min(b) {
			return &configErr{kerr.InvalidConfig, d.name + " must be greater than or equal to " + d.minName}
		}
		if d.max != nil && v > d.max(b) {
			return &configErr{kerr.InvalidConfig, d.name + " must be less than or equal to " + d.maxName}
		}
	}
	for _, p := range groupTimeoutPairs {
		if value(p[0]) <= value(p[1]) {
			return &configErr{kerr.InvalidConfig, p[0] + " must be greater than " + p[1]}
		}
	}
	return nil
}

// describeGroup lists every group config of group in st: its override (DYNAMIC_GROUP_CONFIG) or the
// default (DEFAULT_CONFIG), with Kafka's synonyms.
func (b *Broker) describeGroup(req *kmsg.DescribeConfigsRequest, st *raft.State, group string) []kmsg.DescribeConfigsResponseResourceConfig {
	overrides := st.GroupConfigs[group]
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range groupConfigDefs {
		def := configSynonym{name: d.synonym, value: d.def(b), source: srcDefault}
		cv := configValue{value: def.value, source: srcDefault, synonyms: []configSynonym{def}}
		if v, ok := overrides[d.name]; ok {
			cv = configValue{value: v, source: srcGroup, synonyms: []configSynonym{{name: d.name, value: v, source: srcGroup}, def}}
		}
		out = append(out, describeEntry(req, d.name, cv, d.typ, ""))
	}
	return out
}

// srcGroup is DescribeConfigs' DYNAMIC_GROUP_CONFIG source.
const srcGroup = int8(kmsg.ConfigSourceGroupConfig)

// consumerConfigFor is the KIP-848 coordinator's setting for groupID: the broker's, overridden by the
// group's consumer.session.timeout.ms and consumer.heartbeat.interval.ms.
func (b *Broker) consumerConfigFor(st *raft.State, groupID string) (session, heartbeat time.Duration) {
	session, heartbeat = b.cfg.ConsumerGroupSessionTimeout, b.cfg.ConsumerGroupHeartbeatInterval
	if st == nil {
		return session, heartbeat
	}
	m := st.GroupConfigs[groupID]
	if v, err := strconv.ParseInt(m["consumer.session.timeout.ms"], 10, 64); err == nil && v > 0 {
		session = time.Duration(v) * time.Millisecond
	}
	if v, err := strconv.ParseInt(m["consumer.heartbeat.interval.ms"], 10, 64); err == nil && v > 0 {
		heartbeat = time.Duration(v) * time.Millisecond
	}
	return session, heartbeat
}

// handleListConfigResources answers ListConfigResources (KIP-1142; v0 was ListClientMetricsResources):
// the config resources of the requested types (all supported ones when none is named). Topics and
// brokers are listed as they exist; groups are those with configs, which are cluster-wide metadata
// (the groups themselves live on their coordinators). Strom keeps no client-metrics resources, so v0
// answers an empty list.
func (b *Broker) handleListConfigResources(rq *request, req *kmsg.ListConfigResourcesRequest) reply {
	resp := req.ResponseKind().(*kmsg.ListConfigResourcesResponse)
	if !b.authorizedCluster(rq, opDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp)
	}
	if req.Version == 0 {
		return now(resp)
	}
	types := req.ResourceTypes
	supported := []int8{int8(kmsg.ConfigResourceTypeTopic), int8(kmsg.ConfigResourceTypeBroker),
		int8(kmsg.ConfigResourceTypeBrokerLogger), int8(kmsg.ConfigResourceTypeClientMetrics), int8(kmsg.ConfigResourceTypeGroupConfig)}
	if len(types) == 0 {
		types = supported
	}
	for _, t := range types {
		if !slices.Contains(supported, t) {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return now(resp)
		}
	}
	st := b.node.State()
	add := func(t int8, names []string) {
		for _, n := range names {
			r := kmsg.NewListConfigResourcesResponseConfigResource()
			r.Name, r.Type = n, t
			resp.ConfigResources = append(resp.ConfigResources, r)
		}
	}
	for _, t := range types {
		switch kmsg.ConfigResourceType(t) {
		case kmsg.ConfigResourceTypeTopic:
			add(t, st.SortedTopicNames())
		case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
			var ids []string
			for _, br := range st.SortedBrokers() {
				ids = append(ids, strconv.Itoa(int(br.ID)))
			}
			add(t, ids)
		case kmsg.ConfigResourceTypeGroupConfig:
			add(t, slices.Sorted(maps.Keys(st.GroupConfigs)))
		}
	}
	return now(resp)
}

func init() {
	register(&kmsg.ListConfigResourcesRequest{}, 0, 1, (*Broker).handleListConfigResources)
}
