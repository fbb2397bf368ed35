package broker

// Replication throttles (KIP-73), what kafka-reassign-partitions.sh
// --throttle sets up so moving replicas does not starve clients:
//
//   - broker configs leader.replication.throttled.rate and
//     follower.replication.throttled.rate (bytes/s for this broker, dynamic,
//     per broker or cluster default; unset is unlimited);
//   - topic configs leader.replication.throttled.replicas and
//     follower.replication.throttled.replicas: "*" or a list of
//     "partition:broker" naming the replicas, on the leader's and on the
//     follower's side, whose replication traffic counts against those rates.
//
// As in Kafka, only replicas outside the ISR are held back (catching-up
// replicas: new ones of a reassignment, or ones returning from an outage),
// so a throttle never slows the high watermark of in-sync replication. A
// leader answers a throttled replica's fetch for such a partition without
// records while its leader rate is over the bound (and counts the bytes it
// does send for throttled partitions); a follower leaves such partitions out
// of its fetches while its follower rate is over the bound (and counts what
// it appends for them). Rates are measured like client quotas: over the
// quota window samples (--quota-window-num, --quota-window-size; Kafka's
// replication.quota.window.* default to the same 11 x 1 s).

import (
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/raft"
)

// Names of the replication throttle configs.
const (
	cfgLeaderThrottledRate       = "leader.replication.throttled.rate"
	cfgFollowerThrottledRate     = "follower.replication.throttled.rate"
	cfgLeaderThrottledReplicas   = "leader.replication.throttled.replicas"
	cfgFollowerThrottledReplicas = "follower.replication.throttled.replicas"
)

// replThrottle holds one broker's two replication rates. Safe for
// concurrent use: each sensor locks itself.
type replThrottle struct {
	self     int32
	windowMS int64
	now      func() time.Time
	leader   *rateSensor
	follower *rateSensor
	// held counts the fetch answers (leader) and fetches (follower) of a
	// partition held back, for tests and debugging.
	held atomic.Int64
}

func newReplThrottle(self int32, samples int, window time.Duration) *replThrottle {
	return &replThrottle{self: self, windowMS: window.Milliseconds(), now: time.Now,
		leader: newRateSensor(samples), follower: newRateSensor(samples)}
}

// bound returns this broker's rate for key (bytes/s) and whether one is
// set: the broker's own dynamic config, else the cluster default. Kafka's
// default, Long.MAX_VALUE, counts as unset.
func (r *replThrottle) bound(st *raft.State, key string) (float64, bool) {
	v, ok := st.BrokerConfigs[strconv.Itoa(int(r.self))][key]
	if !ok {
		v, ok = st.BrokerConfigs[""][key]
	}
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n == math.MaxInt64 {
		return 0, false
	}
	return float64(n), true
}

// throttledReplica reports whether the replica list (a throttled.replicas
// config value) names partition part on broker id: "*" names every replica.
// Malformed entries name nothing; AlterConfigs validated them on the way in.
func throttledReplica(list string, part, id int32) bool {
	list = strings.TrimSpace(list)
	if list == "" {
		return false
	}
	if list == "*" {
		return true
	}
	for entry := range strings.SplitSeq(list, ",") {
		ps, bs, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			continue
		}
		p, err1 := strconv.ParseInt(strings.TrimSpace(ps), 10, 32)
		b, err2 := strconv.ParseInt(strings.TrimSpace(bs), 10, 32)
		if err1 == nil && err2 == nil && int32(p) == part && int32(b) == id {
			return true
		}
	}
	return false
}

// exceeded reports whether s measures more than bound now.
func (r *replThrottle) exceeded(s *rateSensor, bound float64) bool {
	nowMS := r.now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	rate, _ := s.measure(nowMS, r.windowMS)
	return rate > bound
}

// leaderThrottled reports whether this broker, leading topic/part, is to
// count its replication to follower against the leader rate, and whether
// it must hold back records from it now. inSync is whether follower is in
// the ISR.
func (r *replThrottle) leaderThrottled(st *raft.State, topic string, part int32, inSync bool) (counted, hold bool) {
	bound, ok := r.bound(st, cfgLeaderThrottledRate)
	if !ok {
		return false, false
	}
	t, ok := st.Topics[topic]
	if !ok || !throttledReplica(t.Configs[cfgLeaderThrottledReplicas], part, r.self) {
		return false, false
	}
	return true, r.hold(inSync, r.leader, bound)
}

// followerThrottled is leaderThrottled for this broker's fetches as a
// follower of topic/part.
func (r *replThrottle) followerThrottled(st *raft.State, topic string, part int32, inSync bool) (counted, hold bool) {
	bound, ok := r.bound(st, cfgFollowerThrottledRate)
	if !ok {
		return false, false
	}
	t, ok := st.Topics[topic]
	if !ok || !throttledReplica(t.Configs[cfgFollowerThrottledReplicas], part, r.self) {
		return false, false
	}
	return true, r.hold(inSync, r.follower, bound)
}

// hold decides whether a counted replica is held back now: only when out
// of the ISR and s is over bound.
func (r *replThrottle) hold(inSync bool, s *rateSensor, bound float64) bool {
	if inSync || !r.exceeded(s, bound) {
		return false
	}
	r.held.Add(1)
	return true
}

// record counts n bytes of throttled replication on s.
func (r *replThrottle) record(s *rateSensor, n int) {
	if n > 0 {
		s.record(r.now().UnixMilli(), float64(n), r.windowMS, math.Inf(1))
	}
}

// inISR reports whether id is in the partition's ISR as last reconciled.
func (p *partition) inISR(id int32) bool {
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	for _, r := range p.repl.isr {
		if r == id {
			return true
		}
	}
	return false
}
