package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/storage"
)

// findTxnCoordinator asks for the transaction coordinator of id, as clients
// do first; the first such request creates __transaction_state.
func findTxnCoordinator(t *testing.T, c *rawConn, id string) {
	t.Helper()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKeys = 1, []string{id}
	if r := send[*kmsg.FindCoordinatorResponse](t, c, fc, 4); r.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("find coordinator: %+v", r.Coordinators[0])
	}
}

// TestTxnWireErrors checks the error codes of the transaction APIs per
// request version: INVALID_TRANSACTION_TIMEOUT, PRODUCER_FENCED from the
// KIP-588 versions on and INVALID_PRODUCER_EPOCH before them,
// INVALID_PRODUCER_ID_MAPPING, INVALID_TXN_STATE for transactional produce
// outside a transaction, AddPartitionsToTxn v4 verify_only, and the
// Describe/ListTransactions answers.
func TestTxnWireErrors(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.TransactionTopicPartitions = 3 })
	createTopic(t, newAdmin(t, b), "w", 2, nil)
	c := rawClient(t, b)
	findTxnCoordinator(t, c, "wid")

	initReq := func(timeout int32) *kmsg.InitProducerIDRequest {
		r := kmsg.NewPtrInitProducerIDRequest()
		r.TransactionalID, r.TransactionTimeoutMillis = kmsg.StringPtr("wid"), timeout
		return r
	}
	if r := send[*kmsg.InitProducerIDResponse](t, c, initReq(900001), 4); r.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above max: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ir := send[*kmsg.InitProducerIDResponse](t, c, initReq(60000), 4)
	if ir.ErrorCode != 0 || ir.ProducerEpoch != 0 {
		t.Fatalf("init: %+v", ir)
	}
	pid := ir.ProducerID
	// A second init fences epoch 0.
	if r := send[*kmsg.InitProducerIDResponse](t, c, initReq(60000), 4); r.ErrorCode != 0 || r.ProducerEpoch != 1 || r.ProducerID != pid {
		t.Fatalf("second init: %+v", r)
	}

	add := func(v int16, pid int64, epoch int16) int16 {
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch = "wid", pid, epoch
		tp := kmsg.NewAddPartitionsToTxnRequestTopic()
		tp.Topic, tp.Partitions = "w", []int32{0}
		r.Topics = append(r.Topics, tp)
		resp := send[*kmsg.AddPartitionsToTxnResponse](t, c, r, v)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	for _, tc := range []struct {
		v     int16
		pid   int64
		epoch int16
		want  *kerr.Error
	}{
		{1, pid, 0, kerr.InvalidProducerEpoch},
		{2, pid, 0, kerr.ProducerFenced},
		{3, pid + 1, 1, kerr.InvalidProducerIDMapping},
	} {
		if got := add(tc.v, tc.pid, tc.epoch); got != tc.want.Code {
			t.Errorf("AddPartitionsToTxn v%d pid %d epoch %d: %v, want %v", tc.v, tc.pid, tc.epoch, kerr.ErrorForCode(got), tc.want)
		}
	}

	verify := func() int16 {
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = "wid", pid, 1, true
		tp := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tp.Topic, tp.Partitions = "w", []int32{0}
		tr.Topics = append(tr.Topics, tp)
		r.Transactions = append(r.Transactions, tr)
		resp := send[*kmsg.AddPartitionsToTxnResponse](t, c, r, 4)
		return resp.Transactions[0].Topics[0].Partitions[0].ErrorCode
	}
	if got := verify(); got != kerr.InvalidTxnState.Code {
		t.Errorf("verify before add: %v", kerr.ErrorForCode(got))
	}
	if got := add(3, pid, 1); got != 0 {
		t.Fatalf("add: %v", kerr.ErrorForCode(got))
	}
	if got := verify(); got != 0 {
		t.Errorf("verify after add: %v", kerr.ErrorForCode(got))
	}

	dr := kmsg.NewPtrDescribeTransactionsRequest()
	dr.TransactionalIDs = []string{"wid", "nope"}
	d := send[*kmsg.DescribeTransactionsResponse](t, c, dr, 0)
	if s := d.TransactionStates[0]; s.State != "Ongoing" || s.ProducerID != pid || s.ProducerEpoch != 1 || len(s.Topics) != 1 {
		t.Errorf("describe: %+v", s)
	}
	if s := d.TransactionStates[1]; s.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Errorf("describe unknown: %+v", s)
	}
	lr := kmsg.NewPtrListTransactionsRequest()
	lr.StateFilters = []string{"Ongoing", "Bogus"}
	l := send[*kmsg.ListTransactionsResponse](t, c, lr, 1)
	if len(l.TransactionStates) != 1 || l.TransactionStates[0].TransactionalID != "wid" || len(l.UnknownStateFilters) != 1 {
		t.Errorf("list: %+v", l)
	}

	end := func(v int16, epoch int16, commit bool) int16 {
		r := kmsg.NewPtrEndTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = "wid", pid, epoch, commit
		return send[*kmsg.EndTxnResponse](t, c, r, v).ErrorCode
	}
	if got := end(1, 0, true); got != kerr.InvalidProducerEpoch.Code {
		t.Errorf("EndTxn v1 stale epoch: %v", kerr.ErrorForCode(got))
	}
	if got := end(3, 0, true); got != kerr.ProducerFenced.Code {
		t.Errorf("EndTxn v3 stale epoch: %v", kerr.ErrorForCode(got))
	}
	if got := end(3, 1, true); got != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(got))
	}
	if got := end(3, 1, true); got != 0 {
		t.Errorf("commit retry: %v", kerr.ErrorForCode(got))
	}
	if got := end(3, 1, false); got != kerr.InvalidTxnState.Code {
		t.Errorf("abort after commit: %v", kerr.ErrorForCode(got))
	}
	// KIP-890 verification: a transactional batch for a partition outside
	// an ongoing transaction is refused.
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "w"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 0
	pp.Records = mkBatch(1, time.Now().UnixMilli(), func(h *storage.BatchHeader, _ []storage.Record) {
		h.Attributes |= 1 << 4
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, 1, 0
	})
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	if r := send[*kmsg.ProduceResponse](t, c, pr, 9); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("transactional produce after commit: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	// The partition holds the COMMIT marker alone.
	p := b.parts.get("w", 0)
	if p.log.EndOffset() != 1 {
		t.Fatalf("w-0 end offset %d, want 1 (the marker)", p.log.EndOffset())
	}
	// WriteTxnMarkers from a tool writes an ABORT marker the same way.
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = pid, 1, false
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "w", []int32{1}
	mk.Topics = append(mk.Topics, mt)
	wm.Markers = append(wm.Markers, mk)
	if r := send[*kmsg.WriteTxnMarkersResponse](t, c, wm, 1); r.Markers[0].Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("write markers: %+v", r)
	}
	if got := b.parts.get("w", 1).log.EndOffset(); got != 1 {
		t.Errorf("w-1 end offset %d after WriteTxnMarkers, want 1", got)
	}
}

// TestTxnV2ProduceWhileMarkersPending: a transaction version 2 producer gets
// its bumped epoch from EndTxn before the markers are written, and may send
// the next transaction's first batch at once. While the markers are pending
// the batch must be refused with a retriable error, as Kafka's coordinator
// answers CONCURRENT_TRANSACTIONS: appended before the pending marker, it
// would be committed or aborted with the previous transaction, and its own
// transaction would never list the partition.
func TestTxnV2ProduceWhileMarkersPending(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.TransactionTopicPartitions = 1 })
	createTopic(t, newAdmin(t, b), "mp", 1, nil)
	c := rawClient(t, b)
	ir := kmsg.NewPtrInitProducerIDRequest()
	ir.TransactionalID, ir.TransactionTimeoutMillis = kmsg.StringPtr("mpid"), 60000
	findTxnCoordinator(t, c, "mpid")
	var init *kmsg.InitProducerIDResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		init = send[*kmsg.InitProducerIDResponse](t, c, ir, 5)
		if e := kerr.ErrorForCode(init.ErrorCode); e == nil || !kerr.IsRetriable(e) || time.Now().After(deadline) {
			break
		}
	}
	if init.ErrorCode != 0 {
		t.Fatalf("init: %v", kerr.ErrorForCode(init.ErrorCode))
	}
	pid := init.ProducerID
	produce := func(v, epoch int16) *kerr.Error {
		t.Helper()
		pr := kmsg.NewPtrProduceRequest()
		pr.Acks, pr.TimeoutMillis, pr.TransactionID = -1, 5000, kmsg.StringPtr("mpid")
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "mp"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = mkBatch(1, time.Now().UnixMilli(), func(h *storage.BatchHeader, _ []storage.Record) {
			h.Attributes |= 1 << 4
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, epoch, 0
		})
		pt.Partitions = append(pt.Partitions, pp)
		pr.Topics = append(pr.Topics, pt)
		r := send[*kmsg.ProduceResponse](t, c, pr, v)
		if rp := r.Topics[0].Partitions[0]; rp.ErrorCode != 0 {
			if rp.ErrorMessage != nil {
				t.Logf("Produce v%d: %s", v, *rp.ErrorMessage)
			}
			return kerr.ErrorForCode(rp.ErrorCode).(*kerr.Error)
		}
		return nil
	}
	// The first transaction writes to mp-0, which Produce v12 adds to it.
	if e := produce(12, init.ProducerEpoch); e != nil {
		t.Fatalf("first transaction's produce: %v", e)
	}
	// Its EndTxn v5 bumped the epoch and its markers are being written:
	// the state a producer's next request meets after EndTxn answered.
	co := b.txns
	co.mu.Lock()
	m := co.txns["mpid"]
	res := m.EndTxnV2(pid, init.ProducerEpoch, true, time.Now().UnixMilli())
	co.inflight["mpid"] = true
	next := m.Epoch
	co.mu.Unlock()
	if res.Err != nil || !res.Prepared {
		t.Fatalf("end: %+v", res)
	}
	end := b.parts.get("mp", 0).log.EndOffset()
	for _, tc := range []struct {
		v    int16
		want *kerr.Error
	}{
		{12, kerr.ConcurrentTransactions}, // transaction version 2 clients retry it
		{11, kerr.NotEnoughReplicas},      // older ones do not know it
	} {
		if e := produce(tc.v, next); e != tc.want {
			t.Errorf("Produce v%d of the next transaction while markers are pending: %v, want %v", tc.v, e, tc.want)
		}
	}
	if got := b.parts.get("mp", 0).log.EndOffset(); got != end {
		t.Errorf("mp-0 end offset %d, want %d: a batch went in ahead of the pending marker", got, end)
	}
	co.mu.Lock()
	delete(co.inflight, "mpid") // the tick writes the markers now
	co.mu.Unlock()
}
