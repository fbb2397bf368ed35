package broker

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cgMember drives one KIP-848 member by hand with ConsumerGroupHeartbeat.
type cgMember struct {
	id    string
	epoch int32
	owned map[[16]byte][]int32
}

// heartbeat sends a heartbeat (a join when epoch is 0) reporting what the
// member owns, and adopts the assignment it gets.
func (m *cgMember) heartbeat(t *testing.T, cl *kgo.Client, group string, topics []string) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, m.id, m.epoch
	req.RebalanceTimeoutMillis = -1
	if m.epoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = topics
	}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for id, ps := range m.owned {
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID, rt.Partitions = id, ps
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("heartbeat %s: %v", m.id, err)
	}
	if resp.ErrorCode == 0 {
		m.epoch = resp.MemberEpoch
		if resp.Assignment != nil {
			m.owned = map[[16]byte][]int32{}
			for _, at := range resp.Assignment.Topics {
				m.owned[at.TopicID] = slices.Sorted(slices.Values(at.Partitions))
			}
		}
	}
	return resp
}

// describeCG returns the ConsumerGroupDescribe answer for group.
func describeCG(t *testing.T, cl *kgo.Client, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("describe %s: %v %+v", group, err, resp)
	}
	g := resp.Groups[0]
	slices.SortFunc(g.Members, func(a, b kmsg.ConsumerGroupDescribeResponseGroupMember) int {
		if a.MemberID < b.MemberID {
			return -1
		}
		return 1
	})
	for i := range g.Members {
		g.Members[i].ClientHost = "" // the restarted broker sees new client ports
		for _, a := range []*kmsg.Assignment{&g.Members[i].Assignment, &g.Members[i].TargetAssignment} {
			slices.SortFunc(a.TopicPartitions, func(x, y kmsg.AssignmentTopicPartition) int {
				if x.Topic < y.Topic {
					return -1
				}
				return 1
			})
		}
	}
	return g
}

// TestConsumerGroupSurvivesRestart builds a KIP-848 group of two members by
// hand, restarts the broker on the same data dir, and checks the group came
// back as it was (epochs, members, target and current assignments, type
// "consumer" in ListGroups and DescribeGroups), that its members' next
// heartbeats are accepted at their old epochs without a rebalance, that a
// leave before a second restart is remembered, and that a deleted group
// stays deleted.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := func(c *Config) {
		groupTestConfig(c)
		c.DataDir, c.Fsync = dir, "always"
		c.ConsumerGroupSessionTimeout = 45 * time.Second // nobody heartbeats while the broker is down
	}
	b := startTestBroker(t, mod)
	createTopic(t, newAdmin(t, b), "t", 4, nil)
	cl := newClient(t, b)
	topics := []string{"t"}
	m1, m2 := &cgMember{id: "member-1"}, &cgMember{id: "member-2"}
	m1.heartbeat(t, cl, "g", topics)
	m2.heartbeat(t, cl, "g", topics)
	for i := 0; i < 10 && describeCG(t, cl, "g").State != "Stable"; i++ {
		m1.heartbeat(t, cl, "g", topics)
		m2.heartbeat(t, cl, "g", topics)
	}
	before := describeCG(t, cl, "g")
	if before.State != "Stable" || len(before.Members) != 2 || before.Epoch < 2 {
		t.Fatalf("group before restart: %+v", before)
	}
	dgBefore, err := newAdmin(t, b).DescribeGroups(testCtx(t), "g")
	if err != nil {
		t.Fatalf("describe groups: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	b = startTestBroker(t, mod)
	cl = newClient(t, b)
	after := describeCG(t, cl, "g")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("group changed over the restart:\nbefore %+v\nafter  %+v", before, after)
	}
	lg, err := newAdmin(t, b).ListGroups(testCtx(t))
	if err != nil || lg["g"].GroupType != "consumer" || lg["g"].State != "Stable" {
		t.Errorf("list groups after restart: %+v %v", lg["g"], err)
	}
	dg, err := newAdmin(t, b).DescribeGroups(testCtx(t), "g")
	if x, y := dgBefore["g"], dg["g"]; err != nil || x.State != y.State || x.ProtocolType != y.ProtocolType ||
		!reflect.DeepEqual(x.Err, y.Err) || len(x.Members) != len(y.Members) {
		t.Errorf("describe groups before restart %+v, after %+v (%v)", x, y, err)
	}
	for _, m := range []*cgMember{m1, m2} {
		epoch := m.epoch
		owned := m.owned
		resp := m.heartbeat(t, cl, "g", topics)
		if resp.ErrorCode != 0 || resp.MemberEpoch != epoch {
			t.Errorf("%s after restart: error %v epoch %d, want epoch %d", m.id, kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch, epoch)
		}
		if !reflect.DeepEqual(m.owned, owned) {
			t.Errorf("%s assignment after restart %v, before %v", m.id, m.owned, owned)
		}
	}
	if g := describeCG(t, cl, "g"); g.Epoch != before.Epoch {
		t.Errorf("group epoch moved from %d to %d over a restart", before.Epoch, g.Epoch)
	}

	// m2 leaves; the second restart remembers it.
	m2.epoch = -1
	if resp := m2.heartbeat(t, cl, "g", topics); resp.ErrorCode != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	left := describeCG(t, cl, "g")
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	b = startTestBroker(t, mod)
	cl = newClient(t, b)
	if g := describeCG(t, cl, "g"); !reflect.DeepEqual(g, left) || len(g.Members) != 1 || g.Epoch != before.Epoch+1 {
		t.Errorf("after leave and restart: %+v, want %+v", g, left)
	}

	// m1 leaves too; the empty group is deleted and stays deleted.
	m1.epoch = -1
	m1.heartbeat(t, cl, "g", topics)
	del, err := newAdmin(t, b).DeleteGroups(testCtx(t), "g")
	if err != nil || del["g"].Err != nil {
		t.Fatalf("delete group: %+v %v", del["g"], err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	b = startTestBroker(t, mod)
	cl = newClient(t, b)
	if g := describeCG(t, cl, "g"); g.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("deleted group after restart: %+v", g)
	}
}
