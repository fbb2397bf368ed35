package broker

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func TestCreateTopicsValidation(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	cl := newClient(t, b)
	ctx := testCtx(t)
	createTopic(t, kadm.NewClient(cl), "exists", 1, nil)
	createTopic(t, kadm.NewClient(cl), "a.b", 1, nil)
	str := func(s string) *string { return &s }
	tests := []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]*string
		want    *kerr.Error
	}{
		{"ok", "fresh", 2, 1, nil, nil},
		{"defaults", "fresh-defaults", -1, -1, nil, nil},
		{"exists", "exists", 1, 1, nil, kerr.TopicAlreadyExists},
		{"empty name", "", 1, 1, nil, kerr.InvalidTopicException},
		{"dot", ".", 1, 1, nil, kerr.InvalidTopicException},
		{"illegal char", "a/b", 1, 1, nil, kerr.InvalidTopicException},
		{"too long", strings.Repeat("x", 250), 1, 1, nil, kerr.InvalidTopicException},
		{"max length", strings.Repeat("y", 249), 1, 1, nil, nil},
		{"collides", "a_b", 1, 1, nil, kerr.InvalidTopicException},
		{"zero partitions", "zp", 0, 1, nil, kerr.InvalidPartitions},
		{"rf too big", "rf", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"rf zero", "rf0", 1, 0, nil, kerr.InvalidReplicationFactor},
		{"unknown config", "uc", 1, 1, map[string]*string{"no.such.config": str("1")}, kerr.InvalidConfig},
		{"bad config value", "bc", 1, 1, map[string]*string{"retention.ms": str("soon")}, kerr.InvalidConfig},
		{"bad enum", "be", 1, 1, map[string]*string{"cleanup.policy": str("shred")}, kerr.InvalidConfig},
		{"good configs", "gc", 1, 1, map[string]*string{"cleanup.policy": str("compact,delete"), "max.message.bytes": str("2000")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tt.topic, tt.parts, tt.rf
			for k, v := range tt.configs {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				c.Name, c.Value = k, v
				rt.Configs = append(rt.Configs, c)
			}
			req.Topics = append(req.Topics, rt)
			req.TimeoutMillis = 5000
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			got := kerr.ErrorForCode(resp.Topics[0].ErrorCode)
			if tt.want == nil && got != nil || tt.want != nil && !errors.Is(got, tt.want) {
				t.Fatalf("error %v, want %v", got, tt.want)
			}
			if tt.want == nil && resp.Topics[0].TopicID == [16]byte{} {
				t.Fatal("created topic has no topic id")
			}
		})
	}
	// validate_only creates nothing; duplicates in one request are rejected.
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = true
	for _, n := range []string{"vo", "dup", "dup"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, 1, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("validate-only/duplicate codes: %d %d %d", resp.Topics[0].ErrorCode, resp.Topics[1].ErrorCode, resp.Topics[2].ErrorCode)
	}
	if _, ok := b.node.State().Topics["vo"]; ok {
		t.Fatal("validate_only created the topic")
	}
}

func TestDeleteTopicsAndPartitions(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	createTopic(t, adm, "del-name", 2, nil)
	createTopic(t, adm, "del-id", 1, nil)
	createTopic(t, adm, "grow", 1, nil)
	prod := newClient(t, b, kgo.DefaultProduceTopic("del-name"))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dir := b.parts.get("del-name", 0).log.Dir()
	if _, err := adm.DeleteTopics(ctx, "del-name"); err != nil {
		t.Fatal(err)
	}
	if b.parts.get("del-name", 0) != nil {
		t.Fatal("partition still open after delete")
	}
	if _, err := statDir(dir); err == nil {
		t.Fatalf("partition dir %s still exists", dir)
	}
	id := b.node.State().Topics["del-id"].ID
	dreq := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = id
	dreq.Topics = append(dreq.Topics, dt)
	dresp, err := dreq.RequestWith(ctx, newClient(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if dresp.Topics[0].ErrorCode != 0 || dresp.Topics[0].Topic == nil || *dresp.Topics[0].Topic != "del-id" {
		t.Fatalf("delete by id: %+v", dresp.Topics[0])
	}
	dresp, _ = dreq.RequestWith(ctx, newClient(t, b))
	if dresp.Topics[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("delete unknown id: code %d", dresp.Topics[0].ErrorCode)
	}
	if _, ok := b.node.State().Topics["del-id"]; ok {
		t.Fatal("topic deleted by id still exists")
	}
	dr, _ := adm.DeleteTopics(ctx, "never-was")
	if r := dr["never-was"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete unknown: %v", r.Err)
	}
	cr, err := adm.CreatePartitions(ctx, 2, "grow")
	if err != nil || cr["grow"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, cr["grow"].Err)
	}
	if b.parts.get("grow", 2) == nil {
		t.Fatal("new partition not opened")
	}
	cr, _ = adm.UpdatePartitions(ctx, 2, "grow")
	if !errors.Is(cr["grow"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", cr["grow"].Err)
	}
	// Recreating a deleted topic gives a new id and an empty log.
	createTopic(t, adm, "del-name", 1, nil)
	if p := b.parts.get("del-name", 0); p == nil || p.log.EndOffset() != 0 {
		t.Fatal("recreated topic does not start empty")
	}
}

func TestConfigsAlterAndDescribe(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	createTopic(t, adm, "cfg", 1, nil)
	v := "3600000"
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &v}, {Name: "cleanup.policy", Op: kadm.AppendConfig, Value: kmsg.StringPtr("compact")}}, "cfg")
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, resp)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	got, err := rc.On("cfg", nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]kadm.Config{}
	for _, c := range got.Configs {
		vals[c.Key] = c
	}
	if c := vals["retention.ms"]; c.MaybeValue() != v || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %q source %v", c.MaybeValue(), c.Source)
	}
	if c := vals["cleanup.policy"]; c.MaybeValue() != "delete,compact" {
		t.Fatalf("cleanup.policy = %q", c.MaybeValue())
	}
	if c := vals["segment.bytes"]; c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes = %q source %v", c.MaybeValue(), c.Source)
	}
	// Applied live to the partition.
	if pc := b.parts.get("cfg", 0).cfg.Load(); pc.store.RetentionMS != time.Hour || !pc.store.Compact {
		t.Fatalf("live config not applied: %+v", pc.store)
	}
	// Invalid values are rejected and change nothing.
	bad := "-5"
	resp, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &bad}}, "cfg")
	if !errors.Is(resp[0].Err, kerr.InvalidConfig) {
		t.Fatalf("invalid retention.ms: %v", resp[0].Err)
	}
	// A broker-level default reaches topics without an override.
	mb := "2000000"
	bresp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "message.max.bytes", Value: &mb}}, b.cfg.NodeID)
	if err != nil || bresp[0].Err != nil {
		t.Fatalf("alter broker: %v %+v", err, bresp)
	}
	if pc := b.parts.get("cfg", 0).cfg.Load(); pc.maxMessageBytes != 2000000 {
		t.Fatalf("max.message.bytes from broker config = %d", pc.maxMessageBytes)
	}
	rc, err = adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = rc.On("cfg", nil)
	for _, c := range got.Configs {
		if c.Key == "max.message.bytes" && (c.MaybeValue() != mb || c.Source != kmsg.ConfigSourceDynamicBrokerConfig) {
			t.Fatalf("max.message.bytes = %q source %v", c.MaybeValue(), c.Source)
		}
	}
	bc, err := adm.DescribeBrokerConfigs(ctx, b.cfg.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if len(bc) != 1 || bc[0].Err != nil || len(bc[0].Configs) == 0 {
		t.Fatalf("describe broker configs: %+v", bc)
	}
	// Non-dynamic broker configs are refused.
	bresp, _ = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: &mb}}, b.cfg.NodeID)
	if !errors.Is(bresp[0].Err, kerr.InvalidConfig) {
		t.Fatalf("num.partitions dynamic: %v", bresp[0].Err)
	}
}

func TestDeleteRecordsAndListOffsets(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	createTopic(t, adm, "dr", 1, nil)
	prod := newClient(t, b, kgo.DefaultProduceTopic("dr"), kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: time.UnixMilli(base + int64(i)*1000)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// By timestamp, refined to the record.
	lo, err := adm.ListOffsetsAfterMilli(ctx, base+4500, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("dr", 0); o.Offset != 5 || o.Timestamp != base+5000 {
		t.Fatalf("offset after %d: %+v", base+4500, o)
	}
	lo, _ = adm.ListOffsetsAfterMilli(ctx, base+100_000, "dr")
	if o, _ := lo.Lookup("dr", 0); o.Offset != 10 {
		t.Fatalf("offset after the last timestamp: %+v (want end offset 10 from kadm)", o)
	}
	lo, _ = adm.ListMaxTimestampOffsets(ctx, "dr")
	if o, _ := lo.Lookup("dr", 0); o.Offset != 9 || o.Timestamp != base+9000 {
		t.Fatalf("max timestamp offset: %+v", o)
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {Topic: "dr", Partition: 0, At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("dr", 0); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", r)
	}
	lo, _ = adm.ListStartOffsets(ctx, "dr")
	if o, _ := lo.Lookup("dr", 0); o.Offset != 4 {
		t.Fatalf("start offset after delete records: %+v", o)
	}
	dr, _ = adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {Topic: "dr", Partition: 0, At: 99}}})
	if r, _ := dr.Lookup("dr", 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond hw: %+v", r)
	}
	// Reading below the new start is out of range; consumers reset to it.
	got := consumeN(t, b, "dr", 6)
	if got[0].Offset != 4 {
		t.Fatalf("first consumed offset %d, want 4", got[0].Offset)
	}
	ep, err := adm.OffsetForLeaderEpoch(ctx, kadm.OffsetForLeaderEpochRequest{"dr": {0: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if e := ep["dr"][0]; e.Err != nil || e.EndOffset != 10 {
		t.Fatalf("offset for epoch 0: %+v", e)
	}
	ld, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dirs := range ld {
		if p, ok := dirs.LookupPartition("dr", 0); ok && p.Size > 0 {
			found = true
		}
	}
	if !found {
		t.Fatal("describe log dirs lacks partition dr/0")
	}
}

func TestMetadataAndCluster(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	cl := newClient(t, b)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	// Auto-creation through metadata (kafka-python style v1 request).
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].TopicID == [16]byte{} {
		t.Fatalf("auto-created topic metadata: %+v", resp.Topics)
	}
	if resp.ControllerID != b.cfg.NodeID || resp.ClusterID == nil || *resp.ClusterID == "" {
		t.Fatalf("controller %d cluster %v", resp.ControllerID, resp.ClusterID)
	}
	req.AllowAutoTopicCreation = false
	req.Topics[0].Topic = kmsg.StringPtr("not-auto")
	resp, _ = req.RequestWith(ctx, cl)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create: code %d", resp.Topics[0].ErrorCode)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dc.ErrorCode != 0 || dc.ControllerID != b.cfg.NodeID || len(dc.Brokers) != 1 || dc.Brokers[0].Host != "127.0.0.1" || dc.ClusterID != *resp.ClusterID {
		t.Fatalf("describe cluster: %+v", dc)
	}
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.ResponsePartitionLimit = 1
	createTopic(t, adm, "paged", 3, nil)
	var pages int
	for {
		r, err := dtp.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if r.NextCursor == nil || pages > 10 {
			break
		}
		dtp.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: r.NextCursor.Topic, Partition: r.NextCursor.Partition}
	}
	if pages != 4 { // auto/0, paged/0, paged/1, paged/2
		t.Fatalf("describe topic partitions pages = %d, want 4", pages)
	}
}

func TestRetentionRuns(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) {
		c.RetentionCheckInterval = 20 * time.Millisecond
		c.CheckpointInterval = 20 * time.Millisecond
	})
	adm := newAdmin(t, b)
	segBytes, retBytes := "1048576", "1"
	createTopic(t, adm, "ret", 1, map[string]*string{"segment.bytes": &segBytes, "retention.bytes": &retBytes})
	prod := newClient(t, b, kgo.DefaultProduceTopic("ret"), kgo.ProducerBatchMaxBytes(900_000))
	big := make([]byte, 600_000)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big) // incompressible
	for i := 0; i < 4; i++ {
		if err := prod.ProduceSync(testCtx(t), &kgo.Record{Value: big}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := b.parts.get("ret", 0)
	ctx := testCtx(t)
	for p.log.LogStartOffset() == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("retention never advanced the log start (segments %d)", p.log.NumSegments())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A topic deleted and recreated under the same name within one reconcile
// must end up with a fresh, open log (the directory name is reused).
func TestRecreateTopicInOneReconcile(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	createTopic(t, adm, "re", 1, nil)
	prod := newClient(t, b, kgo.DefaultProduceTopic("re"))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("old")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	old := b.node.State().Topics["re"]
	b.parts.reconcileMu.Lock()
	_, err1 := b.node.Apply(ctx, raft.DeleteTopic{ID: old.ID})
	fresh := *old
	fresh.ID = raft.NewTopicID()
	_, err2 := b.node.Apply(ctx, raft.CreateTopic{Topic: fresh})
	b.parts.reconcileMu.Unlock()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	b.parts.reconcile()
	p := b.parts.get("re", 0)
	if p == nil || p.topicID != fresh.ID || p.log.EndOffset() != 0 {
		t.Fatalf("recreated partition: %+v", p)
	}
	if _, err := os.Stat(p.log.Dir()); err != nil {
		t.Fatalf("recreated partition dir: %v", err)
	}
	// A new client: the old one caches the old topic ID.
	prod = newClient(t, b, kgo.DefaultProduceTopic("re"))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if p.log.EndOffset() != 1 {
		t.Fatalf("end offset %d after producing to the recreated topic", p.log.EndOffset())
	}
}

func TestFindCoordinatorNotAvailable(t *testing.T) {
	b := startTestBroker(t, nil)
	cl := newClient(t, b)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = []string{"g1", "g2"}
	req.CoordinatorType = 2 // share groups: no coordinator (groups and transactions have one)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	// kgo shards a multi-key FindCoordinator and may merge the answers in
	// another order (seen: g2 before g1 under -race), so keys are looked up
	// by name.
	keys := map[string]int16{}
	for _, c := range resp.Coordinators {
		keys[c.Key] = c.ErrorCode
	}
	if len(resp.Coordinators) != 2 || keys["g1"] != kerr.CoordinatorNotAvailable.Code || keys["g2"] != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("find coordinator: %+v", resp)
	}
}

// TestBootstrapClusterConfigs: a new cluster starts, as a freshly formatted
// Kafka 4.x one does, with min.insync.replicas as a cluster-wide dynamic
// default, so topics report that source with the table default as synonym;
// a restart does not write it again (a deleted entry stays deleted).
func TestBootstrapClusterConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startTestBroker(t, func(c *Config) { c.DataDir = dir })
	adm := newAdmin(t, b)
	createTopic(t, adm, "boot", 1, nil)
	describe := func(cl *kgo.Client, typ kmsg.ConfigResourceType, name string) []kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		r := kmsg.NewPtrDescribeConfigsRequest()
		r.IncludeSynonyms = true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, name
		if typ == kmsg.ConfigResourceTypeTopic {
			rr.ConfigNames = []string{"min.insync.replicas"}
		}
		r.Resources = append(r.Resources, rr)
		resp, err := r.RequestWith(testCtx(t), cl)
		if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe %v %q: %v %+v", typ, name, err, resp)
		}
		return resp.Resources[0].Configs
	}
	cl := newClient(t, b)
	cluster := describe(cl, kmsg.ConfigResourceTypeBroker, "")
	if len(cluster) != 1 || cluster[0].Name != "min.insync.replicas" || cluster[0].Value == nil ||
		*cluster[0].Value != "1" || cluster[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("cluster default configs: %+v", cluster)
	}
	topic := describe(cl, kmsg.ConfigResourceTypeTopic, "boot")
	if len(topic) != 1 || topic[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig ||
		len(topic[0].ConfigSynonyms) != 2 || topic[0].ConfigSynonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("topic min.insync.replicas: %+v", topic)
	}

	// Delete the entry, restart on the same data: it must not come back.
	ar := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeBroker
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op = "min.insync.replicas", kmsg.IncrementalAlterConfigOpDelete
	res.Configs = append(res.Configs, c)
	ar.Resources = append(ar.Resources, res)
	if resp, err := ar.RequestWith(testCtx(t), cl); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("delete cluster min.insync.replicas: %v %+v", err, resp)
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startTestBroker(t, func(c *Config) { c.DataDir = dir })
	if got := describe(newClient(t, b2), kmsg.ConfigResourceTypeBroker, ""); len(got) != 0 {
		t.Fatalf("after restart the cluster default configs are %+v, want none", got)
	}
}
