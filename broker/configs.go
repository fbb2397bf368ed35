package broker

// DescribeConfigs 0-4, AlterConfigs 0-2, IncrementalAlterConfigs 0-1, for
// topics (resource type 2) and brokers (type 4: this broker's id, or "" for
// the cluster-wide default).
//
// Topic configs are validated against Kafka's table (config_table.go: names,
// types, ranges, enums); values resolve from the topic override
// (DYNAMIC_TOPIC_CONFIG), this broker's dynamic config (DYNAMIC_BROKER_CONFIG),
// the cluster default (DYNAMIC_DEFAULT_BROKER_CONFIG), the static broker config
// (STATIC_BROKER_CONFIG, from flags) and Kafka's default (DEFAULT_CONFIG),
// with synonyms listed in that order (v1+). Dynamic configs are raft commands;
// the partition manager applies them live to storage (Log.SetConfig) and to
// the produce path. AlterConfigs replaces a resource's whole dynamic config,
// IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT (the last
// two on list configs only).
//
// Broker configs that can be changed dynamically are the broker-level
// defaults of topic configs (log.retention.ms, message.max.bytes, ...) and
// the replication throttle rates (kafka-reassign-partitions --throttle
// sets and clears them; enforced by replication_throttle.go); other names
// are INVALID_CONFIG. Differences from Kafka: resource types other
// than topic and broker (broker loggers, client metrics, groups) are
// INVALID_REQUEST; documentation strings are short.
//
// ACLs as in Kafka: describing needs DESCRIBE_CONFIGS, altering
// ALTER_CONFIGS, on the topic for topic resources (TOPIC_AUTHORIZATION_FAILED)
// and on the cluster for broker resources (CLUSTER_AUTHORIZATION_FAILED),
// checked before the resource is looked up.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.DescribeConfigsRequest{}, 0, 4, (*Broker).handleDescribeConfigs)
	register(&kmsg.AlterConfigsRequest{}, 0, 2, (*Broker).handleAlterConfigs)
	register(&kmsg.IncrementalAlterConfigsRequest{}, 0, 1, (*Broker).handleIncrementalAlterConfigs)
}

// brokerConfigDefaults are the Kafka defaults of the static broker configs
// Strom reports.
var brokerConfigDefaults = map[string]string{
	"num.partitions":              "1",
	"default.replication.factor":  "1",
	"auto.create.topics.enable":   "true",
	"socket.request.max.bytes":    "104857600",
	"socket.send.buffer.bytes":    "102400",
	"socket.receive.buffer.bytes": "102400",
	"log.dirs":                    "/tmp/kafka-logs",
	"node.id":                     "-1",
	"broker.id":                   "-1",

	"auto.leader.rebalance.enable":            "true",
	"leader.imbalance.check.interval.seconds": "300",
	"leader.imbalance.per.broker.percentage":  "10",
}

// brokerThrottleConfigs are the dynamic broker configs of replication
// throttling, with Kafka's defaults (Long.MAX_VALUE: unlimited), enforced
// by replication_throttle.go.
var brokerThrottleConfigs = map[string]string{
	"leader.replication.throttled.rate":              "9223372036854775807",
	"follower.replication.throttled.rate":            "9223372036854775807",
	"replica.alter.log.dirs.io.max.bytes.per.second": "9223372036854775807",
}

// configErr is a per-resource failure.
type configErr struct {
	e   *kerr.Error
	msg string
}

// configAuthzErr is the error for a config resource rq may not act on
// with op (DESCRIBE_CONFIGS or ALTER_CONFIGS), or nil. Non-topic resources
// map onto the cluster, groups onto the group, as Kafka maps them.
func (b *Broker) configAuthzErr(rq *request, op int8, rt kmsg.ConfigResourceType, name string) *configErr {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !b.authorized(rq, op, resTopic, name) {
			return &configErr{kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed.Description}
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !b.authorized(rq, op, resGroup, name) {
			return &configErr{kerr.GroupAuthorizationFailed, kerr.GroupAuthorizationFailed.Description}
		}
	default:
		if !b.authorizedCluster(rq, op) {
			return &configErr{kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description}
		}
	}
	return nil
}

func (b *Broker) handleDescribeConfigs(rq *request, req *kmsg.DescribeConfigsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	st := b.node.State()
	for _, r := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		var entries []kmsg.DescribeConfigsResponseResourceConfig
		cerr := b.configAuthzErr(rq, opDescribeConfigs, r.ResourceType, r.ResourceName)
		switch {
		case cerr != nil:
		case r.ResourceType == kmsg.ConfigResourceTypeTopic:
			t, ok := st.Topics[r.ResourceName]
			if !ok {
				cerr = &configErr{kerr.UnknownTopicOrPartition, "Topic " + r.ResourceName + " does not exist."}
				break
			}
			for _, name := range sortedTopicConfigNames() {
				cv := b.resolveForTopic(st, name, t.Configs)
				d := topicConfigs[name]
				entries = append(entries, describeEntry(req, name, cv, d.typ, d.doc))
			}
		case r.ResourceType == kmsg.ConfigResourceTypeBroker:
			if cerr = b.checkBrokerResource(st, r.ResourceName, true); cerr != nil {
				break
			}
			entries = b.describeBroker(req, st, r.ResourceName)
		case r.ResourceType == kmsg.ConfigResourceTypeGroupConfig:
			if r.ResourceName == "" {
				cerr = &configErr{kerr.InvalidRequest, "Group name can't be empty."}
				break
			}
			entries = b.describeGroup(req, st, r.ResourceName)
		default:
			cerr = &configErr{kerr.InvalidRequest, fmt.Sprintf("Unsupported resource type %d", r.ResourceType)}
		}
		if cerr != nil {
			out.ErrorCode = cerr.e.Code
			out.ErrorMessage = kmsg.StringPtr(cerr.msg)
		} else {
			out.Configs = filterConfigs(entries, r.ConfigNames)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return now(resp)
}

// filterConfigs keeps the named configs (all when names is null or empty).
func filterConfigs(entries []kmsg.DescribeConfigsResponseResourceConfig, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	if len(names) == 0 {
		return entries
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, e := range entries {
		if slices.Contains(names, e.Name) {
			out = append(out, e)
		}
	}
	return out
}

func describeEntry(req *kmsg.DescribeConfigsRequest, name string, cv configValue, typ configType, doc string) kmsg.DescribeConfigsResponseResourceConfig {
	e := kmsg.NewDescribeConfigsResponseResourceConfig()
	e.Name = name
	e.Value = kmsg.StringPtr(cv.value)
	e.Source = kmsg.ConfigSource(cv.source)
	e.IsDefault = cv.source == srcDefault
	e.ConfigType = kmsg.ConfigType(typ)
	if req.IncludeSynonyms {
		for _, s := range cv.synonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = s.name, kmsg.StringPtr(s.value), kmsg.ConfigSource(s.source)
			e.ConfigSynonyms = append(e.ConfigSynonyms, syn)
		}
	}
	if req.IncludeDocumentation {
		e.Documentation = kmsg.StringPtr(doc)
	}
	return e
}

// checkBrokerResource validates a broker resource name: this broker's id or
// "" (the cluster default). For alters, any registered broker id is accepted.
func (b *Broker) checkBrokerResource(st *raft.State, name string, describe bool) *configErr {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return &configErr{kerr.InvalidRequest, "Broker id must be an integer, but it is: " + name}
	}
	if describe && int32(id) != b.cfg.NodeID {
		return &configErr{kerr.InvalidRequest, fmt.Sprintf("Unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)}
	}
	if _, ok := st.Brokers[int32(id)]; !ok && int32(id) != b.cfg.NodeID {
		return &configErr{kerr.InvalidRequest, "Unknown broker id " + name}
	}
	return nil
}

// describeBroker lists a broker's configs: the broker-level defaults of topic
// configs and the static configs. For the cluster default resource ("") only
// the dynamic default entries are listed, as Kafka does.
func (b *Broker) describeBroker(req *kmsg.DescribeConfigsRequest, st *raft.State, name string) []kmsg.DescribeConfigsResponseResourceConfig {
	clusterDyn := st.BrokerConfigs[""]
	if name == "" {
		var out []kmsg.DescribeConfigsResponseResourceConfig
		for _, k := range slices.Sorted(maps.Keys(clusterDyn)) {
			cv := configValue{value: clusterDyn[k], source: srcDynamicDefaultBroker, synonyms: []configSynonym{{k, clusterDyn[k], srcDynamicDefaultBroker}}}
			out = append(out, describeEntry(req, k, cv, brokerConfigType(k), ""))
		}
		return out
	}
	nodeDyn := st.BrokerConfigs[name]
	names := map[string]bool{}
	for k := range brokerSynonyms {
		names[k] = true
	}
	for k := range b.staticConfigs {
		names[k] = true
	}
	for k := range brokerThrottleConfigs {
		names[k] = true
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range slices.Sorted(maps.Keys(names)) {
		var syn []configSynonym
		if v, ok := nodeDyn[k]; ok {
			syn = append(syn, configSynonym{k, v, srcDynamicBroker})
		}
		if v, ok := clusterDyn[k]; ok {
			syn = append(syn, configSynonym{k, v, srcDynamicDefaultBroker})
		}
		if v, ok := b.staticConfigs[k]; ok {
			syn = append(syn, configSynonym{k, v, srcStaticBroker})
		}
		if topic, ok := brokerSynonyms[k]; ok {
			syn = append(syn, configSynonym{k, topicConfigs[topic].def, srcDefault})
		} else if v, ok := brokerConfigDefaults[k]; ok {
			syn = append(syn, configSynonym{k, v, srcDefault})
		} else if v, ok := brokerThrottleConfigs[k]; ok {
			syn = append(syn, configSynonym{k, v, srcDefault})
		}
		if len(syn) == 0 {
			continue
		}
		cv := configValue{value: syn[0].value, source: syn[0].source, synonyms: syn}
		e := describeEntry(req, k, cv, brokerConfigType(k), "")
		_, dynamic := brokerSynonyms[k]
		_, throttle := brokerThrottleConfigs[k]
		e.ReadOnly = !dynamic && !throttle // static configs change only with a restart
		out = append(out, e)
	}
	return out
}

func brokerConfigType(name string) configType {
	if topic, ok := brokerSynonyms[name]; ok {
		return topicConfigs[topic].typ
	}
	if _, ok := brokerThrottleConfigs[name]; ok {
		return typeLong
	}
	switch name {
	case "auto.create.topics.enable":
		return typeBoolean
	case "log.dirs":
		return typeString
	case "default.replication.factor", "num.partitions", "node.id", "broker.id", "socket.request.max.bytes",
		"socket.send.buffer.bytes", "socket.receive.buffer.bytes":
		return typeInt
	}
	return typeString
}

// validateConfigValue checks one config of a resource type; nil value means
// delete (always allowed for a known name).
func validateConfigValue(rtype kmsg.ConfigResourceType, name string, value *string) *configErr {
	if rtype == kmsg.ConfigResourceTypeGroupConfig {
		return validateGroupConfigValue(name, value)
	}
	topicName := name
	if _, ok := brokerThrottleConfigs[name]; ok && rtype == kmsg.ConfigResourceTypeBroker {
		if value == nil {
			return nil
		}
		if v, err := strconv.ParseInt(*value, 10, 64); err != nil || v < 0 {
			return &configErr{kerr.InvalidConfig, fmt.Sprintf("Invalid value %s for configuration %s: Value must be at least 0", *value, name)}
		}
		return nil
	}
	if rtype == kmsg.ConfigResourceTypeBroker {
		t, ok := brokerSynonyms[name]
		if !ok {
			return &configErr{kerr.InvalidConfig, fmt.Sprintf("Cannot update these configs dynamically: [%s]", name)}
		}
		topicName = t
	}
	if value == nil {
		if _, ok := topicConfigs[topicName]; !ok {
			return &configErr{kerr.InvalidConfig, "Unknown topic config name: " + name}
		}
		return nil
	}
	if err := validateTopicConfig(topicName, value); err != nil {
		return &configErr{kerr.InvalidConfig, err.Error()}
	}
	return nil
}

// alterTarget resolves the raft resource of a config resource.
func (b *Broker) alterTarget(st *raft.State, rtype kmsg.ConfigResourceType, name string) (raft.ConfigResource, map[string]string, *configErr) {
	switch rtype {
	case kmsg.ConfigResourceTypeTopic:
		t, ok := st.Topics[name]
		if !ok {
			return 0, nil, &configErr{kerr.UnknownTopicOrPartition, "Topic " + name + " does not exist."}
		}
		return raft.ResourceTopic, t.Configs, nil
	case kmsg.ConfigResourceTypeBroker:
		if cerr := b.checkBrokerResource(st, name, false); cerr != nil {
			return 0, nil, cerr
		}
		return raft.ResourceBroker, st.BrokerConfigs[name], nil
	case kmsg.ConfigResourceTypeGroupConfig:
		if name == "" {
			return 0, nil, &configErr{kerr.InvalidRequest, "Group name can't be empty."}
		}
		return raft.ResourceGroup, st.GroupConfigs[name], nil
	}
	return 0, nil, &configErr{kerr.InvalidRequest, fmt.Sprintf("Unsupported resource type %d", rtype)}
}

// commitConfigs validates the resulting set and applies it through raft.
func (b *Broker) commitConfigs(res raft.ConfigResource, name string, current, next map[string]string, validateOnly bool) *configErr {
	if res == raft.ResourceGroup {
		if cerr := b.validateGroupConfigs(next); cerr != nil {
			return cerr
		}
	}
	var del []string
	for k := range current {
		if _, ok := next[k]; !ok {
			del = append(del, k)
		}
	}
	sort.Strings(del)
	set := map[string]string{}
	for k, v := range next {
		if cur, ok := current[k]; !ok || cur != v {
			set[k] = v
		}
	}
	if validateOnly || (len(set) == 0 && len(del) == 0) {
		return nil
	}
	if _, err := b.apply(context.Background(), raft.AlterConfigs{Resource: res, Name: name, Set: set, Delete: del}); err != nil {
		return &configErr{metaErr(err), err.Error()}
	}
	b.log.Info("altered configs", "resource", res, "name", name, "set", set, "deleted", del)
	return nil
}

func (b *Broker) handleAlterConfigs(rq *request, req *kmsg.AlterConfigsRequest) reply {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	dups := map[[2]string]int{}
	for _, r := range req.Resources {
		dups[[2]string{strconv.Itoa(int(r.ResourceType)), r.ResourceName}]++
	}
	for _, r := range req.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		cerr := func() *configErr {
			if dups[[2]string{strconv.Itoa(int(r.ResourceType)), r.ResourceName}] > 1 {
				return &configErr{kerr.InvalidRequest, "Duplicate resource in request"}
			}
			if cerr := b.configAuthzErr(rq, opAlterConfigs, r.ResourceType, r.ResourceName); cerr != nil {
				return cerr
			}
			st := b.node.State()
			res, current, cerr := b.alterTarget(st, r.ResourceType, r.ResourceName)
			if cerr != nil {
				return cerr
			}
			next := map[string]string{}
			for _, c := range r.Configs {
				if c.Value == nil {
					return &configErr{kerr.InvalidRequest, "Null value not supported for : " + c.Name}
				}
				if cerr := validateConfigValue(r.ResourceType, c.Name, c.Value); cerr != nil {
					return cerr
				}
				next[c.Name] = *c.Value
			}
			return b.commitConfigs(res, r.ResourceName, current, next, req.ValidateOnly)
		}()
		if cerr != nil {
			out.ErrorCode = cerr.e.Code
			out.ErrorMessage = kmsg.StringPtr(cerr.msg)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return now(resp)
}

func (b *Broker) handleIncrementalAlterConfigs(rq *request, req *kmsg.IncrementalAlterConfigsRequest) reply {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	dups := map[[2]string]int{}
	for _, r := range req.Resources {
		dups[[2]string{strconv.Itoa(int(r.ResourceType)), r.ResourceName}]++
	}
	for _, r := range req.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		cerr := func() *configErr {
			if dups[[2]string{strconv.Itoa(int(r.ResourceType)), r.ResourceName}] > 1 {
				return &configErr{kerr.InvalidRequest, "Duplicate resource in request"}
			}
			if cerr := b.configAuthzErr(rq, opAlterConfigs, r.ResourceType, r.ResourceName); cerr != nil {
				return cerr
			}
			st := b.node.State()
			res, current, cerr := b.alterTarget(st, r.ResourceType, r.ResourceName)
			if cerr != nil {
				return cerr
			}
			names := map[string]bool{}
			next := maps.Clone(current)
			if next == nil {
				next = map[string]string{}
			}
			for _, c := range r.Configs {
				if names[c.Name] {
					return &configErr{kerr.InvalidRequest, "Error due to duplicate config keys: " + c.Name}
				}
				names[c.Name] = true
				topicName := c.Name
				if r.ResourceType == kmsg.ConfigResourceTypeBroker {
					topicName = brokerSynonyms[c.Name]
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return &configErr{kerr.InvalidRequest, "Null value not supported for : " + c.Name}
					}
					if cerr := validateConfigValue(r.ResourceType, c.Name, c.Value); cerr != nil {
						return cerr
					}
					next[c.Name] = *c.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					if cerr := validateConfigValue(r.ResourceType, c.Name, nil); cerr != nil {
						return cerr
					}
					delete(next, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if cerr := validateConfigValue(r.ResourceType, c.Name, nil); cerr != nil {
						return cerr
					}
					if topicConfigs[topicName].typ != typeList {
						return &configErr{kerr.InvalidConfig, fmt.Sprintf("Config value append is not allowed for config key: %s", c.Name)}
					}
					if c.Value == nil {
						return &configErr{kerr.InvalidRequest, "Null value not supported for : " + c.Name}
					}
					base, ok := next[c.Name]
					if !ok {
						base = b.resolveConfigForAlter(st, r.ResourceType, r.ResourceName, topicName)
					}
					v := applyListOp(base, *c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
					if cerr := validateConfigValue(r.ResourceType, c.Name, &v); cerr != nil {
						return cerr
					}
					next[c.Name] = v
				default:
					return &configErr{kerr.InvalidRequest, fmt.Sprintf("Unknown alter config operation %d", c.Op)}
				}
			}
			return b.commitConfigs(res, r.ResourceName, current, next, req.ValidateOnly)
		}()
		if cerr != nil {
			out.ErrorCode = cerr.e.Code
			out.ErrorMessage = kmsg.StringPtr(cerr.msg)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return now(resp)
}

// resolveConfigForAlter is the current effective value a list APPEND or
// SUBTRACT starts from when the resource has no override.
func (b *Broker) resolveConfigForAlter(st *raft.State, rtype kmsg.ConfigResourceType, name, topicName string) string {
	if rtype == kmsg.ConfigResourceTypeTopic {
		if t, ok := st.Topics[name]; ok {
			return b.resolveForTopic(st, topicName, t.Configs).value
		}
	}
	return topicConfigs[topicName].def
}

// applyListOp appends (without duplicates) or removes the comma-separated
// items of v to/from list.
func applyListOp(list, v string, add bool) string {
	var items []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if add {
			if !slices.Contains(items, s) {
				items = append(items, s)
			}
		} else {
			items = slices.DeleteFunc(items, func(x string) bool { return x == s })
		}
	}
	return strings.Join(items, ",")
}
