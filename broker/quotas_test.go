package broker

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// quotaState returns a state holding the given quotas (one key each).
func quotaState(key string, q map[raft.QuotaEntity]float64) *raft.State {
	st := &raft.State{ClientQuotas: map[raft.QuotaEntity]map[string]float64{}, QuotasVersion: 1}
	for e, v := range q {
		st.ClientQuotas[e] = map[string]float64{key: v}
	}
	return st
}

// TestQuotaResolution checks Kafka's precedence order and which sensor
// (who shares the rate) each matched entity implies.
func TestQuotaResolution(t *testing.T) {
	n, d := raft.Named, raft.DefaultName
	all := map[raft.QuotaEntity]float64{
		{User: n("alice"), ClientID: n("app")}: 1,
		{User: n("alice"), ClientID: d}:        2,
		{User: n("alice")}:                     3,
		{User: d, ClientID: n("app")}:          4,
		{User: d, ClientID: d}:                 5,
		{User: d}:                              6,
		{ClientID: n("app")}:                   7,
		{ClientID: d}:                          8,
	}
	// without returns all minus the entities with the given values.
	without := func(vals ...float64) map[raft.QuotaEntity]float64 {
		out := map[raft.QuotaEntity]float64{}
		for e, v := range all {
			drop := false
			for _, x := range vals {
				drop = drop || v == x
			}
			if !drop {
				out[e] = v
			}
		}
		return out
	}
	both := func(u, c string) sensorKey {
		return sensorKey{kind: quotaProduce, hasUser: true, hasClient: true, user: u, client: c}
	}
	userOnly := func(u string) sensorKey { return sensorKey{kind: quotaProduce, hasUser: true, user: u} }
	clientOnly := func(c string) sensorKey { return sensorKey{kind: quotaProduce, hasClient: true, client: c} }
	for _, tc := range []struct {
		name         string
		quotas       map[raft.QuotaEntity]float64
		user, client string
		want         float64 // 0: no quota
		key          sensorKey
	}{
		{"user+client", all, "alice", "app", 1, both("alice", "app")},
		{"user+default client", without(1), "alice", "app", 2, both("alice", "app")},
		{"user", without(1, 2), "alice", "app", 3, userOnly("alice")},
		{"default user+client", without(1, 2, 3), "alice", "app", 4, both("alice", "app")},
		{"default user+default client", without(1, 2, 3, 4), "alice", "app", 5, both("alice", "app")},
		{"default user", without(1, 2, 3, 4, 5), "alice", "app", 6, userOnly("alice")},
		{"client", without(1, 2, 3, 4, 5, 6), "alice", "app", 7, clientOnly("app")},
		{"default client", without(1, 2, 3, 4, 5, 6, 7), "alice", "app", 8, clientOnly("app")},
		{"other user gets the default user+client", all, "bob", "app", 4, both("bob", "app")},
		{"other user and client get default user+default client", all, "bob", "other", 5, both("bob", "other")},
		{"user-level quota shared across clients", without(1, 2), "alice", "other", 3, userOnly("alice")},
		{"default user quota is per user", map[raft.QuotaEntity]float64{{User: d}: 9}, "carol", "x", 9, userOnly("carol")},
		{"empty client id matches only defaults", map[raft.QuotaEntity]float64{{ClientID: n("app")}: 7, {ClientID: d}: 8}, "u", "", 8, clientOnly("")},
		{"no match", map[raft.QuotaEntity]float64{{User: n("x")}: 1}, "alice", "app", 0, sensorKey{}},
		{"none at all", nil, "alice", "app", 0, sensorKey{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newQuotaManager(11, time.Second)
			tbl := m.current(quotaState(raft.QuotaProducerByteRate, tc.quotas))
			key, v, ok := tbl.resolve(quotaProduce, tc.user, tc.client)
			if ok != (tc.want != 0) || v != tc.want || key != tc.key {
				t.Fatalf("resolve = %+v %v %v, want %+v %v", key, v, ok, tc.key, tc.want)
			}
			// Quotas of one key never apply to another kind.
			if _, _, ok := tbl.resolve(quotaFetch, tc.user, tc.client); ok {
				t.Fatal("a producer quota applied to fetches")
			}
		})
	}
}

// TestRateSensor checks the throttle arithmetic with a fake clock, and that
// a client honouring the throttle times converges on the quota.
func TestRateSensor(t *testing.T) {
	const window = 1000
	s := newRateSensor(11)
	// 20000 bytes at once against 1000 B/s: the rate counts over at least
	// 10 windows (2000 B/s), so the throttle is (2000-1000)/1000*10 s.
	if ms := s.record(5_000, 20_000, window, 1000); ms != 10_000 {
		t.Fatalf("throttle = %d ms, want 10000", ms)
	}
	if ms := newRateSensor(11).record(5_000, 9_000, window, 1000); ms != 0 {
		t.Fatalf("within quota: throttle %d", ms)
	}
	if ms := newRateSensor(11).record(5_000, 1, window, 0); ms != 11*window {
		t.Fatalf("zero quota: throttle %d, want the whole window", ms)
	}
	// Simulate a producer sending 50 KB batches against 100 KB/s that
	// waits what it is told (at least 10 ms per request).
	s = newRateSensor(11)
	now, sent := int64(1_000_000), 0.0
	start := now
	throttled := 0
	for range 2000 {
		ms := s.record(now, 50_000, window, 100_000)
		sent += 50_000
		if ms > 0 {
			throttled++
		}
		now += max(ms, 10)
	}
	rate := sent / (float64(now-start) / 1000)
	if throttled == 0 || rate < 90_000 || rate > 110_000 {
		t.Fatalf("converged to %.0f B/s with %d throttles, want ~100000", rate, throttled)
	}
	// Samples older than the whole window no longer count.
	s = newRateSensor(11)
	s.record(0, 1e9, window, 1e12)
	if ms := s.record(20_000, 1, window, 1); ms != 0 {
		t.Fatalf("an expired burst still throttles: %d ms", ms)
	}
}

// TestQuotaFilterMatching covers DescribeClientQuotas filters over a fixed
// set of entities.
func TestQuotaFilterMatching(t *testing.T) {
	n, d := raft.Named, raft.DefaultName
	ents := []raft.QuotaEntity{
		{User: n("alice")},                   // 0
		{User: d},                            // 1
		{User: n("alice"), ClientID: n("a")}, // 2
		{User: d, ClientID: d},               // 3
		{ClientID: n("a")},                   // 4
		{ClientID: d},                        // 5
		{IP: n("10.0.0.1")},                  // 6
		{IP: d},                              // 7
	}
	comp := func(typ string, mt kmsg.QuotasMatchType, match *string) kmsg.DescribeClientQuotasRequestComponent {
		c := kmsg.NewDescribeClientQuotasRequestComponent()
		c.EntityType, c.MatchType, c.Match = typ, mt, match
		return c
	}
	s := kmsg.StringPtr
	for _, tc := range []struct {
		name    string
		comps   []kmsg.DescribeClientQuotasRequestComponent
		strict  bool
		want    []int
		wantErr *kerr.Error
	}{
		{"no components lists all", nil, false, []int{0, 1, 2, 3, 4, 5, 6, 7}, nil},
		{"no components strict lists none", nil, true, nil, nil},
		{"user exact", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, s("alice"))}, false, []int{0, 2}, nil},
		{"user exact strict", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, s("alice"))}, true, []int{0}, nil},
		{"user default", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 1, nil)}, false, []int{1, 3}, nil},
		{"user any", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 2, nil)}, false, []int{0, 1, 2, 3}, nil},
		{"user any strict", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 2, nil)}, true, []int{0, 1}, nil},
		{"user any and client any", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 2, nil), comp("client-id", 2, nil)}, true, []int{2, 3}, nil},
		{"user exact and client exact", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, s("alice")), comp("client-id", 0, s("a"))}, false, []int{2}, nil},
		{"client exact", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 0, s("a"))}, false, []int{2, 4}, nil},
		{"client default strict", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 1, nil)}, true, []int{5}, nil},
		{"ip any", []kmsg.DescribeClientQuotasRequestComponent{comp("ip", 2, nil)}, false, []int{6, 7}, nil},
		{"ip default", []kmsg.DescribeClientQuotasRequestComponent{comp("ip", 1, nil)}, false, []int{7}, nil},
		{"unknown name", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, s("zed"))}, false, nil, nil},
		{"type twice", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 2, nil), comp("user", 1, nil)}, false, nil, kerr.InvalidRequest},
		{"exact without name", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, nil)}, false, nil, kerr.InvalidRequest},
		{"default with name", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 1, s("x"))}, false, nil, kerr.InvalidRequest},
		{"any with name", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 2, s("x"))}, false, nil, kerr.InvalidRequest},
		{"unknown match type", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 7, nil)}, false, nil, kerr.InvalidRequest},
		{"unknown entity type", []kmsg.DescribeClientQuotasRequestComponent{comp("group", 2, nil)}, false, nil, kerr.UnsupportedVersion},
		{"empty entity type", []kmsg.DescribeClientQuotasRequestComponent{comp("", 2, nil)}, false, nil, kerr.InvalidRequest},
		{"ip with user", []kmsg.DescribeClientQuotasRequestComponent{comp("ip", 2, nil), comp("user", 2, nil)}, false, nil, kerr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			req.Components, req.Strict = tc.comps, tc.strict
			f, e, _ := parseQuotaFilter(req)
			if e != tc.wantErr {
				t.Fatalf("error %v, want %v", e, tc.wantErr)
			}
			if e != nil {
				return
			}
			var got []int
			for i, ent := range ents {
				if f.matches(ent) {
					got = append(got, i)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("matched %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("matched %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// alterQuotaEntry builds an AlterClientQuotas entry; names are
// type, name pairs with "" for the default entity.
func alterQuotaEntry(ops []kmsg.AlterClientQuotasRequestEntryOp, names ...string) kmsg.AlterClientQuotasRequestEntry {
	e := kmsg.NewAlterClientQuotasRequestEntry()
	for i := 0; i < len(names); i += 2 {
		ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ent.Type = names[i]
		if names[i+1] != "" {
			ent.Name = kmsg.StringPtr(names[i+1])
		}
		e.Entity = append(e.Entity, ent)
	}
	e.Ops = ops
	return e
}

func quotaOp(key string, v float64, remove bool) kmsg.AlterClientQuotasRequestEntryOp {
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value, op.Remove = key, v, remove
	return op
}

// TestAlterDescribeClientQuotas runs both APIs over the wire at both
// versions: validation per entry, validate_only, removal, describe.
func TestAlterDescribeClientQuotas(t *testing.T) {
	b := startTestBroker(t, nil)
	c := rawClient(t, b)
	for _, v := range []int16{0, 1} {
		req := kmsg.NewPtrAlterClientQuotasRequest()
		req.Entries = []kmsg.AlterClientQuotasRequestEntry{
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1024, false), quotaOp("request_percentage", 12.5, false)}, "user", "alice"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("consumer_byte_rate", 2048, false)}, "user", "", "client-id", "app"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("connection_creation_rate", 5, false)}, "ip", "127.0.0.1"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("bogus", 1, false)}, "user", "bob"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1.5, false)}, "user", "bob"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1, false)}, "ip", "not-an-ip"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1, false)}, "user", "x", "ip", "1.2.3.4"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("connection_creation_rate", 1, false)}, "user", "x"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1, false)}, "group", "g"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1, false)}, "user", "y", "client-id", "y"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1, false), quotaOp("producer_byte_rate", 2, false)}, "user", "dup"),
			// Values must be above 0.
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", -5, false)}, "client-id", "neg"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("request_percentage", -5, false)}, "client-id", "negd"),
			alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 0, false)}, "client-id", "zero"),
		}
		// The y/y entry uses an empty client id in v1 to check "Empty
		// client-id not supported"; v0 keeps it valid.
		if v == 1 {
			req.Entries[9].Entity[1].Name = kmsg.StringPtr("")
		}
		resp := send[*kmsg.AlterClientQuotasResponse](t, c, req, v)
		want := []*kerr.Error{nil, nil, nil, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest,
			kerr.InvalidRequest, kerr.InvalidRequest, nil, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest}
		if v == 1 {
			want[9] = kerr.InvalidRequest
		}
		if len(resp.Entries) != len(want) {
			t.Fatalf("v%d: %d entries", v, len(resp.Entries))
		}
		for i, w := range want {
			wantCode(t, "alter entry "+string(rune('a'+i)), resp.Entries[i].ErrorCode, w)
		}
		if m := resp.Entries[3].ErrorMessage; m == nil || *m != "Invalid configuration key bogus" {
			t.Fatalf("unknown key message %+v", resp.Entries[3])
		}
	}
	st := b.node.State()
	want := map[raft.QuotaEntity]map[string]float64{
		{User: raft.Named("alice")}:                           {"producer_byte_rate": 1024, "request_percentage": 12.5},
		{User: raft.DefaultName, ClientID: raft.Named("app")}: {"consumer_byte_rate": 2048},
		{IP: raft.Named("127.0.0.1")}:                         {"connection_creation_rate": 5},
		{User: raft.Named("y"), ClientID: raft.Named("y")}:    {"producer_byte_rate": 1},
	}
	if len(st.ClientQuotas) != len(want) {
		t.Fatalf("state quotas %v, want %v", st.ClientQuotas, want)
	}
	for e, vals := range want {
		for k, v := range vals {
			if st.ClientQuotas[e][k] != v {
				t.Fatalf("state quotas %v, want %v", st.ClientQuotas, want)
			}
		}
	}

	// validate_only changes nothing; removal drops the key.
	vo := kmsg.NewPtrAlterClientQuotasRequest()
	vo.ValidateOnly = true
	vo.Entries = append(vo.Entries, alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 7, false)}, "user", "vo"))
	if r := send[*kmsg.AlterClientQuotasResponse](t, c, vo, 1); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("validate only: %+v", r.Entries[0])
	}
	rm := kmsg.NewPtrAlterClientQuotasRequest()
	rm.Entries = append(rm.Entries, alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("request_percentage", 0, true)}, "user", "alice"))
	if r := send[*kmsg.AlterClientQuotasResponse](t, c, rm, 1); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("remove: %+v", r.Entries[0])
	}

	dreq := kmsg.NewPtrDescribeClientQuotasRequest()
	comp := kmsg.NewDescribeClientQuotasRequestComponent()
	comp.EntityType, comp.MatchType = "user", kmsg.QuotasMatchTypeAny
	dreq.Components = append(dreq.Components, comp)
	for _, v := range []int16{0, 1} {
		d := send[*kmsg.DescribeClientQuotasResponse](t, c, dreq, v)
		if d.ErrorCode != 0 || len(d.Entries) != 3 {
			t.Fatalf("v%d describe: %+v", v, d)
		}
		// Sorted: named users before the default, user-only first.
		e0, e1, e2 := d.Entries[0], d.Entries[1], d.Entries[2]
		if len(e0.Entity) != 1 || *e0.Entity[0].Name != "alice" || len(e0.Values) != 1 || e0.Values[0].Key != "producer_byte_rate" || e0.Values[0].Value != 1024 {
			t.Fatalf("entry 0 %+v", e0)
		}
		if len(e1.Entity) != 2 || *e1.Entity[0].Name != "y" {
			t.Fatalf("entry 1 %+v", e1)
		}
		if len(e2.Entity) != 2 || e2.Entity[0].Type != "user" || e2.Entity[0].Name != nil || e2.Entity[1].Type != "client-id" || *e2.Entity[1].Name != "app" {
			t.Fatalf("entry 2 %+v", e2)
		}
	}
	bad := kmsg.NewPtrDescribeClientQuotasRequest()
	bad.Components = append(bad.Components, comp, comp)
	if d := send[*kmsg.DescribeClientQuotasResponse](t, c, bad, 1); d.ErrorCode != kerr.InvalidRequest.Code || d.ErrorMessage == nil {
		t.Fatalf("bad filter: %+v", d)
	}
}

// TestClientQuotasAuthorization: Alter needs ALTER_CONFIGS and Describe
// DESCRIBE_CONFIGS on the cluster.
func TestClientQuotasAuthorization(t *testing.T) {
	t.Parallel()
	b, br := authzBroker(t)
	alter := kmsg.NewPtrAlterClientQuotasRequest()
	alter.Entries = append(alter.Entries, alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1, false)}, "user", "a"))
	describe := kmsg.NewPtrDescribeClientQuotasRequest()
	ar := authzSend[*kmsg.AlterClientQuotasResponse](t, br, alter)
	wantCode(t, "alter denied", ar.Entries[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	dr := authzSend[*kmsg.DescribeClientQuotasResponse](t, br, describe)
	wantCode(t, "describe denied", dr.ErrorCode, kerr.ClusterAuthorizationFailed)
	grantACLs(t, b, anonACL(resCluster, clusterResource, opAlterConfigs), anonACL(resCluster, clusterResource, opDescribeConfigs))
	ar = authzSend[*kmsg.AlterClientQuotasResponse](t, br, alter)
	wantCode(t, "alter allowed", ar.Entries[0].ErrorCode, nil)
	dr = authzSend[*kmsg.DescribeClientQuotasResponse](t, br, describe)
	wantCode(t, "describe allowed", dr.ErrorCode, nil)
	if len(dr.Entries) != 1 {
		t.Fatalf("describe: %+v", dr.Entries)
	}
}

// setQuota stores one quota through raft.
func setQuota(t *testing.T, b *Broker, e raft.QuotaEntity, key string, v float64) {
	t.Helper()
	if _, err := b.apply(testCtx(t), raft.AlterClientQuotas{Changes: []raft.QuotaChange{{Entity: e, Set: map[string]float64{key: v}}}}); err != nil {
		t.Fatal(err)
	}
}

// bigBatch is one record carrying size value bytes.
func bigBatch(size int) []byte {
	return mkBatch(1, time.Now().UnixMilli(), func(_ *storage.BatchHeader, recs []storage.Record) {
		recs[0].Value = bytes.Repeat([]byte{'x'}, size)
	})
}

// TestProduceThrottled: with producer_byte_rate=200 KiB/s for the default
// user, 1 MiB produced as fast as the connection allows gets throttle
// times in its responses, and the broker's muting holds the observed rate
// near the quota even though this client ignores the throttle. The
// quota window is shortened (11 x 100 ms) to keep the test short; the rate
// bound is generous and one-sided (a slow machine only lowers the rate).
func TestProduceThrottled(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.QuotaWindowSize = 100 * time.Millisecond })
	tp := seedTopic(t, b, "q")
	const quota = 200 << 10
	setQuota(t, b, raft.QuotaEntity{User: raft.DefaultName}, raft.QuotaProducerByteRate, quota)
	c := rawClient(t, b)
	start := time.Now()
	throttled, sent := 0, 0
	for sent < 1<<20 {
		req := authzProduceReq(tp)
		req.Topics[0].Partitions[0].Records = bigBatch(32 << 10)
		resp := send[*kmsg.ProduceResponse](t, c, req, 9)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
		if resp.ThrottleMillis > 0 {
			throttled++
		}
		sent += 32 << 10
	}
	elapsed := time.Since(start)
	// Allowed: the quota over the elapsed time plus one measuring window
	// of burst, with 50% slack.
	allowed := 1.5 * quota * (elapsed.Seconds() + 1.1)
	if throttled == 0 || float64(sent) > allowed {
		t.Fatalf("sent %d bytes in %s (%d throttled responses); at most %.0f allowed", sent, elapsed, throttled, allowed)
	}
	t.Logf("%d bytes in %s: %.0f B/s against %d B/s, %d of %d responses throttled", sent, elapsed, float64(sent)/elapsed.Seconds(), quota, throttled, sent/(32<<10))
}

// TestFetchThrottledNotReplicas: a consumer fetch over consumer_byte_rate
// is answered without records and a throttle (Kafka's throttled fetch),
// the connection is muted for it, and the consumer gets its records once
// its rate has decayed; follower fetches are never throttled.
func TestFetchThrottledNotReplicas(t *testing.T) {
	t.Parallel()
	// Quota windows of 11 x 100 ms: a refused consumer is served again
	// once the first sample expires (1.1 s), as in Kafka, where the rate
	// is measured over at least samples-1 windows.
	b := startTestBroker(t, func(c *Config) { c.QuotaWindowSize = 100 * time.Millisecond })
	tp := seedTopic(t, b, "f")
	c := rawClient(t, b)
	for range 4 {
		req := authzProduceReq(tp)
		req.Topics[0].Partitions[0].Records = bigBatch(64 << 10)
		send[*kmsg.ProduceResponse](t, c, req, 9)
	}
	// 450000 B/s: one 256 KiB fetch is within the quota over the 1 s
	// minimum window, a second one at once is not (~524 KB/s): it is
	// refused with a throttle of ~165 ms.
	setQuota(t, b, raft.QuotaEntity{ClientID: raft.DefaultName}, raft.QuotaConsumerByteRate, 450000)
	fetch := func(replica int32) *kmsg.FetchResponse {
		req := authzFetchReq(tp, replica)
		req.MaxWaitMillis = 0
		return send[*kmsg.FetchResponse](t, c, req, 12)
	}
	records := func(r *kmsg.FetchResponse) int {
		if len(r.Topics) == 0 {
			return 0
		}
		return len(r.Topics[0].Partitions[0].RecordBatches)
	}
	// A follower fetch from a broker id that is no replica is answered
	// with an error, but never with a throttle.
	if r := fetch(7); r.ThrottleMillis != 0 {
		t.Fatalf("replica fetch throttled %d ms", r.ThrottleMillis)
	}
	if r := fetch(-1); records(r) < 4*(64<<10) || r.ThrottleMillis != 0 {
		t.Fatalf("first consumer fetch: %d record bytes, throttle %d", records(r), r.ThrottleMillis)
	}
	r := fetch(-1)
	if r.ThrottleMillis <= 0 || len(r.Topics) != 0 {
		t.Fatalf("second fetch over the quota: throttle %d, %d topics", r.ThrottleMillis, len(r.Topics))
	}
	// The connection is muted now: the next request waits that long.
	start := time.Now()
	if r2 := fetch(7); r2.ThrottleMillis != 0 {
		t.Fatalf("replica fetch throttled %d ms", r2.ThrottleMillis)
	}
	if waited := time.Since(start); waited < time.Duration(r.ThrottleMillis)*time.Millisecond/2 {
		t.Fatalf("next request answered after %s, throttle was %d ms", waited, r.ThrottleMillis)
	}
	// The consumer, muted after each refusal, gets the records back once
	// the first fetch's sample expires (the refused bytes were never
	// charged).
	for round := 0; ; round++ {
		if round == 50 {
			t.Fatal("the consumer never got its records back")
		}
		if records(fetch(-1)) > 0 {
			break
		}
	}
}

// TestRequestPercentageThrottles: a tiny request_percentage throttles even
// cheap requests, with the time in any response that has the field.
func TestRequestPercentageThrottles(t *testing.T) {
	b := startTestBroker(t, nil)
	setQuota(t, b, raft.QuotaEntity{User: raft.DefaultName}, raft.QuotaRequestPercentage, 1e-9)
	// ApiVersions stays exempt.
	if a := send[*kmsg.ApiVersionsResponse](t, rawClient(t, b), apiVersionsReq(), 3); a.ThrottleMillis != 0 {
		t.Fatalf("ApiVersions throttled %d", a.ThrottleMillis)
	}
	// (The throttle is huge: this connection stays muted until closed.)
	if r := send[*kmsg.MetadataResponse](t, rawClient(t, b), kmsg.NewPtrMetadataRequest(), 12); r.ThrottleMillis <= 0 {
		t.Fatalf("metadata not throttled")
	}
}

// TestClientQuotasSurviveRestart: quotas are in the raft log and snapshot.
func TestClientQuotasSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := func(c *Config) { c.DataDir = dir; c.Fsync = "always" }
	b := startTestBroker(t, mod)
	c := rawClient(t, b)
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Entries = append(req.Entries, alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1024, false)}, "user", "alice"),
		alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("consumer_byte_rate", 99, false)}, "user", "", "client-id", ""))
	if r := send[*kmsg.AlterClientQuotasResponse](t, c, req, 1); r.Entries[0].ErrorCode != 0 || r.Entries[1].ErrorCode != 0 {
		t.Fatalf("alter: %+v", r.Entries)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startTestBroker(t, mod)
	d := send[*kmsg.DescribeClientQuotasResponse](t, rawClient(t, b2), kmsg.NewPtrDescribeClientQuotasRequest(), 1)
	if d.ErrorCode != 0 || len(d.Entries) != 2 || d.Entries[0].Values[0].Value != 1024 || d.Entries[1].Values[0].Value != 99 ||
		d.Entries[1].Entity[0].Name != nil || d.Entries[1].Entity[1].Name != nil {
		t.Fatalf("after restart: %+v", d.Entries)
	}
	// And they are enforced after the restart.
	if !b2.quotas.enabled(b2.node.State(), quotaProduce) {
		t.Fatal("producer quota not enforced after restart")
	}
}

// BenchmarkQuotaCheck is the per-request cost of quota checks when no
// quota exists (the produce, fetch and request hooks all take this path),
// next to the cost once a quota applies. Run:
// go test ./broker -run XXX -bench QuotaCheck -benchmem
func BenchmarkQuotaCheck(b *testing.B) {
	rq := &request{c: &conn{principal: "User:alice"}, clientID: "app"}
	for _, bc := range []struct {
		name string
		st   *raft.State
	}{
		{"none", quotaState(raft.QuotaProducerByteRate, nil)},
		{"other-kind", quotaState(raft.QuotaConsumerByteRate, map[raft.QuotaEntity]float64{{User: raft.DefaultName}: 1e12})},
		{"applies", quotaState(raft.QuotaProducerByteRate, map[raft.QuotaEntity]float64{{User: raft.DefaultName}: 1e12})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			br := &Broker{quotas: newQuotaManager(11, time.Second)}
			b.ReportAllocs()
			for b.Loop() {
				if br.recordQuota(bc.st, rq, quotaProduce, 1000) != 0 {
					b.Fatal("throttled")
				}
			}
		})
	}
}

// TestConnectionCreationRate: connections over an ip's
// connection_creation_rate are closed unanswered; the first is served.
func TestConnectionCreationRate(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.QuotaWindowSize = 100 * time.Millisecond })
	setQuota(t, b, raft.QuotaEntity{IP: raft.DefaultName}, raft.QuotaConnectionCreationRate, 1)
	if r := send[*kmsg.ApiVersionsResponse](t, rawClient(t, b), apiVersionsReq(), 3); r.ErrorCode != 0 {
		t.Fatalf("first connection: %v", r.ErrorCode)
	}
	// The second connection within the (1 s) window exceeds 1/s: the
	// broker reads nothing from it and closes it after the throttle.
	c := rawClient(t, b)
	if _, err := c.nc.Write(frameOf(apiVersionsReq(), 3, 1)); err != nil {
		t.Fatal(err)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [4]byte
	if n, err := c.nc.Read(buf[:]); err == nil {
		t.Fatalf("throttled connection answered (%d bytes)", n)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("throttled connection was never closed")
	}
	// A named ip overrides the default: a high rate for 127.0.0.1 admits
	// again.
	setQuota(t, b, raft.QuotaEntity{IP: raft.Named("127.0.0.1")}, raft.QuotaConnectionCreationRate, 1000)
	if r := send[*kmsg.ApiVersionsResponse](t, rawClient(t, b), apiVersionsReq(), 3); r.ErrorCode != 0 {
		t.Fatalf("after raising the ip's quota: %v", r.ErrorCode)
	}
}

// apiVersionsReq is a valid ApiVersions v3 request (it needs the client
// software name and version).
func apiVersionsReq() *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.ClientSoftwareName, r.ClientSoftwareVersion = "strom-test", "1"
	return r
}

// TestClientQuotasFromFollower: an alteration sent to a broker that is not
// the raft leader is forwarded, and every broker then describes and
// enforces the quota.
func TestClientQuotasFromFollower(t *testing.T) {
	t.Parallel()
	bs := startTestCluster(t, 3, nil).brokers
	var follower *Broker
	for _, b := range bs {
		if !b.node.IsLeader() {
			follower = b
			break
		}
	}
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Entries = append(req.Entries, alterQuotaEntry([]kmsg.AlterClientQuotasRequestEntryOp{quotaOp("consumer_byte_rate", 512, false)}, "user", "alice"))
	if r := send[*kmsg.AlterClientQuotasResponse](t, rawClient(t, follower), req, 1); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("alter on follower %d: %+v", follower.cfg.NodeID, r.Entries[0])
	}
	ctx := testCtx(t)
	for _, b := range bs {
		waitBrokerState(ctx, t, b, "the quota", func(s *raft.State) bool { return len(s.ClientQuotas) == 1 })
		d := send[*kmsg.DescribeClientQuotasResponse](t, rawClient(t, b), kmsg.NewPtrDescribeClientQuotasRequest(), 1)
		if len(d.Entries) != 1 || d.Entries[0].Values[0].Value != 512 {
			t.Fatalf("broker %d describes %+v", b.cfg.NodeID, d.Entries)
		}
		if d := b.quotas.record(b.node.State(), quotaFetch, "alice", "any", 1e6); d <= 0 {
			t.Fatalf("broker %d does not enforce the quota", b.cfg.NodeID)
		}
	}
}

// createTopicsReq asks for one-partition topics.
func createTopicsReq(names ...string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	for _, n := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, 1, 1
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// TestControllerMutationQuota: controller_mutation_rate is a token bucket
// charged with partitions; strict versions refuse topics while it is in
// debt, older ones create them and only throttle.
func TestControllerMutationQuota(t *testing.T) {
	t.Parallel()
	// 0.1 mutations/s over 11 x 100 ms: a burst of 0.11 tokens, and a
	// debt of one partition takes ~9 s to repay (the margin for the
	// requests below, on fresh connections: the first one is muted).
	mod := func(c *Config) { c.QuotaWindowSize = 100 * time.Millisecond }
	b := startTestBroker(t, mod)
	setQuota(t, b, raft.QuotaEntity{User: raft.DefaultName}, raft.QuotaControllerMutationRate, 0.1)
	r := send[*kmsg.CreateTopicsResponse](t, rawClient(t, b), createTopicsReq("a", "b", "c"), 6)
	// a takes the bucket into debt, b and c are refused.
	wantCode(t, "a", r.Topics[0].ErrorCode, nil)
	wantCode(t, "b", r.Topics[1].ErrorCode, kerr.ThrottlingQuotaExceeded)
	wantCode(t, "c", r.Topics[2].ErrorCode, kerr.ThrottlingQuotaExceeded)
	if r.ThrottleMillis < 5000 || r.Topics[2].ErrorMessage == nil {
		t.Fatalf("throttle %d, message %v", r.ThrottleMillis, r.Topics[2].ErrorMessage)
	}
	if _, ok := b.node.State().Topics["b"]; ok {
		t.Fatal("refused topic b was created")
	}
	// The bucket is shared by the user's connections: deleting and adding
	// partitions are refused too.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"a"}
	del.TimeoutMillis = 5000
	dr := send[*kmsg.DeleteTopicsResponse](t, rawClient(t, b), del, 5)
	wantCode(t, "delete a", dr.Topics[0].ErrorCode, kerr.ThrottlingQuotaExceeded)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "a", 2
	cp.Topics, cp.TimeoutMillis = append(cp.Topics, cpt), 5000
	cr := send[*kmsg.CreatePartitionsResponse](t, rawClient(t, b), cp, 3)
	wantCode(t, "create partitions", cr.Topics[0].ErrorCode, kerr.ThrottlingQuotaExceeded)
	if cr.ThrottleMillis <= 0 || dr.ThrottleMillis <= 0 {
		t.Fatalf("refusals not throttled: %d %d", dr.ThrottleMillis, cr.ThrottleMillis)
	}
	if len(b.node.State().Topics["a"].Partitions) != 1 {
		t.Fatal("refused partitions were created")
	}

	// Before CreateTopics v6 the quota is permissive: all created.
	b2 := startTestBroker(t, mod)
	setQuota(t, b2, raft.QuotaEntity{User: raft.DefaultName}, raft.QuotaControllerMutationRate, 0.1)
	r = send[*kmsg.CreateTopicsResponse](t, rawClient(t, b2), createTopicsReq("a", "b", "c"), 5)
	for i, tp := range r.Topics {
		wantCode(t, "v5 topic "+string(rune('a'+i)), tp.ErrorCode, nil)
	}
	if r.ThrottleMillis <= 0 {
		t.Fatal("v5 over the quota not throttled")
	}
}

// TestRecordFetch: a consumer fetch over the quota is refused and
// un-recorded when it fits the quota's window bytes, and admitted with the
// throttle when it does not (waiting could never admit it).
func TestRecordFetch(t *testing.T) {
	st := quotaState(raft.QuotaConsumerByteRate, map[raft.QuotaEntity]float64{{User: raft.DefaultName}: 1000})
	m := newQuotaManager(11, time.Second)
	now := time.UnixMilli(1_000_000)
	m.now = func() time.Time { return now }
	capBytes := m.windowBytes(1000)
	if capBytes != 10_000 {
		t.Fatalf("window bytes %v, want 10000", capBytes)
	}
	if d, ok := m.recordFetch(st, "u", "c", 9_000, capBytes); d != 0 || !ok {
		t.Fatalf("within quota: %v %v", d, ok)
	}
	// 9000 more would be 1800 B/s: refused, not charged.
	if d, ok := m.recordFetch(st, "u", "c", 9_000, capBytes); d <= 0 || ok {
		t.Fatalf("over quota: %v %v", d, ok)
	}
	if d, ok := m.recordFetch(st, "u", "c", 1_000, capBytes); d != 0 || !ok {
		t.Fatalf("the refused fetch was charged: %v %v", d, ok)
	}
	// A fetch larger than the window bytes is admitted, throttled.
	if d, ok := m.recordFetch(st, "v", "c", 20_000, capBytes); d <= 0 || !ok {
		t.Fatalf("oversize fetch: %v %v", d, ok)
	}
}

// Requests only brokers send are exempt from client quotas; the same APIs
// from clients are not.
func TestExemptFromRequestQuota(t *testing.T) {
	follower := kmsg.NewPtrFetchRequest()
	follower.ReplicaID = 2
	consumer := kmsg.NewPtrFetchRequest()
	consumer.ReplicaID = -1
	verify := kmsg.NewPtrAddPartitionsToTxnRequest()
	verify.Version = 4
	client := kmsg.NewPtrAddPartitionsToTxnRequest()
	client.Version = 3
	for _, tc := range []struct {
		name string
		req  kmsg.Request
		want bool
	}{
		{"follower fetch", follower, true},
		{"consumer fetch", consumer, false},
		{"WriteTxnMarkers", kmsg.NewPtrWriteTxnMarkersRequest(), true},
		{"AddPartitionsToTxn v4 (broker)", verify, true},
		{"AddPartitionsToTxn v3 (client)", client, false},
		{"Produce", kmsg.NewPtrProduceRequest(), false},
	} {
		if got := exemptFromRequestQuota(tc.req); got != tc.want {
			t.Errorf("%s: exemptFromRequestQuota %v, want %v", tc.name, got, tc.want)
		}
	}
}
