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
