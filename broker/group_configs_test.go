package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterGroup sets (or, with a nil value, deletes) group configs of group with IncrementalAlterConfigs
// and returns the resource's error.
func alterGroup(t *testing.T, b *Broker, group string, configs map[string]*string) error {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for name, v := range configs {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value, c.Op = name, v, kmsg.IncrementalAlterConfigOpSet
		if v == nil {
			c.Op = kmsg.IncrementalAlterConfigOpDelete
		}
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), newClient(t, b))
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Resources[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		return errors.Join(err, errors.New(msg))
	}
	return nil
}

func describeGroupConfigs(t *testing.T, b *Broker, group string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), newClient(t, b))
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("describe group %s: %v %+v", group, err, resp)
	}
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

func TestGroupConfigsAlterAndDescribe(t *testing.T) {
	b := startTestBroker(t, nil)
	v := func(s string) *string { return &s }
	// Every config of Kafka 4.3 is listed with its default, for a group that does not exist.
	d := describeGroupConfigs(t, b, "g1")
	if len(d) != len(groupConfigDefs) || *d["consumer.session.timeout.ms"].Value != "45000" ||
		d["consumer.session.timeout.ms"].Source != kmsg.ConfigSourceDefaultConfig ||
		d["consumer.session.timeout.ms"].ConfigSynonyms[0].Name != "group.consumer.session.timeout.ms" ||
		*d["share.auto.offset.reset"].Value != "latest" {
		t.Fatalf("defaults: %d configs, %+v", len(d), d["consumer.session.timeout.ms"])
	}
	if err := alterGroup(t, b, "g1", map[string]*string{"consumer.session.timeout.ms": v("50000"), "consumer.heartbeat.interval.ms": v("6000")}); err != nil {
		t.Fatal(err)
	}
	d = describeGroupConfigs(t, b, "g1")
	st := d["consumer.session.timeout.ms"]
	if *st.Value != "50000" || st.Source != kmsg.ConfigSourceGroupConfig || len(st.ConfigSynonyms) != 2 ||
		st.ConfigSynonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("override: %+v", st)
	}
	if session, hb := b.consumerConfigFor(b.node.State(), "g1"); session != 50*time.Second || hb != 6*time.Second {
		t.Fatalf("coordinator settings %v %v", session, hb)
	}
	if session, _ := b.consumerConfigFor(b.node.State(), "other"); session != b.cfg.ConsumerGroupSessionTimeout {
		t.Fatalf("a group without configs gets %v", session)
	}

	tests := []struct {
		name    string
		configs map[string]*string
		want    string
	}{
		{"unknown name", map[string]*string{"foo": v("1")}, "Unknown group config name: foo"},
		{"not an int", map[string]*string{"consumer.session.timeout.ms": v("abc")}, "Not a number of type INT"},
		{"below atLeast", map[string]*string{"share.record.lock.duration.ms": v("999")}, "Value must be at least 1000"},
		{"below the broker limit", map[string]*string{"consumer.session.timeout.ms": v("44999")}, "must be greater than or equal to group.consumer.min.session.timeout.ms"},
		{"above the broker limit", map[string]*string{"consumer.heartbeat.interval.ms": v("15001")}, "must be less than or equal to group.consumer.max.heartbeat.interval.ms"},
		{"above a max-only limit", map[string]*string{"share.partition.max.record.locks": v("4001")}, "group.share.max.partition.max.record.locks"},
		{"bad choice", map[string]*string{"share.isolation.level": v("x")}, "String must be one of: read_committed, read_uncommitted"},
		{"bad boolean", map[string]*string{"share.renew.acknowledge.enable": v("maybe")}, "Expected value to be either true or false"},
		{"bad offset reset", map[string]*string{"share.auto.offset.reset": v("bad")}, "by_duration:<PnDTnHnMn.nS>"},
		// want "": accepted.
		{"both at their limits", map[string]*string{"consumer.session.timeout.ms": v("45000"), "consumer.heartbeat.interval.ms": v("15000")}, ""},
		{"share pair at their limits", map[string]*string{"share.heartbeat.interval.ms": v("15000"), "share.session.timeout.ms": v("45000")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := alterGroup(t, b, "g1", tt.configs)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err %v, want none", err)
				}
				return
			}
			if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want INVALID_CONFIG with %q", err, tt.want)
			}
		})
	}
	if err := alterGroup(t, b, "g1", map[string]*string{"share.auto.offset.reset": v("by_duration:P1DT2H30M1.5S")}); err != nil {
		t.Fatal(err)
	}
	// A broker whose own defaults lie outside Kafka's limits widens them to take those in; there a
	// session timeout can meet its heartbeat interval, which is refused.
	short := startTestBroker(t, func(c *Config) {
		c.ConsumerGroupSessionTimeout, c.ConsumerGroupHeartbeatInterval = 3*time.Second, time.Second
	})
	if err := alterGroup(t, short, "g2", map[string]*string{"consumer.session.timeout.ms": v("4000")}); err != nil {
		t.Fatalf("4 s session on a broker with a 3 s default: %v", err)
	}
	err := alterGroup(t, short, "g2", map[string]*string{"consumer.heartbeat.interval.ms": v("4000")})
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(err.Error(), "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms") {
		t.Fatalf("heartbeat equal to the session timeout: %v", err)
	}

	// ListConfigResources lists groups with configs (v1); v0 is client metrics only, of which there are none.
	var lresp *kmsg.ListConfigResourcesResponse
	lr := kmsg.NewPtrListConfigResourcesRequest()
	lr.Version = 1
	lr.ResourceTypes = []int8{int8(kmsg.ConfigResourceTypeGroupConfig)}
	lresp, err = lr.RequestWith(context.Background(), newClient(t, b))
	if err != nil || lresp.ErrorCode != 0 || len(lresp.ConfigResources) != 1 || lresp.ConfigResources[0].Name != "g1" {
		t.Fatalf("list config resources: %v %+v", err, lresp)
	}
	if err := alterGroup(t, b, "g1", map[string]*string{"consumer.session.timeout.ms": nil, "consumer.heartbeat.interval.ms": nil,
		"share.auto.offset.reset": nil, "share.heartbeat.interval.ms": nil, "share.session.timeout.ms": nil}); err != nil {
		t.Fatal(err)
	}
	if lresp, err = lr.RequestWith(context.Background(), newClient(t, b)); err != nil || len(lresp.ConfigResources) != 0 {
		t.Fatalf("after deleting every config: %v %+v", err, lresp)
	}
}

// TestGroupHeartbeatIntervalOverride: a KIP-848 member is told the heartbeat interval of its group's
// configs, not the broker's.
func TestGroupHeartbeatIntervalOverride(t *testing.T) {
	b := startTestBroker(t, nil)
	v := "7000"
	if err := alterGroup(t, b, "tuned", map[string]*string{"consumer.heartbeat.interval.ms": &v}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group string
		want  int32
	}{{"tuned", 7000}, {"plain", int32(b.cfg.ConsumerGroupHeartbeatInterval / time.Millisecond)}} {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberEpoch, req.RebalanceTimeoutMillis = tt.group, 0, 30000
		req.MemberID = "m-" + tt.group
		req.SubscribedTopicNames = []string{"nothing"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		var resp *kmsg.ConsumerGroupHeartbeatResponse
		var err error
		for range 50 { // the coordinator may still be loading
			resp, err = req.RequestWith(context.Background(), newClient(t, b))
			if err == nil && resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code && resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || resp.ErrorCode != 0 || resp.HeartbeatIntervalMillis != tt.want {
			t.Fatalf("group %s: %v %+v, want interval %d", tt.group, err, resp, tt.want)
		}
	}
}
