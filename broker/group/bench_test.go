package group

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRebalance measures one full eager rebalance of a 100-member
// group in the state machine: every member rejoins, the leader syncs, every
// follower syncs.
func BenchmarkRebalance(b *testing.B) {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	n := 0
	cfg.NewMemberID = func(c string) string { n++; return fmt.Sprintf("%s-%d", c, n) }
	now := time.Unix(0, 0)
	g := New("g", cfg, now)
	req := JoinRequest{ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte("m")}},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second}
	var ids []string
	for i := range 100 {
		r := req
		r.ClientID = fmt.Sprint("c", i)
		g.Join(now, r, func(res JoinResult) { ids = append(ids, res.MemberID) })
	}
	b.ResetTimer()
	for range b.N {
		var leaderRes JoinResult
		for _, id := range ids {
			r := req
			r.MemberID = id
			g.Join(now, r, func(res JoinResult) {
				if res.Members != nil {
					leaderRes = res
				}
			})
		}
		assign := map[string][]byte{}
		for _, m := range leaderRes.Members {
			assign[m.MemberID] = []byte("a")
		}
		for _, id := range ids {
			g.Sync(now, SyncRequest{MemberID: id, Generation: g.Generation(), Assignments: assign}, func(SyncResult) {})
		}
		if g.State() != Stable {
			b.Fatalf("state %v", g.State())
		}
	}
}

// BenchmarkConsumerHeartbeatPersist measures one steady-state KIP-848
// heartbeat of a member of a stable 100-member group on 100 partitions,
// including the persistence diff the coordinator runs after it (which
// encodes the whole group and finds nothing to write).
var skipPersist = false

func BenchmarkConsumerHeartbeatPersist(b *testing.B) {
	now := time.Unix(0, 0)
	g := New("g", DefaultConfig(), now)
	topics := fakeTopics{"t": {Name: "t", ID: TopicID{9}, Partitions: 100}}
	cfg := ConsumerConfig{SessionTimeout: time.Minute, HeartbeatInterval: time.Second}
	epochs := map[string]int32{}
	for i := range 100 {
		id := fmt.Sprint("m-", i)
		r := g.ConsumerHeartbeat(now, cfg, topics, ConsumerHeartbeat{MemberID: id, ClientID: "c", RebalanceTimeout: time.Minute,
			SubscribedTopics: []string{"t"}, Owned: Assignment{}}, true)
		epochs[id] = r.Epoch
	}
	for range 3 { // reconcile everyone to the last epoch
		for id := range epochs {
			m := g.consumer.members[id]
			r := g.ConsumerHeartbeat(now, cfg, topics, ConsumerHeartbeat{MemberID: id, MemberEpoch: m.epoch, RebalanceTimeout: -1,
				Owned: cloneAssignment(m.assigned)}, true)
			epochs[id] = r.Epoch
		}
	}
	if g.StateName() != "Stable" {
		b.Fatalf("state %s", g.StateName())
	}
	_ = g.ConsumerRecords()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("m-", i%100)
		if r := g.ConsumerHeartbeat(now, cfg, topics, ConsumerHeartbeat{MemberID: id, MemberEpoch: epochs[id], RebalanceTimeout: -1}, true); r.Err != nil {
			b.Fatal(r.Err)
		}
		if recs := g.ConsumerRecords(); len(recs) != 0 && !skipPersist {
			b.Fatalf("steady heartbeat wrote %d records", len(recs))
		}
	}
}
