package broker

// Fetch, versions 4-18, from consumers and from followers (a replica id,
// see replica.go: a follower reads up to the log end, and its fetch offset
// tells the leader how far it has copied).
//
// Reads whole batches from the partition logs up to the high watermark
// (read_uncommitted) or the last stable offset (read_committed), honouring
// max_wait_ms / min_bytes with a per-partition waiter list (appends wake
// parked fetches; no polling), partition_max_bytes and the response max_bytes
// (the first partition with data always gets at least one batch, as in
// Kafka). Out-of-range offsets get OFFSET_OUT_OF_RANGE with the log start
// offset and high watermark; current_leader_epoch is checked (FENCED /
// UNKNOWN_LEADER_EPOCH); last_fetched_epoch (v12+) yields a diverging epoch
// when the log does not contain it. v13+ addresses topics by ID
// (UNKNOWN_TOPIC_ID). Fetch sessions (KIP-227, v7+) are served with
// incremental fetches, forgotten topics, epochs and eviction (fetch_session.go).
//
// Versions 0-3 are not served: they cannot carry v2 batches to the old
// clients that send them, and Strom does not down-convert (Kafka 4 dropped
// them too). Isolation level read_committed reads up to the last stable
// offset (the first offset of the oldest open transaction, else the high
// watermark) and lists the aborted transactions of the range from the
// partition's transaction index. Consumer fetches of v11+ may read from
// followers, and with replica.selector.class a leader points consumers in
// other racks at a replica in their own (KIP-392, follower_read.go).
// Consumer fetches are subject to consumer_byte_rate quotas (quota_enforce.go):
// capped to the quota's window bytes, and answered without records (and a
// throttle time) when over it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

func init() { register(&kmsg.FetchRequest{}, 4, 18, (*Broker).handleFetch) }

// fetchItem is one partition to read in one fetch.
type fetchItem struct {
	key              sessKey
	offset           int64
	maxBytes         int32
	currentEpoch     int32
	lastFetchedEpoch int32
	// logStart is a follower's log start offset (-1: not given, or an
	// incremental session entry).
	logStart int64
	sp       *sessPart // the session's entry, when in a session
	// denied is set when the client may not read the partition (ACLs).
	denied bool
}

func (b *Broker) handleFetch(rq *request, req *kmsg.FetchRequest) reply {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	st := b.node.State()
	keyOf := func(topic string, id [16]byte, part int32) sessKey {
		if req.Version >= 13 {
			if t, ok := st.TopicsByID[id]; ok {
				topic = t.Name
			}
			return sessKey{topic: topic, id: id, part: part}
		}
		return sessKey{topic: topic, part: part}
	}
	var items []fetchItem
	fromRequest := func() {
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				items = append(items, fetchItem{
					key: keyOf(rt.Topic, rt.TopicID, rp.Partition), offset: rp.FetchOffset,
					maxBytes: rp.PartitionMaxBytes, currentEpoch: rp.CurrentLeaderEpoch, lastFetchedEpoch: rp.LastFetchedEpoch,
					logStart: rp.LogStartOffset,
				})
			}
		}
	}
	var sess *fetchSession
	incremental := false
	nowT := time.Now()
	switch {
	case req.Version < 7 || req.SessionEpoch == -1:
		// Sessionless full fetch; epoch -1 with an id also closes that session.
		if req.Version >= 7 && req.SessionID != 0 {
			b.sessions.remove(req.SessionID)
		}
		fromRequest()
	case req.SessionEpoch == 0:
		if req.SessionID != 0 {
			b.sessions.remove(req.SessionID)
		}
		fromRequest()
		if sess = b.sessions.create(len(items), nowT); sess != nil {
			sess.mu.Lock()
			for i := range items {
				it := &items[i]
				sp := &sessPart{key: it.key, fetchOffset: it.offset, maxBytes: it.maxBytes, currentEpoch: it.currentEpoch, lastFetchedEpoch: it.lastFetchedEpoch, sentHW: -1, sentStart: -1}
				if _, dup := sess.parts[it.key]; !dup {
					sess.order = append(sess.order, it.key)
				}
				sess.parts[it.key] = sp
				it.sp = sp
			}
			sess.mu.Unlock()
		}
	default:
		sess = b.sessions.get(req.SessionID)
		if sess == nil {
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
			return now(resp)
		}
		sess.mu.Lock()
		if req.SessionEpoch != sess.epoch {
			sess.mu.Unlock()
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			return now(resp)
		}
		sess.epoch++
		if sess.epoch < 0 {
			sess.epoch = 1
		}
		sess.lastUsed = nowT
		for _, ft := range req.ForgottenTopics {
			for _, part := range ft.Partitions {
				k := keyOf(ft.Topic, ft.TopicID, part)
				if _, ok := sess.parts[k]; ok {
					delete(sess.parts, k)
					sess.order = removeKey(sess.order, k)
				}
			}
		}
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				k := keyOf(rt.Topic, rt.TopicID, rp.Partition)
				sp, ok := sess.parts[k]
				if !ok {
					sp = &sessPart{key: k, sentHW: -1, sentStart: -1}
					sess.parts[k] = sp
					sess.order = append(sess.order, k)
				}
				sp.fetchOffset, sp.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
				sp.currentEpoch, sp.lastFetchedEpoch = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch
			}
		}
		for _, k := range sess.order {
			sp := sess.parts[k]
			items = append(items, fetchItem{key: k, offset: sp.fetchOffset, maxBytes: sp.maxBytes, currentEpoch: sp.currentEpoch, lastFetchedEpoch: sp.lastFetchedEpoch, logStart: -1, sp: sp})
		}
		incremental = true
		sess.mu.Unlock()
	}
	if sess != nil {
		resp.SessionID = sess.id
	}
	b.authorizeFetch(rq, req, items)
	maxWait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	f := &fetchOp{b: b, req: req, resp: resp, items: items, sess: sess, incremental: incremental}
	if fetchReplicaID(req) < 0 && b.quotas.enabled(st, quotaFetch) {
		// Captured here, on the read loop: build may run on the writer.
		user := quotaUser(rq.c.principal)
		if _, bound, ok := b.quotas.current(st).resolve(quotaFetch, user, rq.clientID); ok {
			f.quotaUser, f.quotaClient, f.quotaOn = user, rq.clientID, true
			f.quotaCap = b.quotas.windowBytes(bound)
			if req.MaxBytes <= 0 || float64(req.MaxBytes) > f.quotaCap {
				req.MaxBytes = int32(max(1, min(f.quotaCap, math.MaxInt32)))
			}
		}
	}
	if maxWait <= 0 || req.MinBytes <= 0 {
		return now(f.build(f.read()))
	}
	return reply{wait: func(ctx context.Context) kmsg.Response { return f.wait(ctx, maxWait) }}
}

// authorizeFetch marks the items rq may not read, as Kafka does once per
// request: a follower (replica id >= 0) needs CLUSTER_ACTION on the cluster
// for every partition, a consumer READ on each topic. Denied partitions are
// answered TOPIC_AUTHORIZATION_FAILED, before their existence is checked.
func (b *Broker) authorizeFetch(rq *request, req *kmsg.FetchRequest, items []fetchItem) {
	if !b.authz.enabled {
		return
	}
	if fetchReplicaID(req) >= 0 {
		denied := !b.authorizedCluster(rq, opClusterAction)
		for i := range items {
			items[i].denied = denied
		}
		return
	}
	byTopic := map[string]bool{}
	for i := range items {
		topic := items[i].key.topic
		denied, ok := byTopic[topic]
		if !ok {
			denied = !b.authorized(rq, opRead, resTopic, topic)
			byTopic[topic] = denied
		}
		items[i].denied = denied
	}
}

func removeKey(ks []sessKey, k sessKey) []sessKey {
	for i, x := range ks {
		if x == k {
			return append(ks[:i], ks[i+1:]...)
		}
	}
	return ks
}

// fetchOp is one fetch being served.
type fetchOp struct {
	b           *Broker
	req         *kmsg.FetchRequest
	resp        *kmsg.FetchResponse
	items       []fetchItem
	sess        *fetchSession
	incremental bool
	// quotaOn is set for consumer fetches a consumer_byte_rate quota
	// applies to; quotaUser and quotaClient are whom build charges the
	// bytes, quotaCap the quota's window bytes (recordFetch).
	quotaOn     bool
	quotaUser   string
	quotaClient string
	quotaCap    float64
}

// fetchResult is the read outcome of one item.
type fetchResult struct {
	out    kmsg.FetchResponseTopicPartition
	isErr  bool
	hasRec bool
	// immediate asks for an answer without waiting for min_bytes: a
	// diverging epoch or a preferred read replica, as in Kafka.
	immediate bool
	// follower marks records read from a replica this broker follows.
	follower bool
	// replThrottled marks a follower fetch of a partition whose leader
	// replication is throttled: its bytes count against the leader rate
	// (replication_throttle.go).
	replThrottled bool
	// sl holds the records still in the segment file; out.RecordBatches
	// is a one-byte marker the writer replaces with them (see
	// fetchResponse). Whoever drops a result without handing it on
	// releases sl.
	sl *storage.Slice
}

// releaseResults drops the slices of results that will not be sent.
func releaseResults(rs []fetchResult) {
	for i := range rs {
		rs[i].sl.Release()
		rs[i].sl = nil
	}
}

// wait parks until min_bytes are available, max_wait passes or the broker
// shuts down, then answers. Waiters are registered before the first read, so
// an append between the read and the park is never missed.
func (f *fetchOp) wait(ctx context.Context, maxWait time.Duration) kmsg.Response {
	ch := make(chan struct{}, 1)
	var parked []*partition
	for _, it := range f.items {
		if p := f.b.parts.get(it.key.topic, it.key.part); p != nil {
			p.addWaiter(ch)
			parked = append(parked, p)
		}
	}
	defer func() {
		for _, p := range parked {
			p.removeWaiter(ch)
		}
	}()
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		results, size, anyErr := f.readAll()
		if size >= int(f.req.MinBytes) || anyErr {
			return f.build(results)
		}
		select {
		case <-ch:
			releaseResults(results)
		case <-timer.C:
			releaseResults(results)
			return f.build(f.read())
		case <-ctx.Done():
			return f.build(results)
		}
	}
}

func (f *fetchOp) read() []fetchResult {
	r, _, _ := f.readAll()
	return r
}

// readAll reads every item within the partition and response byte limits.
func (f *fetchOp) readAll() ([]fetchResult, int, bool) {
	st := f.b.node.State()
	results := make([]fetchResult, len(f.items))
	remaining := int(f.req.MaxBytes)
	if remaining <= 0 {
		remaining = 1 << 30
	}
	total := 0
	anyErr := false
	for i, it := range f.items {
		limit := int(it.maxBytes)
		if limit > remaining {
			limit = remaining
		}
		r := f.b.fetchPartition(st, f.req, it, limit, total == 0)
		if r.isErr || r.immediate {
			anyErr = true
		}
		n := 0
		if r.hasRec {
			n = r.sl.Len()
		}
		total += n
		remaining -= n
		results[i] = r
	}
	return results, total, anyErr
}

// fetchPartition reads one partition. minOne allows one batch beyond limit
// (the first partition with data), as Kafka does so a large batch can never
// block a consumer.
func (b *Broker) fetchPartition(st *raft.State, req *kmsg.FetchRequest, it fetchItem, limit int, minOne bool) fetchResult {
	out := kmsg.NewFetchResponseTopicPartition()
	out.Partition = it.key.part
	out.HighWatermark, out.LastStableOffset, out.LogStartOffset = -1, -1, -1
	out.PreferredReadReplica = -1
	// Kafka answers "no records" with an empty record set, never null:
	// librdkafka rejects a null one ("invalid MessageSetSize -1").
	out.RecordBatches = []byte{}
	// An errored partition reports no offsets (-1), as Kafka's replica
	// manager does for every read error, OFFSET_OUT_OF_RANGE included.
	fail := func(e *kerr.Error) fetchResult {
		out.ErrorCode = e.Code
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = -1, -1, -1
		return fetchResult{out: out, isErr: true}
	}
	if req.Version >= 13 {
		if _, ok := st.TopicsByID[it.key.id]; !ok {
			return fail(kerr.UnknownTopicID)
		}
	}
	if it.denied {
		return fail(kerr.TopicAuthorizationFailed)
	}
	replica := fetchReplicaID(req)
	mayFollow := replica < 0 && req.Version >= minFollowerReadVersion
	p, leader, e := b.lookupReadPartition(st, it.key.topic, it.key.part, mayFollow)
	if e != nil {
		return fail(e)
	}
	if e := checkLeaderEpoch(it.currentEpoch, p.leaderEpoch.Load()); e != nil {
		return fail(e)
	}
	lg := p.log
	if rack := consumerRack(req); leader && rack != "" {
		if pref := b.preferredReadReplica(st, p, rack, it.offset); pref >= 0 {
			// Kafka skips the read and answers at once: the client moves
			// to pref and fetches there.
			out.HighWatermark, out.LastStableOffset, out.LogStartOffset = lg.HighWatermark(), lastStable(lg), lg.LogStartOffset()
			out.PreferredReadReplica = pref
			return fetchResult{out: out, immediate: true}
		}
	}
	diverging := false
	if it.lastFetchedEpoch >= 0 && req.Version >= 12 {
		ep, end := lg.EndOffsetForEpoch(it.lastFetchedEpoch)
		if ep != it.lastFetchedEpoch || end < it.offset {
			out.DivergingEpoch.Epoch, out.DivergingEpoch.EndOffset = ep, end
			diverging = true
		}
	}
	if replica >= 0 && !diverging && it.offset >= lg.LogStartOffset() && it.offset <= lg.EndOffset() {
		// A follower whose log agrees with ours: its fetch offset is its
		// durable log end, which may move the high watermark read below.
		if e := p.followerFetched(b, replica, it.offset, it.logStart); e != nil {
			return fail(e)
		}
	}
	hw := lg.HighWatermark()
	lso := lastStable(lg)
	out.HighWatermark, out.LastStableOffset, out.LogStartOffset = hw, lso, lg.LogStartOffset()
	if diverging {
		return fetchResult{out: out, immediate: true}
	}
	readCommitted := req.IsolationLevel == 1
	upTo := hw
	replThrottled := false
	switch {
	case replica >= 0:
		upTo = lg.EndOffset() // followers copy everything, committed or not
		var hold bool
		replThrottled, hold = b.replThrottle.leaderThrottled(st, p.topic, p.index, p.inISR(replica))
		if hold {
			return fetchResult{out: out} // a catching-up replica over the leader rate waits
		}
	case readCommitted:
		upTo = lso
	}
	if limit <= 0 && !minOne {
		if it.offset < out.LogStartOffset || it.offset > lg.EndOffset() {
			return fail(kerr.OffsetOutOfRange)
		}
		return fetchResult{out: out}
	}
	readMax := limit
	if readMax <= 0 {
		readMax = 1
	}
	sl, err := lg.Read(it.offset, readMax, upTo)
	if err != nil {
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			return fail(kerr.OffsetOutOfRange)
		}
		b.log.Warn("fetch read", "topic", p.topic, "partition", p.index, "offset", it.offset, "err", err)
		return fail(storageErr(err))
	}
	if sl.Len() == 0 || (!minOne && sl.Len() > limit) {
		sl.Release()
		return fetchResult{out: out}
	}
	if readCommitted {
		ab, err := lg.AbortedTransactions(it.offset, upTo)
		if err != nil {
			sl.Release()
			return fail(storageErr(err))
		}
		for _, a := range ab {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			out.AbortedTransactions = append(out.AbortedTransactions, at)
		}
	}
	out.RecordBatches = recordsMarker()
	return fetchResult{out: out, hasRec: true, sl: sl, follower: !leader, replThrottled: replThrottled}
}

// fetchReplicaID is the broker id of a follower's fetch, or -1 for a
// consumer (replica_id before v15, replica_state from v15 on, KIP-903).
func fetchReplicaID(req *kmsg.FetchRequest) int32 {
	if req.Version >= 15 {
		return req.ReplicaState.ID
	}
	return req.ReplicaID
}

// recordsMarker returns the one byte that stands in for a partition's
// records while kmsg encodes the response. Each call returns its own slice, so
// the writer can tell markers apart by position after decoding the frame.
func recordsMarker() []byte { return []byte{0} }

// fetchResponse is a Fetch response whose record bytes are still in the
// segment files. kmsg encodes it with a one-byte marker in place of each
// partition's records, so the encoded frame stays a few KB whatever the
// records weigh; the connection's writer then finds each marker by decoding
// the frame with kmsg (byte fields decode as sub-slices of their source),
// writes the records' length prefix with kbin in place of the marker's, and
// sends the records from the file in its place: large runs by sendfile(2),
// small ones read into the bytes written around them. kmsg and kbin stay the
// only encoders of the response format.
type fetchResponse struct {
	*kmsg.FetchResponse
	// slices holds one entry per encoded partition, in encoding order (topic
	// by topic, partition by partition); nil where there are no records.
	slices []*storage.Slice
}

// sizeHint is an upper estimate of the encoded response size (markers, not
// records), so the writer can size its buffer once instead of regrowing it
// while encoding.
func (r *fetchResponse) sizeHint() int {
	n := 64
	for i := range r.Topics {
		t := &r.Topics[i]
		n += 64 + len(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += 96 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}

// sendfileMin is the smallest record run the writer sends with sendfile(2)
// instead of reading it into the frame: below it, the extra syscalls cost
// more than the copy saves.
const sendfileMin = 64 << 10

// recordSpan is where one partition's records belong in the encoded frame:
// off is the position of its one-byte marker.
type recordSpan struct {
	off int
	sl  *storage.Slice
}

// locate finds the markers in the encoded frame, in frame order, and checks
// that each sits right behind markerPrefix, the length prefix of a one-byte
// field, so splicing cannot corrupt the frame.
func (r *fetchResponse) locate(frame []byte, body int, markerPrefix []byte) ([]recordSpan, error) {
	var dec kmsg.FetchResponse
	dec.SetVersion(r.Version)
	// The decoded value is dropped before frame is reused, so its strings
	// may alias frame.
	if err := dec.UnsafeReadFrom(frame[body:]); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrResponseLayout, err)
	}
	var spans []recordSpan
	k := 0
	for i := range dec.Topics {
		for j := range dec.Topics[i].Partitions {
			if k >= len(r.slices) {
				return nil, fmt.Errorf("%w: more partitions encoded than read (%d)", ErrResponseLayout, len(r.slices))
			}
			sl := r.slices[k]
			k++
			if sl == nil {
				continue
			}
			rb := dec.Topics[i].Partitions[j].RecordBatches
			off, ok := offsetIn(frame, rb)
			if !ok || len(rb) != 1 || off-len(markerPrefix) < body || !bytes.Equal(frame[off-len(markerPrefix):off], markerPrefix) {
				return nil, fmt.Errorf("%w: partition %d: no records marker (%d bytes)", ErrResponseLayout, k-1, len(rb))
			}
			spans = append(spans, recordSpan{off: off, sl: sl})
		}
	}
	if k != len(r.slices) {
		return nil, fmt.Errorf("%w: %d partitions encoded, %d read", ErrResponseLayout, k, len(r.slices))
	}
	return spans, nil
}

// appendRecordsPrefix writes the length prefix of n record bytes as kmsg
// would have written it for the records themselves.
func appendRecordsPrefix(dst []byte, n int, flexible bool) []byte {
	if flexible {
		return kbin.AppendUvarint(dst, uint32(n)+1)
	}
	return kbin.AppendInt32(dst, int32(n))
}

// offsetIn returns the position of sub inside frame; sub must be a
// sub-slice of frame (kmsg decodes byte fields as sub-slices of their
// source). Pointers are only subtracted, never converted back.
func offsetIn(frame, sub []byte) (int, bool) {
	if len(sub) == 0 || len(frame) == 0 {
		return 0, false
	}
	d := uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(frame)))
	if d > uintptr(len(frame)) || int(d)+len(sub) > len(frame) {
		return 0, false
	}
	return int(d), true
}

// writeTo sends the encoded frame (size prefix at 0, response body at body)
// to w with each marker replaced by its partition's records and length
// prefix, and the size prefix rewritten to match; then it releases the
// slices. Runs of at least minSendfile bytes go straight from the segment
// file with Slice.WriteTo (sendfile(2) on a TCP connection); everything else
// is assembled in *scratch, which is flushed with one Write before each
// sendfile and at the end. An error means the connection must be closed: part
// of the frame may have been sent.
func (r *fetchResponse) writeTo(w io.Writer, frame []byte, body, minSendfile int, scratch *[]byte) error {
	defer r.release()
	if !r.hasRecords() {
		_, err := w.Write(frame)
		return err
	}
	flexible := r.IsFlexible()
	markerPrefix := appendRecordsPrefix(nil, 1, flexible)
	prefix := len(markerPrefix)
	spans, err := r.locate(frame, body, markerPrefix)
	if err != nil {
		return err
	}
	size := len(frame) - 4
	for _, sp := range spans {
		n := sp.sl.Len()
		size += len(appendRecordsPrefix(nil, n, flexible)) + n - prefix - 1
	}
	out := kbin.AppendInt32((*scratch)[:0], int32(size))
	defer func() { *scratch = out[:0] }()
	prev := 4
	for _, sp := range spans {
		n := sp.sl.Len()
		out = append(out, frame[prev:sp.off-prefix]...)
		out = appendRecordsPrefix(out, n, flexible)
		prev = sp.off + 1
		if n < minSendfile {
			out = slices.Grow(out, n)
			if err := sp.sl.ReadInto(out[len(out) : len(out)+n]); err != nil {
				return fmt.Errorf("fill fetch response: %w", err)
			}
			out = out[:len(out)+n]
			continue
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		out = out[:0]
		m, err := sp.sl.WriteTo(w)
		if err == nil && m != int64(n) {
			err = fmt.Errorf("send records: %d of %d bytes", m, n)
		}
		if err != nil {
			return err
		}
	}
	out = append(out, frame[prev:]...)
	_, err = w.Write(out)
	return err
}

func (r *fetchResponse) hasRecords() bool {
	for _, sl := range r.slices {
		if sl != nil {
			return true
		}
	}
	return false
}

// release drops the slices; the writer calls it whether or not the response
// was sent.
func (r *fetchResponse) release() {
	for i, sl := range r.slices {
		sl.Release()
		r.slices[i] = nil
	}
}

// lastStable is the partition's last stable offset: the first offset of
// its oldest open transaction, or the high watermark when that is lower or
// no transaction is open.
func lastStable(lg *storage.Log) int64 {
	hw := lg.HighWatermark()
	if first, ok := lg.FirstUnstableOffset(); ok && first < hw {
		return first
	}
	return hw
}

// checkLeaderEpoch compares a request's current leader epoch (-1: not given)
// with ours, as Kafka's Partition does.
func checkLeaderEpoch(requested, current int32) *kerr.Error {
	switch {
	case requested < 0 || requested == current:
		return nil
	case requested < current:
		return kerr.FencedLeaderEpoch
	default:
		return kerr.UnknownLeaderEpoch
	}
}

// build assembles the response. In an incremental session only partitions
// with news are included: records, an error, or a high watermark or log start
// offset the client has not seen. Partitions that returned records move to
// the end of the session order so no partition starves.
func (f *fetchOp) build(results []fetchResult) kmsg.Response {
	resp := f.resp
	if fetchReplicaID(f.req) >= 0 {
		n := 0
		for i := range results {
			if results[i].replThrottled && results[i].hasRec {
				n += results[i].sl.Len()
			}
		}
		f.b.replThrottle.record(f.b.replThrottle.leader, n)
	}
	if f.quotaOn {
		n := 0
		for i := range results {
			if results[i].hasRec {
				n += results[i].sl.Len()
			}
		}
		if n > 0 {
			d, admitted := f.b.quotas.recordFetch(f.b.node.State(), f.quotaUser, f.quotaClient, n, f.quotaCap)
			resp.ThrottleMillis = throttleMillis(d)
			if !admitted {
				// Kafka's throttled fetch response: no partitions, the
				// session left as it was (the client fetches the same
				// offsets again after the throttle).
				releaseResults(results)
				return &fetchResponse{FetchResponse: resp}
			}
		}
	}
	if f.sess != nil {
		f.sess.mu.Lock()
		defer f.sess.mu.Unlock()
	}
	out := &fetchResponse{FetchResponse: resp}
	var moved []sessKey
	for i, it := range f.items {
		r := results[i]
		if sp := it.sp; sp != nil {
			news := r.hasRec || r.isErr || r.out.HighWatermark != sp.sentHW || r.out.LogStartOffset != sp.sentStart || r.out.DivergingEpoch.Epoch >= 0 ||
				r.out.PreferredReadReplica >= 0
			sp.sentHW, sp.sentStart = r.out.HighWatermark, r.out.LogStartOffset
			if r.hasRec {
				moved = append(moved, it.key)
			}
			if f.incremental && !news {
				r.sl.Release()
				continue
			}
		}
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != it.key.topic || resp.Topics[n-1].TopicID != it.key.id {
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = it.key.topic, it.key.id
			resp.Topics = append(resp.Topics, t)
			n++
		}
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, r.out)
		out.slices = append(out.slices, r.sl)
		if r.hasRec && r.follower {
			f.b.followerReads.Add(1)
		}
	}
	if f.sess != nil && len(moved) > 0 {
		for _, k := range moved {
			if _, ok := f.sess.parts[k]; ok {
				f.sess.order = append(removeKey(f.sess.order, k), k)
			}
		}
	}
	return out
}
