package integration

// Differential tests (issue 4): the same kmsg requests go to Apache Kafka 4.3.1 and to Strom (both the
// shared single-node pool clusters), and the responses are compared field by field. Responses are
// flattened by reflection into "path = value" pairs, so every field kmsg decodes is compared unless it
// is one of the fields that legitimately differ between two clusters (ignoredFields). A difference fails
// the test unless integration/gaps lists "diff/<scenario>/<path>" with its reason.

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/integration/gaps"
	"github.com/stromhq/strom/integration/harness"
)

// ignoredFields are response fields that legitimately differ between two clusters answering the same
// request: identities chosen at random or by configuration, timing, and free-text messages.
var ignoredFields = map[string]bool{
	"ThrottleMillis": true, "ErrorMessage": true, "UnknownTags": true, "Version": true,
	"ClusterID": true, "TopicID": true, "Host": true, "Port": true, "NodeID": true, "ControllerID": true,
	"Rack": true, "Brokers": true, "Documentation": true, "ClientHost": true, "MemberID": true,
	"ClientID": true, "InstanceID": true, "ProducerID": true, "AuthorizedOperations": true, "ClusterAuthorizedOperations": true,
}

// elemKeyFields name the fields that identify an element of a response array: elements are compared by
// that key (a topic name, a partition index, a group), not by their position, which Kafka does not define.
var elemKeyFields = []string{"Topic", "Name", "Group", "Partition", "Key", "CoordinatorKey"}

// present is the value recorded for a keyed element or map entry itself, so that an element found on
// one side only is reported once instead of once per field.
const present = "<present>"

// flatten records v under prefix in out, one entry per scalar field.
func flatten(prefix string, v reflect.Value, out map[string]string) {
	join := func(p, s string) string {
		if p == "" {
			return s
		}
		return p + "." + s
	}
	switch v.Kind() {
	case reflect.Invalid:
		out[prefix] = "<nil>"
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			out[prefix] = "<nil>"
			return
		}
		flatten(prefix, v.Elem(), out)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || ignoredFields[f.Name] {
				continue
			}
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				out[join(prefix, f.Name)] = codeName(int16(v.Field(i).Int()))
				continue
			}
			flatten(join(prefix, f.Name), v.Field(i), out)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			p := join(prefix, fmt.Sprint(k))
			out[p] = present
			flatten(p, v.MapIndex(k), out)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			out[prefix] = fmt.Sprintf("%x", v.Bytes())
			return
		}
		out[join(prefix, "#")] = fmt.Sprint(v.Len())
		seen := map[string]bool{}
		for i := range v.Len() {
			e := v.Index(i)
			k := elemKey(e)
			if k == "" || seen[k] {
				k = fmt.Sprint(i)
			}
			seen[k] = true
			p := prefix + "[" + k + "]"
			out[p] = present
			flatten(p, e, out)
		}
	default:
		out[prefix] = fmt.Sprint(v.Interface())
	}
}

// elemKey returns the identifying value of a struct element (see elemKeyFields), or "".
func elemKey(e reflect.Value) string {
	if e.Kind() != reflect.Struct {
		return ""
	}
	for _, name := range elemKeyFields {
		f := e.FieldByName(name)
		if !f.IsValid() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			return f.String()
		case reflect.Pointer:
			if !f.IsNil() && f.Elem().Kind() == reflect.String {
				return f.Elem().String()
			}
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return fmt.Sprint(f.Int())
		}
	}
	return ""
}

// codeName renders a Kafka error code with its name, for readable differences.
func codeName(code int16) string {
	if code == 0 {
		return "0"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return fmt.Sprintf("%d %s", code, ke.Message)
		}
	}
	return fmt.Sprint(code)
}

// side is one cluster of the comparison with a client sending raw requests to it.
type side struct {
	name string
	c    harness.Cluster
	cl   *kgo.Client
}

// diffSides returns the Kafka 4.3.1 and Strom sides from the shared pool.
func diffSides(t *testing.T) (kafka, strom *side) {
	t.Helper()
	for _, tg := range clusters() {
		switch tg.name {
		case "kafka-" + harness.DefaultKafkaVersion:
			c := tg.start(t)
			kafka = &side{name: tg.name, c: c, cl: newClient(t, c)}
		case "strom":
			c := tg.start(t)
			strom = &side{name: tg.name, c: c, cl: newClient(t, c)}
		}
	}
	if kafka == nil || strom == nil {
		t.Fatal("clusters() lacks the Kafka or the Strom target")
	}
	return kafka, strom
}

// compare runs scenario against both sides and reports every differing path through gaps.Check as
// "diff/<scenario>/<path>", with base (the run's random name prefix) written "<base>". An element present on one side only is reported once, at its own path.
func compare(t *testing.T, ctx context.Context, kafka, strom *side, base, scenario string,
	fn func(ctx context.Context, s *side) any) {
	t.Helper()
	kv, sv := map[string]string{}, map[string]string{}
	flatten("", reflect.ValueOf(fn(ctx, kafka)), kv)
	flatten("", reflect.ValueOf(fn(ctx, strom)), sv)
	kv, sv = unbase(kv, base), unbase(sv, base)
	if os.Getenv("STROM_DIFF_DUMP") != "" { // every compared path, to review what a scenario covers
		for _, p := range slices.Sorted(maps.Keys(kv)) {
			t.Logf("kafka %s = %s", p, kv[p])
		}
	}
	paths := slices.Sorted(maps.Keys(kv))
	for p := range sv {
		if _, ok := kv[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var oneSided []string // paths of elements on one side only; their children are not reported again
	matched := 0
	for _, p := range paths {
		if slices.ContainsFunc(oneSided, func(o string) bool {
			return strings.HasPrefix(p, o+".") || strings.HasPrefix(p, o+"[")
		}) {
			continue
		}
		k, kok := kv[p]
		s, sok := sv[p]
		name := "diff/" + scenario + "/" + p
		diffSeen[name] = true
		switch {
		case !sok:
			oneSided = append(oneSided, p)
			gaps.Check(t, name, true, fmt.Sprintf("kafka only: %q", k))
		case !kok:
			oneSided = append(oneSided, p)
			gaps.Check(t, name, true, fmt.Sprintf("strom only: %q", s))
		case k != s:
			gaps.Check(t, name, true, fmt.Sprintf("kafka %q, strom %q", k, s))
		default:
			matched++
			gaps.Check(t, name, false, "")
		}
	}
	t.Logf("%s: %d of %d paths equal", scenario, matched, len(paths))
}

// unbase replaces the run's random name prefix with "<base>" in paths and values, so gap entries name
// stable paths ("Topics[<base>-t]").
func unbase(m map[string]string, base string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ReplaceAll(k, base, "<base>")] = strings.ReplaceAll(v, base, "<base>")
	}
	return out
}

// diffSeen records every gap name compare checked, so TestDifferential can fail on a listed "diff/" gap
// that names no compared path (a renamed field or scenario would otherwise hide it forever). Subtests
// run one after another; nothing else touches it.
var diffSeen = map[string]bool{}

// req sends r with s's client and fails t on a transport error.
func req[R kmsg.Response](t *testing.T, ctx context.Context, s *side, r kmsg.Request) R {
	t.Helper()
	resp, err := s.cl.Request(ctx, r)
	if err != nil {
		t.Fatalf("%s: %T: %v", s.name, r, err)
	}
	return resp.(R)
}

// direct sends r straight to broker 1 (the only node of both clusters), bypassing kgo's sharding, which
// answers a request for an unknown partition itself instead of sending it.
func direct[R kmsg.Response](t *testing.T, ctx context.Context, s *side, r kmsg.Request) R {
	t.Helper()
	resp, err := s.cl.Broker(1).Request(ctx, r)
	if err != nil {
		t.Fatalf("%s: %T to broker 1: %v", s.name, r, err)
	}
	return resp.(R)
}

// topicID returns topic's id on s.
func topicID(t *testing.T, ctx context.Context, s *side, topic string) [16]byte {
	t.Helper()
	r := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	r.Topics = append(r.Topics, mt)
	resp := req[*kmsg.MetadataResponse](t, ctx, s, r)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("%s: metadata of %s: %+v", s.name, topic, resp.Topics)
	}
	return resp.Topics[0].TopicID
}

// waitTopics waits (bounded) until s's Metadata shows every topic with a leader for each partition:
// Kafka answers CreateTopics once its controller committed, and its broker learns of the topic later.
func waitTopics(t *testing.T, ctx context.Context, s *side, topics ...string) {
	t.Helper()
	r := kmsg.NewPtrMetadataRequest()
	for _, name := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		r.Topics = append(r.Topics, mt)
	}
	for range 200 {
		resp := req[*kmsg.MetadataResponse](t, ctx, s, r)
		ready := len(resp.Topics) == len(topics)
		for _, mt := range resp.Topics {
			ready = ready && mt.ErrorCode == 0 && len(mt.Partitions) > 0
			for _, p := range mt.Partitions {
				ready = ready && p.ErrorCode == 0 && p.Leader >= 0
			}
		}
		if ready {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: topics %v not ready in metadata", s.name, topics)
}

// createTopicRaw creates topic on s with a raw CreateTopics request and fails t on any error.
func createTopicRaw(t *testing.T, ctx context.Context, s *side, topic string, partitions int32,
	configs map[string]string) {
	t.Helper()
	r := kmsg.NewPtrCreateTopicsRequest()
	r.TimeoutMillis = 30000
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, partitions, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		ct.Configs = append(ct.Configs, c)
	}
	r.Topics = append(r.Topics, ct)
	resp := req[*kmsg.CreateTopicsResponse](t, ctx, s, r)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("%s: create %s: %+v", s.name, topic, resp.Topics)
	}
}

func TestDifferential(t *testing.T) {
	began := time.Now()
	kafka, strom := diffSides(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	base := uniqueName("diff")
	topic := base + "-t"    // 3 partitions, no configs: metadata, configs, partitions
	logT := base + "-log"   // 1 partition, produced identically: offsets and fetch
	cfgT := base + "-cfg"   // 1 partition: config changes
	group := base + "-g"    // simple group, generation -1
	active := base + "-ga"  // a kgo consumer group member
	prodT := base + "-prod" // 1 partition: produce and admin error codes
	txnT := base + "-txn"   // 1 partition: transactional records and control batches
	for _, s := range []*side{kafka, strom} {
		createTopicRaw(t, ctx, s, txnT, 1, nil)
		createTopicRaw(t, ctx, s, prodT, 1, nil)
		createTopicRaw(t, ctx, s, topic, 3, nil)
		createTopicRaw(t, ctx, s, logT, 1, nil)
		createTopicRaw(t, ctx, s, cfgT, 1, nil)
		waitTopics(t, ctx, s, txnT, prodT, topic, logT, cfgT)
	}

	t.Run("metadata", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "metadata", func(ctx context.Context, s *side) any {
			r := kmsg.NewPtrMetadataRequest()
			r.AllowAutoTopicCreation = false
			for _, name := range []string{topic, base + "-unknown"} {
				mt := kmsg.NewMetadataRequestTopic()
				mt.Topic = kmsg.StringPtr(name)
				r.Topics = append(r.Topics, mt)
			}
			return req[*kmsg.MetadataResponse](t, ctx, s, r)
		})
	})

	t.Run("create-topics", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "create-topics", func(ctx context.Context, s *side) any {
			r := kmsg.NewPtrCreateTopicsRequest()
			r.TimeoutMillis = 30000
			add := func(name string, partitions int32, rf int16, configs ...string) {
				ct := kmsg.NewCreateTopicsRequestTopic()
				ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, partitions, rf
				for i := 0; i+1 < len(configs); i += 2 {
					c := kmsg.NewCreateTopicsRequestTopicConfig()
					c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
					ct.Configs = append(ct.Configs, c)
				}
				r.Topics = append(r.Topics, ct)
			}
			add("bad/name", 1, 1)
			add(strings.Repeat("x", 250), 1, 1)
			add(topic, 1, 1)
			add(base+"-p0", 0, 1)
			add(base+"-pm2", -2, 1)
			add(base+"-rf0", 1, 0)
			add(base+"-rf2", 1, 2)
			add(base+"-unkcfg", 1, 1, "no.such.config", "1")
			add(base+"-badval", 1, 1, "retention.ms", "abc")
			add(base+"-badpolicy", 1, 1, "cleanup.policy", "sometimes")
			return req[*kmsg.CreateTopicsResponse](t, ctx, s, r)
		})
	})

	t.Run("create-topics-validate-only", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "create-topics-validate-only", func(ctx context.Context, s *side) any {
			r := kmsg.NewPtrCreateTopicsRequest()
			r.TimeoutMillis, r.ValidateOnly = 30000, true
			for _, name := range []string{base + "-vo", topic} {
				ct := kmsg.NewCreateTopicsRequestTopic()
				ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, 2, 1
				r.Topics = append(r.Topics, ct)
			}
			resp := req[*kmsg.CreateTopicsResponse](t, ctx, s, r)
			// The validated topic must not exist afterwards.
			mr := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(base + "-vo")
			mr.Topics = append(mr.Topics, mt)
			return map[string]any{"create": resp, "after": req[*kmsg.MetadataResponse](t, ctx, s, mr).Topics}
		})
	})

	t.Run("delete-topics", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "delete-topics", func(ctx context.Context, s *side) any {
			byName := kmsg.NewPtrDeleteTopicsRequest()
			byName.TimeoutMillis = 30000
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.Topic = kmsg.StringPtr(base + "-nosuch")
			byName.Topics, byName.TopicNames = append(byName.Topics, dt), []string{base + "-nosuch"}
			byID := kmsg.NewPtrDeleteTopicsRequest()
			byID.TimeoutMillis = 30000
			di := kmsg.NewDeleteTopicsRequestTopic()
			_, _ = rand.Read(di.TopicID[:])
			byID.Topics = append(byID.Topics, di)
			return map[string]any{
				"name": req[*kmsg.DeleteTopicsResponse](t, ctx, s, byName),
				"id":   req[*kmsg.DeleteTopicsResponse](t, ctx, s, byID),
			}
		})
	})

	t.Run("create-partitions", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "create-partitions", func(ctx context.Context, s *side) any {
			out := map[string]any{}
			for _, c := range []struct {
				name  string
				topic string
				count int32
			}{{"decrease", topic, 2}, {"same", topic, 3}, {"unknown", base + "-nosuch", 4}} {
				r := kmsg.NewPtrCreatePartitionsRequest()
				r.TimeoutMillis = 30000
				ct := kmsg.NewCreatePartitionsRequestTopic()
				ct.Topic, ct.Count = c.topic, c.count
				r.Topics = append(r.Topics, ct)
				out[c.name] = req[*kmsg.CreatePartitionsResponse](t, ctx, s, r)
			}
			return out
		})
	})

	t.Run("describe-configs", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "describe-configs", func(ctx context.Context, s *side) any {
			return describeConfigs(t, ctx, s, topic)
		})
	})

	t.Run("describe-cluster-configs", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "describe-cluster-configs", func(ctx context.Context, s *side) any {
			r := kmsg.NewPtrDescribeConfigsRequest()
			r.IncludeSynonyms = true
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType = kmsg.ConfigResourceTypeBroker // name "": the cluster-wide dynamic defaults
			r.Resources = append(r.Resources, rr)
			return req[*kmsg.DescribeConfigsResponse](t, ctx, s, r)
		})
	})

	t.Run("alter-configs", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "alter-configs", func(ctx context.Context, s *side) any {
			return alterConfigs(t, ctx, s, cfgT)
		})
	})

	t.Run("list-offsets", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "list-offsets", func(ctx context.Context, s *side) any {
			produceFixed(t, ctx, s, logT)
			return listOffsets(t, ctx, s, logT)
		})
	})

	t.Run("fetch", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "fetch", func(ctx context.Context, s *side) any {
			return fetchAt(t, ctx, s, logT)
		})
	})

	t.Run("offsets", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "offsets", func(ctx context.Context, s *side) any {
			return commitAndFetch(t, ctx, s, topic, group, base+"-nogroup")
		})
	})

	t.Run("groups", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "groups", func(ctx context.Context, s *side) any {
			return describeGroups(t, ctx, s, topic, group, active, base+"-nogroup")
		})
	})

	t.Run("find-coordinator", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "find-coordinator", func(ctx context.Context, s *side) any {
			out := map[string]any{}
			for _, kt := range []int8{0, 1, 5, -1} {
				r := kmsg.NewPtrFindCoordinatorRequest()
				r.CoordinatorType = kt
				r.CoordinatorKey = group
				r.CoordinatorKeys = []string{group}
				// Kafka creates __consumer_offsets / __transaction_state on the first lookup and answers
				// COORDINATOR_NOT_AVAILABLE until they are loaded; Strom may be ready at once. Both
				// are correct, so the settled answer is compared (bounded retries).
				var resp *kmsg.FindCoordinatorResponse
				for range 50 {
					resp = req[*kmsg.FindCoordinatorResponse](t, ctx, s, r)
					if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || kt < 0 || kt > 1 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				out[fmt.Sprintf("type%d", kt)] = resp
			}
			return out
		})
	})

	t.Run("init-producer-id", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "init-producer-id", func(ctx context.Context, s *side) any {
			out := map[string]any{}
			for _, c := range []struct {
				name    string
				txnID   *string
				timeout int32
			}{
				{"idempotent", nil, 60000},
				{"transactional", kmsg.StringPtr(base + "-txn"), 60000},
				{"timeout-too-big", kmsg.StringPtr(base + "-txn2"), 1 << 30},
				{"timeout-zero", kmsg.StringPtr(base + "-txn3"), 0},
				{"timeout-negative", kmsg.StringPtr(base + "-txn4"), -5},
			} {
				r := kmsg.NewPtrInitProducerIDRequest()
				r.TransactionalID, r.TransactionTimeoutMillis = c.txnID, c.timeout
				resp := req[*kmsg.InitProducerIDResponse](t, ctx, s, r)
				// Producer ids are allocated per cluster; only whether one was given is comparable.
				out[c.name] = map[string]any{"ErrorCode": codeName(resp.ErrorCode),
					"HasProducerID": resp.ProducerID >= 0, "ProducerEpoch": resp.ProducerEpoch}
			}
			return out
		})
	})
	t.Run("error-codes", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "error-codes", func(ctx context.Context, s *side) any {
			return errorCodes(t, ctx, s, prodT, group, base)
		})
	})
	t.Run("old-versions", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "old-versions", func(ctx context.Context, s *side) any {
			return oldVersions(t, ctx, s, prodT, group, base)
		})
	})
	t.Run("txn-errors", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "txn-errors", func(ctx context.Context, s *side) any {
			return txnErrors(t, ctx, s, prodT, base)
		})
	})

	t.Run("txn-fetch", func(t *testing.T) {
		compare(t, ctx, kafka, strom, base, "txn-fetch", func(ctx context.Context, s *side) any {
			return txnFetch(t, ctx, s, txnT, base)
		})
	})

	t.Run("group-errors", func(t *testing.T) { // last: it deletes the simple group
		compare(t, ctx, kafka, strom, base, "group-errors", func(ctx context.Context, s *side) any {
			return groupErrors(t, ctx, s, topic, group, base)
		})
	})
	if !t.Failed() {
		for _, name := range gaps.Names() {
			if strings.HasPrefix(name, "diff/") && !diffSeen[name] {
				t.Errorf("integration/gaps lists %q, but no compared path has that name", name)
			}
		}
	}
	t.Logf("differential run took %.1fs", time.Since(began).Seconds())
}

// configView is what DescribeConfigs says about one config, in comparable form.
type configView struct {
	Value       string
	Source      string
	ReadOnly    bool
	IsDefault   bool
	IsSensitive bool
	Type        string
	Synonyms    []string // "name=value (source)"
}

// describeConfigs returns every config of topic on s (with synonyms), keyed by name.
func describeConfigs(t *testing.T, ctx context.Context, s *side, topic string, names ...string) any {
	t.Helper()
	r := kmsg.NewPtrDescribeConfigsRequest()
	r.IncludeSynonyms = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, names
	r.Resources = append(r.Resources, rr)
	resp := req[*kmsg.DescribeConfigsResponse](t, ctx, s, r)
	if len(resp.Resources) != 1 {
		t.Fatalf("%s: describe configs of %s: %d resources", s.name, topic, len(resp.Resources))
	}
	res := resp.Resources[0]
	view := map[string]configView{}
	for _, c := range res.Configs {
		v := configView{Value: "<nil>", Source: c.Source.String(), ReadOnly: c.ReadOnly, IsDefault: c.IsDefault,
			IsSensitive: c.IsSensitive, Type: c.ConfigType.String()}
		if c.Value != nil {
			v.Value = *c.Value
		}
		for _, syn := range c.ConfigSynonyms {
			val := "<nil>"
			if syn.Value != nil {
				val = *syn.Value
			}
			v.Synonyms = append(v.Synonyms, fmt.Sprintf("%s=%s (%s)", syn.Name, val, syn.Source))
		}
		view[c.Name] = v
	}
	return map[string]any{"ErrorCode": codeName(res.ErrorCode), "Configs": view}
}

// alterConfigs runs the incremental set/delete/append/subtract operations and the invalid-value cases on
// topic (which starts with no overrides), reading the configs back after each step.
func alterConfigs(t *testing.T, ctx context.Context, s *side, topic string) any {
	t.Helper()
	watched := []string{"retention.ms", "segment.ms", "cleanup.policy", "max.message.bytes"}
	incr := func(ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) any {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeTopic, topic, ops
		r.Resources = append(r.Resources, rr)
		return req[*kmsg.IncrementalAlterConfigsResponse](t, ctx, s, r)
	}
	op := func(name string, o kmsg.IncrementalAlterConfigOp, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = name, o
		if value != "" {
			c.Value = kmsg.StringPtr(value)
		}
		return c
	}
	out := map[string]any{}
	// Kafka answers an alter once its controller committed it; the broker that describes applies it a
	// little later. So the read-back of a step that changes something waits (bounded) until it shows
	// the step's effect (want: name -> value); a side that never shows it is compared as it stands.
	step := func(name string, resp any, want ...string) {
		var after any
		for range 40 {
			after = describeConfigs(t, ctx, s, topic, watched...)
			cfgs := after.(map[string]any)["Configs"].(map[string]configView)
			settled := true
			for i := 0; i+1 < len(want); i += 2 {
				settled = settled && cfgs[want[i]].Value == want[i+1]
			}
			if settled {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		out[name] = map[string]any{"resp": resp, "after": after}
	}
	step("1-set", incr(op("retention.ms", kmsg.IncrementalAlterConfigOpSet, "123456"),
		op("segment.ms", kmsg.IncrementalAlterConfigOpSet, "7200000")), "retention.ms", "123456", "segment.ms", "7200000")
	step("2-delete", incr(op("segment.ms", kmsg.IncrementalAlterConfigOpDelete, "")), "segment.ms", "604800000")
	step("3-append", incr(op("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "compact")),
		"cleanup.policy", "delete,compact")
	step("4-subtract", incr(op("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, "delete")),
		"cleanup.policy", "compact")
	step("5-set-invalid", incr(op("retention.ms", kmsg.IncrementalAlterConfigOpSet, "abc")))
	step("6-set-unknown", incr(op("no.such.config", kmsg.IncrementalAlterConfigOpSet, "1")))
	step("7-append-nonlist", incr(op("retention.ms", kmsg.IncrementalAlterConfigOpAppend, "5")))

	legacy := func(configs ...string) any {
		r := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		for i := 0; i+1 < len(configs); i += 2 {
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
			rr.Configs = append(rr.Configs, c)
		}
		r.Resources = append(r.Resources, rr)
		return req[*kmsg.AlterConfigsResponse](t, ctx, s, r)
	}
	step("8-legacy-invalid", legacy("retention.ms", "abc"))
	step("9-legacy-bad-policy", legacy("cleanup.policy", "sometimes"))
	step("10-legacy-unknown", legacy("no.such.config", "1"))
	step("11-legacy-replace", legacy("max.message.bytes", "65536"), "max.message.bytes", "65536",
		"retention.ms", "604800000", "cleanup.policy", "delete")
	return out
}

// diffT0 is the base timestamp of the records produceFixed writes; far in the past so broker time never
// interferes with timestamp lookups.
const diffT0 = int64(1_600_000_000_000)

// produceFixed writes three batches of five records to partition 0 of topic with raw Produce requests
// (acks=-1), so both clusters hold the same batches at the same offsets. Timestamps rise by 10 ms per
// record except that the second batch holds the maximum (offset 7, diffT0+1000).
func produceFixed(t *testing.T, ctx context.Context, s *side, topic string) {
	t.Helper()
	off := 0
	for b := range 3 {
		var recs []kgo.Record
		for range 5 {
			ts := diffT0 + int64(off)*10
			if off == 7 {
				ts = diffT0 + 1000
			}
			recs = append(recs, kgo.Record{Key: fmt.Appendf(nil, "k%d", off), Value: fmt.Appendf(nil, "v%d", off),
				Timestamp: time.UnixMilli(ts)})
			off++
		}
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = -1, 30000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = topic
		pt.TopicID = topicID(t, ctx, s, topic)
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = 0, encodeBatch(recs)
		pt.Partitions = append(pt.Partitions, pp)
		r.Topics = append(r.Topics, pt)
		resp := req[*kmsg.ProduceResponse](t, ctx, s, r)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != int64(b*5) {
			t.Fatalf("%s: produce batch %d: code %d base offset %d", s.name, b, p.ErrorCode, p.BaseOffset)
		}
	}
}

// encodeBatch builds one uncompressed v2 record batch (no producer id) holding recs.
func encodeBatch(recs []kgo.Record) []byte {
	first := recs[0].Timestamp.UnixMilli()
	maxTS := first
	var body []byte
	for i, r := range recs {
		ts := r.Timestamp.UnixMilli()
		maxTS = max(maxTS, ts)
		body = appendRecord(body, kmsg.Record{TimestampDelta64: ts - first, OffsetDelta: int32(i), Key: r.Key,
			Value: r.Value})
	}
	b := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: first, MaxTimestamp: maxTS, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: body,
	}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// appendRecord appends rec with its length prefix computed from its encoding.
func appendRecord(dst []byte, rec kmsg.Record) []byte {
	rec.Length = 0
	enc := rec.AppendTo(nil)
	bodyLen := len(enc) - 1 // a zero length is one varint byte
	rec.Length = int32(bodyLen)
	return rec.AppendTo(dst)
}

// listOffsets asks partition 0 of topic for every special timestamp and for timestamps before all,
// between and after all records.
func listOffsets(t *testing.T, ctx context.Context, s *side, topic string) any {
	t.Helper()
	out := map[string]any{}
	for _, c := range []struct {
		name string
		ts   int64
	}{
		{"earliest", -2}, {"latest", -1}, {"max-timestamp", -3},
		{"before-all", diffT0 - 1000}, {"exact-first", diffT0}, {"between", diffT0 + 55},
		{"max", diffT0 + 1000}, {"after-all", diffT0 + 5000},
	} {
		r := kmsg.NewPtrListOffsetsRequest()
		r.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = 0, c.ts, -1
		lt.Partitions = append(lt.Partitions, lp)
		r.Topics = append(r.Topics, lt)
		out[c.name] = req[*kmsg.ListOffsetsResponse](t, ctx, s, r)
	}
	return out
}

// fetchView is a fetched partition with its record batches reduced to what must match: their offsets,
// record counts and timestamps.
type fetchView struct {
	ErrorCode        string
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Batches          []string
}

// fetchAt fetches partition 0 of topic at several offsets, then deletes the records below 5 and fetches
// below and at the new log start.
func fetchAt(t *testing.T, ctx context.Context, s *side, topic string) any {
	t.Helper()
	id := topicID(t, ctx, s, topic)
	one := func(offset int64) fetchView {
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID, r.MaxWaitMillis, r.MinBytes, r.MaxBytes = -1, 50, 1, 1<<20
		r.SessionEpoch = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = topic, id
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, offset, 1<<20, -1
		fp.LogStartOffset = -1
		ft.Partitions = append(ft.Partitions, fp)
		r.Topics = append(r.Topics, ft)
		resp := req[*kmsg.FetchResponse](t, ctx, s, r)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%s: fetch at %d: code %d, %d topics", s.name, offset, resp.ErrorCode, len(resp.Topics))
		}
		p := resp.Topics[0].Partitions[0]
		v := fetchView{ErrorCode: codeName(p.ErrorCode), HighWatermark: p.HighWatermark,
			LastStableOffset: p.LastStableOffset, LogStartOffset: p.LogStartOffset}
		v.Batches = batchSummary(p.RecordBatches)
		return v
	}
	out := map[string]any{}
	for _, off := range []int64{0, 7, 15, 20} {
		out[fmt.Sprintf("at-%d", off)] = one(off)
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 30000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = topic
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Partition, dp.Offset = 0, 5
	dt.Partitions = append(dt.Partitions, dp)
	dr.Topics = append(dr.Topics, dt)
	out["delete-records"] = req[*kmsg.DeleteRecordsResponse](t, ctx, s, dr)
	for _, off := range []int64{2, 5} {
		out[fmt.Sprintf("after-delete-at-%d", off)] = one(off)
	}
	return out
}

// commitAndFetch commits offsets for a simple group (generation -1, no member) and reads them back,
// with an unknown group beside it.
func commitAndFetch(t *testing.T, ctx context.Context, s *side, topic, group, unknown string) any {
	t.Helper()
	id := topicID(t, ctx, s, topic)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = group, -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic, ot.TopicID = topic, id
	for p := range int32(2) {
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Partition, op.Offset, op.Metadata = p, int64(10+p), kmsg.StringPtr(fmt.Sprintf("m%d", p))
		ot.Partitions = append(ot.Partitions, op)
	}
	oc.Topics = append(oc.Topics, ot)
	commit := req[*kmsg.OffsetCommitResponse](t, ctx, s, oc)

	of := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range []string{group, unknown} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.TopicID, gt.Partitions = topic, id, []int32{0, 1, 2}
		rg.Topics = append(rg.Topics, gt)
		of.Groups = append(of.Groups, rg)
	}
	all := kmsg.NewPtrOffsetFetchRequest()
	ag := kmsg.NewOffsetFetchRequestGroup()
	ag.Group = group // Topics nil: every committed offset of the group
	all.Groups = append(all.Groups, ag)
	return map[string]any{
		"commit":    commit,
		"fetch":     req[*kmsg.OffsetFetchResponse](t, ctx, s, of),
		"fetch-all": req[*kmsg.OffsetFetchResponse](t, ctx, s, all),
	}
}

// describeGroups joins a kgo consumer to active, waits until it holds its partitions, and describes and
// lists the simple group, the active one and an unknown one.
func describeGroups(t *testing.T, ctx context.Context, s *side, topic, simple, active, unknown string) any {
	t.Helper()
	assigned := make(chan struct{}, 1)
	member := newClient(t, s.c, kgo.ConsumerGroup(active), kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	pollCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // the member must keep polling to stay in the group; stopped below
		defer close(done)
		for pollCtx.Err() == nil {
			member.PollFetches(pollCtx)
		}
	}()
	defer func() { stop(); <-done; member.Close() }()
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatalf("%s: consumer never joined %s", s.name, active)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{simple, active, unknown}
	desc := req[*kmsg.DescribeGroupsResponse](t, ctx, s, dg)
	for i := range desc.Groups { // member assignment bytes embed per-cluster generations in user data
		for j := range desc.Groups[i].Members {
			m := &desc.Groups[i].Members[j]
			m.ProtocolMetadata, m.MemberAssignment = nil, nil
		}
	}
	lg := kmsg.NewPtrListGroupsRequest()
	list := req[*kmsg.ListGroupsResponse](t, ctx, s, lg)
	var ours []kmsg.ListGroupsResponseGroup // the pool is shared: other tests' groups are not compared
	for _, g := range list.Groups {
		if g.Group == simple || g.Group == active || g.Group == unknown {
			ours = append(ours, g)
		}
	}
	list.Groups = ours
	return map[string]any{"describe": desc, "list": list}
}

// errorCodes sends requests that fail in well-defined ways: produce to an unknown topic or partition,
// with invalid acks or a corrupt batch; list offsets of a missing partition; delete records past the
// high watermark; describe configs of an unknown topic or name; commit for a group with a made-up member.
func errorCodes(t *testing.T, ctx context.Context, s *side, topic, group, base string) any {
	t.Helper()
	topic0 := topic
	good := encodeBatch([]kgo.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(diffT0)}})
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff // last value byte: the CRC no longer matches
	id := topicID(t, ctx, s, topic)
	produce := func(topic string, partition int32, acks int16, batch []byte) any {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = acks, 30000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = topic // v13+ sends the id instead: zero (unknown) for any other topic
		if topic == topic0 {
			pt.TopicID = id
		}
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = partition, batch
		pt.Partitions = append(pt.Partitions, pp)
		r.Topics = append(r.Topics, pt)
		resp, err := s.cl.Broker(1).Request(ctx, r)
		if err != nil {
			return "request error: " + err.Error()
		}
		// Only the codes and offsets matter: Kafka fills LogAppendTime/LogStartOffset per error case.
		out := map[string]any{}
		for _, rt := range resp.(*kmsg.ProduceResponse).Topics {
			for _, p := range rt.Partitions {
				out[fmt.Sprint(p.Partition)] = map[string]any{"ErrorCode": codeName(p.ErrorCode),
					"BaseOffset": p.BaseOffset, "ErrorRecords": len(p.ErrorRecords)}
			}
		}
		return out
	}
	out := map[string]any{
		"produce-ok":                produce(topic, 0, -1, good),
		"produce-unknown-topic-id":  produce(base+"-nosuch", 0, -1, good),
		"produce-unknown-partition": produce(topic, 5, -1, good),
		"produce-acks-2":            produce(topic, 0, 2, good),
		"produce-corrupt":           produce(topic, 0, -1, corrupt),
	}

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	for _, tp := range []struct {
		topic string
		part  int32
	}{{topic, 7}, {base + "-nosuch", 0}} {
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = tp.topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = tp.part, -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
	}
	out["list-offsets-missing"] = direct[*kmsg.ListOffsetsResponse](t, ctx, s, lo)

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 30000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = topic
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Partition, dp.Offset = 0, 1000
	dt.Partitions = append(dt.Partitions, dp)
	dr.Topics = append(dr.Topics, dt)
	out["delete-records-past-hw"] = direct[*kmsg.DeleteRecordsResponse](t, ctx, s, dr)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, c := range []struct {
		name  string
		names []string
	}{{base + "-nosuch", nil}, {topic, []string{"no.such.config", "retention.bytes"}}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, c.name, c.names
		dc.Resources = append(dc.Resources, rr)
	}
	out["describe-configs-unknown"] = req[*kmsg.DescribeConfigsResponse](t, ctx, s, dc)

	// The simple group exists (offsets committed, no members): a member id it never issued.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation, oc.MemberID = group, 3, "no-such-member"
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic, ot.TopicID = topic, topicID(t, ctx, s, topic)
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 0, 1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	out["commit-unknown-member"] = direct[*kmsg.OffsetCommitResponse](t, ctx, s, oc)
	return out
}

// oldVersions repeats a few requests at older versions still served by Kafka 4.x (their oldest where
// fields changed meaning), each through a client capped at that version: topic names instead of ids,
// per-partition v1 offsets, DescribeConfigs without is_default's successor, single-group OffsetFetch.
// A version one side refuses shows up as the client's error text.
func oldVersions(t *testing.T, ctx context.Context, s *side, topic, group, base string) any {
	t.Helper()
	send := func(r kmsg.Request, version int16) any {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(r.Key(), version)
		cl := newClient(t, s.c, kgo.MaxVersions(vs))
		defer cl.Close()
		resp, err := cl.Broker(1).Request(ctx, r)
		if err != nil {
			return "request error: " + err.Error()
		}
		return resp
	}
	metadata := func() kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		r.Topics = append(r.Topics, mt)
		return r
	}
	listOffsets := func(ts int64) func() kmsg.Request {
		return func() kmsg.Request {
			r := kmsg.NewPtrListOffsetsRequest()
			r.ReplicaID = -1
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = topic
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = 0, ts
			lt.Partitions = append(lt.Partitions, lp)
			r.Topics = append(r.Topics, lt)
			return r
		}
	}
	fetch := func(offset int64) func() kmsg.Request {
		return func() kmsg.Request {
			r := kmsg.NewPtrFetchRequest()
			r.ReplicaID, r.MaxWaitMillis, r.MinBytes, r.MaxBytes = -1, 50, 1, 1<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = topic
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, offset, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
			r.Topics = append(r.Topics, ft)
			return r
		}
	}
	offsetFetch := func() kmsg.Request {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = group
		ot := kmsg.NewOffsetFetchRequestTopic()
		ot.Topic, ot.Partitions = topic, []int32{0}
		r.Topics = append(r.Topics, ot)
		return r
	}
	findCoordinator := func() kmsg.Request {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.CoordinatorKey = group
		return r
	}
	describeConfigs := func() kmsg.Request {
		r := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		rr.ConfigNames = []string{"retention.ms", "cleanup.policy", "min.insync.replicas"}
		r.Resources = append(r.Resources, rr)
		return r
	}
	createTopics := func() kmsg.Request {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis = 30000
		for _, c := range []struct {
			name string
			np   int32
			rf   int16
		}{{topic, 1, 1}, {base + "-old-p0", 0, 1}, {"bad/name", 1, 1}} {
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic, ct.NumPartitions, ct.ReplicationFactor = c.name, c.np, c.rf
			r.Topics = append(r.Topics, ct)
		}
		return r
	}
	deleteTopics := func() kmsg.Request {
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TimeoutMillis, r.TopicNames = 30000, []string{base + "-nosuch"}
		return r
	}
	describeGroups := func() kmsg.Request {
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Groups = []string{group, base + "-nogroup"}
		return r
	}
	out := map[string]any{}
	for _, c := range []struct {
		name     string
		build    func() kmsg.Request
		versions []int16
	}{
		{"metadata", metadata, []int16{0, 1, 4, 9}},
		{"list-offsets-latest", listOffsets(-1), []int16{1, 4}},
		{"list-offsets-ts", listOffsets(diffT0), []int16{1, 4}},
		{"fetch-0", fetch(0), []int16{4, 11}},
		{"fetch-past-end", fetch(100), []int16{4, 11}},
		{"offset-fetch", offsetFetch, []int16{1, 7}},
		{"find-coordinator", findCoordinator, []int16{0, 3}},
		{"describe-configs", describeConfigs, []int16{1, 2}},
		{"create-topics", createTopics, []int16{2, 4}},
		{"delete-topics", deleteTopics, []int16{1, 5}},
		{"describe-groups", describeGroups, []int16{0, 4}},
	} {
		for _, v := range c.versions {
			out[fmt.Sprintf("%s-v%d", c.name, v)] = send(c.build(), v)
		}
	}
	return out
}

// groupErrors sends group requests that fail in well-defined ways, then deletes offsets and groups:
// a join without a member id (v4+: MEMBER_ID_REQUIRED), with a session timeout out of range or no
// protocols; heartbeat, sync and leave for members the group never had; OffsetDelete and DeleteGroups
// of the simple group (no members) and of an unknown group.
func groupErrors(t *testing.T, ctx context.Context, s *side, topic, group, base string) any {
	t.Helper()
	unknown := base + "-nogroup"
	join := func(g string, session int32, protocols bool) any {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = g, session, 10000, "consumer"
		if protocols {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
			r.Protocols = append(r.Protocols, p)
		}
		resp := req[*kmsg.JoinGroupResponse](t, ctx, s, r)
		return map[string]any{"ErrorCode": codeName(resp.ErrorCode), "Generation": resp.Generation,
			"Protocol": resp.Protocol, "ProtocolType": resp.ProtocolType, "Members": len(resp.Members),
			"HasMemberID": resp.MemberID != ""}
	}
	out := map[string]any{
		"join-no-member-id": join(base+"-j1", 10000, true),
		"join-session-tiny": join(base+"-j2", 1, true),
		"join-session-huge": join(base+"-j3", 1<<30, true),
		"join-no-protocols": join(base+"-j4", 10000, false),
		"join-simple-group": join(group, 10000, true),
	}
	for which, g := range map[string]string{"simple": group, "unknown": unknown} {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.Generation, hb.MemberID = g, 1, "no-such-member"
		out["heartbeat-"+which] = req[*kmsg.HeartbeatResponse](t, ctx, s, hb)
		sg := kmsg.NewPtrSyncGroupRequest()
		sg.Group, sg.Generation, sg.MemberID = g, 1, "no-such-member"
		sg.ProtocolType, sg.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		out["sync-"+which] = req[*kmsg.SyncGroupResponse](t, ctx, s, sg)
		lg := kmsg.NewPtrLeaveGroupRequest()
		lg.Group, lg.MemberID = g, "no-such-member"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "no-such-member"
		lg.Members = append(lg.Members, m)
		out["leave-"+which] = req[*kmsg.LeaveGroupResponse](t, ctx, s, lg)
		od := kmsg.NewPtrOffsetDeleteRequest()
		od.Group = g
		ot := kmsg.NewOffsetDeleteRequestTopic()
		ot.Topic = topic
		op := kmsg.NewOffsetDeleteRequestTopicPartition()
		op.Partition = 0
		ot.Partitions = append(ot.Partitions, op)
		od.Topics = append(od.Topics, ot)
		out["offset-delete-"+which] = req[*kmsg.OffsetDeleteResponse](t, ctx, s, od)
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{group, unknown}
	out["delete-groups"] = req[*kmsg.DeleteGroupsResponse](t, ctx, s, dg)
	return out
}

// txnErrors drives the transaction coordinator into its error answers: requests for a transactional id
// that was never initialised, with a stale epoch, and an EndTxn with nothing in the transaction.
func txnErrors(t *testing.T, ctx context.Context, s *side, topic, base string) any {
	t.Helper()
	txnID := base + "-txe"
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr(txnID), 60000
	init := req[*kmsg.InitProducerIDResponse](t, ctx, s, ip)
	pid, epoch := init.ProducerID, init.ProducerEpoch
	// Kafka writes an ended transaction's completion asynchronously and answers CONCURRENT_TRANSACTIONS
	// meanwhile; clients retry that, and so does this scenario (bounded), to compare settled answers.
	settle := func(send func() (any, int16)) any {
		for range 50 {
			resp, code := send()
			if code != kerr.ConcurrentTransactions.Code {
				return resp
			}
			time.Sleep(50 * time.Millisecond)
		}
		resp, _ := send()
		return resp
	}
	endTxn := func(id string, pid int64, epoch int16, commit bool) any {
		return settle(func() (any, int16) {
			r := kmsg.NewPtrEndTxnRequest()
			r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = id, pid, epoch, commit
			resp := req[*kmsg.EndTxnResponse](t, ctx, s, r)
			return resp, resp.ErrorCode
		})
	}
	addPartitions := func(id string, pid int64, epoch int16) any {
		return settle(func() (any, int16) {
			r := kmsg.NewPtrAddPartitionsToTxnRequest()
			r.TransactionalID, r.ProducerID, r.ProducerEpoch = id, pid, epoch
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			r.Topics = append(r.Topics, rt)
			resp := req[*kmsg.AddPartitionsToTxnResponse](t, ctx, s, r)
			code := resp.ErrorCode
			for _, rt := range resp.Topics {
				for _, p := range rt.Partitions {
					if p.ErrorCode != 0 {
						code = p.ErrorCode
					}
				}
			}
			return resp, code
		})
	}
	addOffsets := func(id string, pid int64, epoch int16) any {
		r := kmsg.NewPtrAddOffsetsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = id, pid, epoch, base+"-txg"
		return req[*kmsg.AddOffsetsToTxnResponse](t, ctx, s, r)
	}
	return map[string]any{
		"1-end-uninitialised":       endTxn(base+"-txnone", 12345, 0, true),
		"2-add-uninitialised":       addPartitions(base+"-txnone", 12345, 0),
		"3-add-offsets-uninit":      addOffsets(base+"-txnone", 12345, 0),
		"4-end-empty-commit":        endTxn(txnID, pid, epoch, true),
		"5-end-empty-abort":         endTxn(txnID, pid, epoch, false),
		"6-add-wrong-epoch":         addPartitions(txnID, pid, epoch+5),
		"7-add-wrong-pid":           addPartitions(txnID, pid+777, epoch),
		"8-end-wrong-epoch":         endTxn(txnID, pid, epoch+5, true),
		"9-add-ok":                  addPartitions(txnID, pid, epoch),
		"10-add-offsets-ok":         addOffsets(txnID, pid, epoch),
		"11-end-abort-ok":           endTxn(txnID, pid, epoch, false),
		"12-end-commit-after-abort": endTxn(txnID, pid, epoch, true),
	}
}

// batchSummary describes each record batch in raw by what two clusters must agree on: offsets, record
// count, transactional and control flags, and the timestamps of data batches (a control batch carries
// the broker's clock).
func batchSummary(raw []byte) []string {
	var out []string
	for len(raw) >= 61 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			return append(out, "undecodable: "+err.Error())
		}
		desc := fmt.Sprintf("base %d last-delta %d n %d", b.FirstOffset, b.LastOffsetDelta, b.NumRecords)
		if b.Attributes&0x10 != 0 {
			desc += " transactional"
		}
		if b.Attributes&0x20 != 0 {
			desc += " control"
		} else {
			desc += fmt.Sprintf(" ts %d..%d", b.FirstTimestamp, b.MaxTimestamp)
		}
		out = append(out, desc)
		raw = raw[12+int(b.Length):]
	}
	return out
}

// txnFetch writes, with a transactional kgo producer, one aborted, one committed and one open
// transaction of one record each to topic, then compares what read_uncommitted and read_committed
// fetches and ListOffsets see: high watermark, last stable offset, aborted transactions, batches.
// The open transaction is aborted before returning.
func txnFetch(t *testing.T, ctx context.Context, s *side, topic, base string) any {
	t.Helper()
	prod := newClient(t, s.c, kgo.TransactionalID(base+"-txf"), kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	one := func(i int, end kgo.TransactionEndTry) {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("%s: begin: %v", s.name, err)
		}
		r := &kgo.Record{Value: fmt.Appendf(nil, "v%d", i), Timestamp: time.UnixMilli(diffT0 + int64(i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("%s: transactional produce: %v", s.name, err)
		}
		if i < 2 {
			if err := prod.EndTransaction(ctx, end); err != nil {
				t.Fatalf("%s: end transaction %d: %v", s.name, i, err)
			}
		}
	}
	one(0, kgo.TryAbort)
	one(1, kgo.TryCommit)
	one(2, kgo.TryAbort) // left open until the reads are done
	defer func() {
		if err := prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
			t.Errorf("%s: abort the open transaction: %v", s.name, err)
		}
	}()
	id := topicID(t, ctx, s, topic)
	var fetchFrom func(isolation int8, offset int64) map[string]any
	// Kafka may answer a fetch with fewer batches than it could (here: only the first, while the
	// high watermark's file position is not known after an asynchronous marker write); clients fetch
	// again from the next offset. So the whole readable range is collected, one fetch after another.
	fetchAll := func(isolation int8) any {
		var first map[string]any
		var batches []string
		aborted := map[int64]bool{}
		offset := int64(0)
		for range 20 {
			got := fetchFrom(isolation, offset)
			if first == nil {
				first = got
			}
			p := got["partition"].(kmsg.FetchResponseTopicPartition)
			for _, a := range p.AbortedTransactions {
				aborted[a.FirstOffset] = true
			}
			bs := got["batches"].([]string)
			if len(bs) == 0 {
				break
			}
			batches = append(batches, bs...)
			offset = got["next"].(int64)
		}
		first["batches"], first["aborted-first-offsets"] = batches, slices.Sorted(maps.Keys(aborted))
		delete(first, "next")
		p := first["partition"].(kmsg.FetchResponseTopicPartition)
		p.AbortedTransactions = nil
		first["partition"] = p
		return first
	}
	fetchFrom = func(isolation int8, offset int64) map[string]any {
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID, r.MaxWaitMillis, r.MinBytes, r.MaxBytes, r.IsolationLevel = -1, 50, 1, 1<<20, isolation
		r.SessionEpoch = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = topic, id
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 0, 1<<20, -1, -1
		fp.FetchOffset = offset
		ft.Partitions = append(ft.Partitions, fp)
		r.Topics = append(r.Topics, ft)
		resp := req[*kmsg.FetchResponse](t, ctx, s, r)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%s: fetch: %d topics", s.name, len(resp.Topics))
		}
		p := resp.Topics[0].Partitions[0]
		batches := batchSummary(p.RecordBatches)
		next := offset
		for raw := p.RecordBatches; len(raw) >= 61; {
			var b kmsg.RecordBatch
			if b.ReadFrom(raw) != nil {
				break
			}
			next = b.FirstOffset + int64(b.LastOffsetDelta) + 1
			raw = raw[12+int(b.Length):]
		}
		p.RecordBatches = nil
		return map[string]any{"partition": p, "batches": batches, "next": next}
	}
	listLatest := func(isolation int8) any {
		r := kmsg.NewPtrListOffsetsRequest()
		r.ReplicaID, r.IsolationLevel = -1, isolation
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = 0, -1, -1
		lt.Partitions = append(lt.Partitions, lp)
		r.Topics = append(r.Topics, lt)
		return req[*kmsg.ListOffsetsResponse](t, ctx, s, r)
	}
	return map[string]any{
		"fetch-uncommitted":  fetchAll(0),
		"fetch-committed":    fetchAll(1),
		"latest-uncommitted": listLatest(0),
		"latest-committed":   listLatest(1),
	}
}
