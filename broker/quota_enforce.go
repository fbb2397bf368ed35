package broker

// Client quota enforcement (KIP-13, KIP-55, KIP-124, KIP-219, KIP-599,
// KIP-612), as Kafka's ClientQuotaManager, RequestQuotaManager,
// ControllerMutationQuotaManager and ConnectionQuotas do it.
//
// Per connection's (user, client-id): producer_byte_rate on Produce
// request bytes, consumer_byte_rate on Fetch response record bytes
// (consumer fetches only: follower fetches are never throttled),
// request_percentage on the time handlers spend on a request (percent of
// one thread) and controller_mutation_rate on partitions created or
// deleted. The quota that applies is the most specific entity in Kafka's
// order: user+client-id, user+default client, user, default user+client-id,
// default user+default client, default user, client-id, default client-id;
// each quota key is resolved on its own. The matched entity also decides
// who shares a sensor, as in Kafka: a user-level quota is shared by all
// that user's clients, and a default quota gives each user (or client) its
// own sensor.
//
// A rate sensor is a sampled rate (quota.window.num samples of
// quota.window.size.seconds, Kafka's 11 x 1 s): a value is recorded, then
// the rate over the non-expired samples (the window counted as at least
// samples-1 full windows) is compared with the quota; a violation yields
// the throttle time (rate - quota) / quota * window, so a client that waits
// it is back at the quota. The throttle goes into the response's
// throttle_time_ms and the connection stops reading requests for that
// long (KIP-219); for request versions older than KIP-219 the response
// itself is also held back that long, as Kafka did then.
//
// controller_mutation_rate (KIP-599) is a token bucket instead (burst: the
// rate times the whole quota window). From CreateTopics v6,
// CreatePartitions v3 and DeleteTopics v5 it is strict: while the bucket is
// in debt a topic is refused with THROTTLING_QUOTA_EXCEEDED (one topic may
// take it into debt); older versions are served and only throttled. The
// throttle is the time until the bucket is out of debt.
//
// connection_creation_rate (KIP-612) is enforced per client ip on accept:
// a connection over the rate (the ip's own quota, else the default ip's)
// is held, unread, for the throttle time and then closed, as Kafka's
// acceptor does.
//
// Cost when no quota of a kind exists: one atomic load and a compare per
// hook (see BenchmarkQuotaCheck); no allocation, no lock.
//
// A consumer fetch over consumer_byte_rate is answered without records
// (its bytes un-recorded), as Kafka does, and consumer fetches are capped to
// what the quota admits in one window (Kafka's getMaxValueInQuotaWindow).
//
// Differences from Kafka: a first batch larger than that cap (which Kafka
// would refuse for ever) is delivered with the throttle; request_percentage
// counts handler time on the connection's goroutine (Kafka: request
// handler and network thread time) and exempts only ApiVersions, SASL and
// follower fetches (Kafka also exempts other cluster actions of brokers).

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// quotaKind is one enforced quota.
type quotaKind uint8

const (
	quotaProduce quotaKind = iota
	quotaFetch
	quotaRequest
	quotaConnection
	quotaMutation
	numQuotaKinds
)

// quotaKindKey is the quota config key of each kind.
var quotaKindKey = [numQuotaKinds]string{raft.QuotaProducerByteRate, raft.QuotaConsumerByteRate, raft.QuotaRequestPercentage,
	raft.QuotaConnectionCreationRate, raft.QuotaControllerMutationRate}

// quotaTable is the per-kind view of the raft state's quotas; immutable.
type quotaTable struct {
	// version is the raft.State.QuotasVersion it was built from.
	version uint64
	// limits holds, per kind, the entities with a quota of that kind;
	// nil when there is none (the fast path).
	limits [numQuotaKinds]map[raft.QuotaEntity]float64
	// any is set when some kind has quotas.
	any bool
}

// sensorKey names one rate sensor: the kind, and the user and client the
// matched quota entity distinguishes (Kafka's metric tags).
type sensorKey struct {
	kind      quotaKind
	hasUser   bool
	hasClient bool
	user      string
	client    string
	ip        string // connection_creation_rate only
}

// quotaManager enforces client quotas for one broker.
type quotaManager struct {
	samples  int
	windowMS int64
	// now is the clock of the rate sensors (tests inject one).
	now func() time.Time

	// table caches the quotaTable of the latest QuotasVersion seen; mu
	// serializes rebuilds (readers only load).
	table atomic.Pointer[quotaTable]
	mu    sync.Mutex
	// sensors maps sensorKey to *rateSensor (*tokenBucket for
	// controller mutations; see sensorFor); entries idle for
	// sensorExpiry are swept (lastSweep, UnixMilli).
	sensors   sync.Map
	lastSweep atomic.Int64
}

// sensorExpiry is how long an idle sensor lives, Kafka's one hour.
const sensorExpiry = time.Hour

func newQuotaManager(samples int, window time.Duration) *quotaManager {
	return &quotaManager{samples: samples, windowMS: window.Milliseconds(), now: time.Now}
}

// current returns the quota table for st, rebuilding it when the quotas
// changed since the cached one.
func (m *quotaManager) current(st *raft.State) *quotaTable {
	if t := m.table.Load(); t != nil && t.version == st.QuotasVersion {
		return t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.table.Load(); t != nil && t.version == st.QuotasVersion {
		return t
	}
	t := &quotaTable{version: st.QuotasVersion}
	for e, values := range st.ClientQuotas {
		for k := range numQuotaKinds {
			if v, ok := values[quotaKindKey[k]]; ok {
				if t.limits[k] == nil {
					t.limits[k] = map[raft.QuotaEntity]float64{}
				}
				t.limits[k][e] = v
				t.any = true
			}
		}
	}
	m.table.Store(t)
	return t
}

// enabled reports whether any quota of kind exists in st: the hot-path
// check that keeps requests free of quota work when there are none.
func (m *quotaManager) enabled(st *raft.State, kind quotaKind) bool {
	return m.current(st).limits[kind] != nil
}

// resolve finds the quota of kind for (user, client) in Kafka's
// precedence order, and the sensor it is measured by.
func (t *quotaTable) resolve(kind quotaKind, user, client string) (sensorKey, float64, bool) {
	lim := t.limits[kind]
	if lim == nil {
		return sensorKey{}, 0, false
	}
	u, c, d := raft.Named(user), raft.Named(client), raft.DefaultName
	both := sensorKey{kind: kind, hasUser: true, hasClient: true, user: user, client: client}
	userOnly := sensorKey{kind: kind, hasUser: true, user: user}
	clientOnly := sensorKey{kind: kind, hasClient: true, client: client}
	for _, cand := range [...]struct {
		e   raft.QuotaEntity
		key *sensorKey
	}{
		{raft.QuotaEntity{User: u, ClientID: c}, &both},
		{raft.QuotaEntity{User: u, ClientID: d}, &both},
		{raft.QuotaEntity{User: u}, &userOnly},
		{raft.QuotaEntity{User: d, ClientID: c}, &both},
		{raft.QuotaEntity{User: d, ClientID: d}, &both},
		{raft.QuotaEntity{User: d}, &userOnly},
		{raft.QuotaEntity{ClientID: c}, &clientOnly},
		{raft.QuotaEntity{ClientID: d}, &clientOnly},
	} {
		if v, ok := lim[cand.e]; ok {
			return *cand.key, v, true
		}
	}
	return sensorKey{}, 0, false
}

// record adds value to the sensor of (user, client) for kind and returns
// the throttle time the quota asks for (0 when within it or when no quota
// applies).
func (m *quotaManager) record(st *raft.State, kind quotaKind, user, client string, value float64) time.Duration {
	d, _, _ := m.recordSensor(st, kind, user, client, value)
	return d
}

// recordSensor is record that also returns the sensor and the time it
// recorded at (nil when no quota applies), for un-recording.
func (m *quotaManager) recordSensor(st *raft.State, kind quotaKind, user, client string, value float64) (time.Duration, *rateSensor, int64) {
	t := m.current(st)
	if t.limits[kind] == nil {
		return 0, nil, 0
	}
	key, bound, ok := t.resolve(kind, user, client)
	if !ok {
		return 0, nil, 0
	}
	nowMS := m.now().UnixMilli()
	rs := sensorFor(m, key, nowMS, func() *rateSensor { return newRateSensor(m.samples) })
	ms := rs.record(nowMS, value, m.windowMS, bound)
	return time.Duration(ms) * time.Millisecond, rs, nowMS
}

// windowBytes is the most a quota of bound per second admits in one
// measuring window ((samples-1) windows, Kafka's
// getMaxValueInQuotaWindow): fetches are capped to it so that a throttled
// consumer's next fetch can always pass once its rate has decayed.
func (m *quotaManager) windowBytes(bound float64) float64 {
	return bound * float64(m.samples-1) * float64(m.windowMS) / 1000
}

// recordFetch charges a consumer fetch of n record bytes. Over the quota,
// a fetch of at most capBytes is refused as Kafka refuses it: the bytes
// are un-recorded and the caller answers without records (admitted
// false); a larger one (a first batch beyond the cap, which waiting could
// never admit) is admitted with the throttle.
func (m *quotaManager) recordFetch(st *raft.State, user, client string, n int, capBytes float64) (time.Duration, bool) {
	d, rs, at := m.recordSensor(st, quotaFetch, user, client, float64(n))
	if d <= 0 || float64(n) > capBytes {
		return d, true
	}
	rs.unrecord(at, float64(n), m.windowMS)
	return d, false
}

// admitConnection records a new connection from ip against its
// connection_creation_rate quota (the ip's own, else the default ip's;
// one sensor per ip) and returns how long to hold it before closing it,
// 0 to serve it. A refused connection is un-recorded, as in Kafka, so a
// client retrying in a loop is not locked out for ever.
func (m *quotaManager) admitConnection(st *raft.State, ip string) time.Duration {
	t := m.current(st)
	lim := t.limits[quotaConnection]
	if lim == nil {
		return 0
	}
	bound, ok := lim[raft.QuotaEntity{IP: raft.Named(ip)}]
	if !ok {
		if bound, ok = lim[raft.QuotaEntity{IP: raft.DefaultName}]; !ok {
			return 0
		}
	}
	key := sensorKey{kind: quotaConnection, ip: ip}
	nowMS := m.now().UnixMilli()
	rs := sensorFor(m, key, nowMS, func() *rateSensor { return newRateSensor(m.samples) })
	ms := rs.record(nowMS, 1, m.windowMS, bound)
	if ms > 0 {
		rs.unrecord(nowMS, 1, m.windowMS)
	}
	return time.Duration(ms) * time.Millisecond
}

// sensorFor returns key's sensor (a *rateSensor or, for mutations, a
// *tokenBucket), creating it with fresh when there is none; concurrent
// creators agree on one through LoadOrStore. Only a creation may sweep idle
// sensors, so the common path is a single map load.
func sensorFor[S any](m *quotaManager, key sensorKey, nowMS int64, fresh func() S) S {
	s, ok := m.sensors.Load(key)
	if !ok {
		s, _ = m.sensors.LoadOrStore(key, fresh())
		m.maybeSweep(nowMS)
	}
	return s.(S)
}

// maybeSweep drops sensors idle for sensorExpiry, at most once per
// expiry period (the caller that wins the compare-and-swap sweeps).
func (m *quotaManager) maybeSweep(nowMS int64) {
	last := m.lastSweep.Load()
	if last == 0 {
		m.lastSweep.CompareAndSwap(0, nowMS)
		return
	}
	if nowMS-last < sensorExpiry.Milliseconds() || !m.lastSweep.CompareAndSwap(last, nowMS) {
		return
	}
	m.sensors.Range(func(k, v any) bool {
		if nowMS-v.(interface{ lastUse() int64 }).lastUse() >= sensorExpiry.Milliseconds() {
			m.sensors.Delete(k)
		}
		return true
	})
}

// rateSensor is a sampled rate, Kafka's Rate over a SampledStat: samples
// windows aligned to the window size, the oldest reused when a new one
// starts.
type rateSensor struct {
	// mu guards samples and cur.
	mu      sync.Mutex
	samples []rateSample
	cur     int
	// lastUsed is the UnixMilli of the last record (expiry).
	lastUsed atomic.Int64
}

// rateSample is one window: its start (UnixMilli, -1 unused) and total.
type rateSample struct {
	start int64
	total float64
}

func (s *rateSensor) lastUse() int64 { return s.lastUsed.Load() }

func newRateSensor(n int) *rateSensor {
	s := &rateSensor{samples: make([]rateSample, n)}
	for i := range s.samples {
		s.samples[i].start = -1
	}
	return s
}

// record adds v at nowMS and returns the throttle time in milliseconds
// that bound (per second) asks for.
func (s *rateSensor) record(nowMS int64, v float64, windowMS int64, bound float64) int64 {
	s.lastUsed.Store(nowMS)
	s.mu.Lock()
	defer s.mu.Unlock()
	start := nowMS - nowMS%windowMS
	if s.samples[s.cur].start != start {
		s.cur = (s.cur + 1) % len(s.samples)
		s.samples[s.cur] = rateSample{start: start}
	}
	s.samples[s.cur].total += v
	rate, elapsed := s.measure(nowMS, windowMS)
	if rate <= bound {
		return 0
	}
	if bound <= 0 {
		return int64(len(s.samples)) * windowMS
	}
	return int64(math.Min(math.Round((rate-bound)/bound*float64(elapsed)), math.MaxInt32))
}

// unrecord takes v back out of the sample holding nowMS (when it is still
// the current one).
func (s *rateSensor) unrecord(nowMS int64, v float64, windowMS int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if smp := &s.samples[s.cur]; smp.start == nowMS-nowMS%windowMS {
		smp.total -= v
	}
}

// measure returns the rate per second over the live samples and the
// window it was computed over (ms): at least samples-1 full windows, as
// Kafka's Rate.windowSize, so a fresh sensor does not see a burst as a
// huge rate. s.mu must be held.
func (s *rateSensor) measure(nowMS, windowMS int64) (float64, int64) {
	n := int64(len(s.samples))
	total := 0.0
	oldest := nowMS
	for _, smp := range s.samples {
		if smp.start < 0 || nowMS-smp.start >= n*windowMS {
			continue
		}
		total += smp.total
		oldest = min(oldest, smp.start)
	}
	elapsed := nowMS - oldest
	if full := elapsed / windowMS; full < n-1 {
		elapsed += (n - 1 - full) * windowMS
	}
	return total / (float64(elapsed) / 1000), elapsed
}

// quotaUser is the user a principal's quotas are looked up by: the name
// part of "User:alice" (Kafka's principal name).
func quotaUser(principal string) string {
	if i := strings.IndexByte(principal, ':'); i >= 0 {
		return principal[i+1:]
	}
	return principal
}

// recordQuota records value against rq's connection's quota of kind and
// returns the throttle time (0 when none applies).
func (b *Broker) recordQuota(st *raft.State, rq *request, kind quotaKind, value float64) time.Duration {
	if !b.quotas.enabled(st, kind) {
		return 0
	}
	return b.quotas.record(st, kind, quotaUser(rq.c.principal), rq.clientID, value)
}

// throttleMillis converts a throttle time to a response's throttle_time_ms.
func throttleMillis(d time.Duration) int32 {
	return int32(min(d.Milliseconds(), math.MaxInt32))
}

// applyRequestQuota records the handler time of rq against its request
// quota and puts the throttle into the reply (the larger of it and a
// bandwidth throttle already set). Handlers run on the read loop, so a
// reply without a response (acks=0) mutes the connection directly.
func (c *conn) applyRequestQuota(st *raft.State, rq *request, rep *reply, took time.Duration) {
	d := c.b.recordQuota(st, rq, quotaRequest, took.Seconds()*100)
	if d <= 0 {
		return
	}
	ms := throttleMillis(d)
	raise := func(resp kmsg.Response) {
		if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
			if cur, _ := resp.(kmsg.ThrottleResponse).Throttle(); cur < ms {
				tr.SetThrottle(ms)
			}
		}
	}
	switch {
	case rep.resp != nil:
		raise(rep.resp)
	case rep.wait != nil:
		wait := rep.wait
		rep.wait = func(ctx context.Context) kmsg.Response {
			resp := wait(ctx)
			if resp != nil {
				raise(resp)
			}
			return resp
		}
	default:
		c.mute(d)
	}
}

// mute stops the read loop from taking requests for d from now (or
// longer, when an earlier mute ends later). Safe from any goroutine.
func (c *conn) mute(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.muteUntil.Load()
		if cur >= until || c.muteUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitMuted blocks while the connection is muted by a quota; false when
// the connection is closing meanwhile.
func (c *conn) waitMuted() bool {
	until := c.muteUntil.Load()
	if until == 0 {
		return true
	}
	d := time.Until(time.Unix(0, until))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closing:
		return false
	case <-c.ctx.Done():
		return false
	}
}

// muteForResponse mutes the read loop for a finished response's throttle
// time, right after its handler ran (on the read loop), so the very next
// request already waits; the writer, which sends it later, would be too
// late for that. Costs one atomic load while no quota exists.
func (c *conn) muteForResponse(st *raft.State, resp kmsg.Response) {
	if resp == nil || !c.b.quotas.current(st).any {
		return
	}
	if tr, ok := resp.(kmsg.ThrottleResponse); ok {
		if ms, _ := tr.Throttle(); ms > 0 {
			c.mute(time.Duration(ms) * time.Millisecond)
		}
	}
}

// throttleResponse applies a response's throttle time on the writer:
// mute the connection for it, and for versions before KIP-219 (where the
// client does not back off by itself) hold the response back as long, or
// until the connection dies.
func (c *conn) throttleResponse(resp kmsg.Response) {
	tr, ok := resp.(kmsg.ThrottleResponse)
	if !ok {
		return
	}
	ms, after := tr.Throttle()
	if ms <= 0 {
		return
	}
	d := time.Duration(ms) * time.Millisecond
	c.mute(d)
	if after {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// exemptFromRequestQuota reports whether request_percentage leaves req
// unmeasured and unthrottled. Two kinds are exempt:
//   - what a client needs to connect and authenticate (ApiVersions,
//     SaslHandshake, SaslAuthenticate): throttling those would keep a
//     client from ever getting far enough to be measured fairly;
//   - requests only brokers send, which no client quota applies to (Kafka
//     exempts its cluster actions from the request quota): a replica's
//     fetch, WriteTxnMarkers, and AddPartitionsToTxn from v4 (KIP-890:
//     clients stay below v4, partition leaders verify transactions with
//     it). Throttling them would slow replication and transactions for
//     whoever matched a default quota.
func exemptFromRequestQuota(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest, *kmsg.SASLHandshakeRequest, *kmsg.SASLAuthenticateRequest:
		return true
	case *kmsg.FetchRequest:
		return fetchReplicaID(r) >= 0
	case *kmsg.WriteTxnMarkersRequest:
		return true
	case *kmsg.AddPartitionsToTxnRequest:
		return r.Version >= 4
	}
	return false
}

// tokenBucket is Kafka's TokenBucket stat: tokens refill at the quota rate
// up to burst and each mutation takes its permits, possibly into debt.
type tokenBucket struct {
	// mu guards tokens and lastMS.
	mu     sync.Mutex
	tokens float64
	lastMS int64
	// lastUsed is the UnixMilli of the last use (expiry).
	lastUsed atomic.Int64
}

func (tb *tokenBucket) lastUse() int64 { return tb.lastUsed.Load() }

// take charges permits at nowMS. strict refuses (false) while the bucket
// is in debt, charging nothing. The throttle is how long the refill needs
// to bring the bucket back to zero (0 when it is not in debt).
func (tb *tokenBucket) take(nowMS int64, permits, rate, burst float64, strict bool) (bool, time.Duration) {
	tb.lastUsed.Store(nowMS)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.lastMS == 0 {
		tb.tokens = burst
	} else if nowMS > tb.lastMS {
		tb.tokens = math.Min(burst, tb.tokens+rate*float64(nowMS-tb.lastMS)/1000)
	}
	tb.lastMS = max(tb.lastMS, nowMS)
	debt := func() time.Duration {
		if tb.tokens >= 0 {
			return 0
		}
		if rate <= 0 {
			return time.Hour
		}
		return time.Duration(math.Round(-tb.tokens/rate*1000)) * time.Millisecond
	}
	if strict && tb.tokens < 0 {
		return false, debt()
	}
	tb.tokens -= permits
	return true, debt()
}

// mutationQuota is one request's controller_mutation_rate quota; the zero
// value (no quota applies) admits everything.
type mutationQuota struct {
	bucket *tokenBucket
	now    func() time.Time
	rate   float64
	burst  float64
	strict bool
	// throttle is the largest throttle seen while serving the request.
	throttle time.Duration
}

// mutationQuota returns rq's controller mutation quota; strict from the
// given request version on.
func (b *Broker) mutationQuota(rq *request, strictSince int16) *mutationQuota {
	q := &mutationQuota{}
	st := b.node.State()
	m := b.quotas
	if !m.enabled(st, quotaMutation) {
		return q
	}
	key, rate, ok := m.current(st).resolve(quotaMutation, quotaUser(rq.c.principal), rq.clientID)
	if !ok {
		return q
	}
	bucket := sensorFor(m, key, m.now().UnixMilli(), func() *tokenBucket { return &tokenBucket{} })
	q.bucket, q.now, q.rate, q.strict = bucket, m.now, rate, rq.version >= strictSince
	q.burst = rate * float64(m.samples) * float64(m.windowMS) / 1000
	return q
}

// admit charges permits (partitions created or deleted); false means the
// topic is refused with THROTTLING_QUOTA_EXCEEDED.
func (q *mutationQuota) admit(permits int) bool {
	if q.bucket == nil {
		return true
	}
	ok, d := q.bucket.take(q.now().UnixMilli(), float64(permits), q.rate, q.burst, q.strict)
	q.throttle = max(q.throttle, d)
	return ok
}

// throttleMillis is the request's throttle_time_ms.
func (q *mutationQuota) throttleMillis() int32 { return throttleMillis(q.throttle) }

// errThrottlingQuotaMsg is Kafka's message for THROTTLING_QUOTA_EXCEEDED.
const errThrottlingQuotaMsg = "The throttling quota has been exceeded."
