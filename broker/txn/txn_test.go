package txn

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

var tpA = TopicPartition{"a", 0}

// op is one step applied to a Metadata in a table test.
type op struct {
	name string
	do   func(m *Metadata) *kerr.Error
	// wantErr and wantState are checked after the step.
	wantErr   *kerr.Error
	wantState State
	wantEpoch int16
}

func initOp(pid int64, epoch int16) func(*Metadata) *kerr.Error {
	return func(m *Metadata) *kerr.Error { return m.InitProducerID(pid, epoch, 60000, 1).Err }
}
func addOp(epoch int16) func(*Metadata) *kerr.Error {
	return func(m *Metadata) *kerr.Error { return m.AddPartitions(7, epoch, []TopicPartition{tpA}, 10) }
}
func endOp(epoch int16, commit bool) func(*Metadata) *kerr.Error {
	return func(m *Metadata) *kerr.Error { return m.EndTxn(7, epoch, commit, 20).Err }
}
func completeOp(m *Metadata) *kerr.Error { m.Complete(30); return nil }

func TestTransitions(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
	}{
		{"commit", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"add", addOp(0), nil, Ongoing, 0},
			{"add again", addOp(0), nil, Ongoing, 0},
			{"end", endOp(0, true), nil, PrepareCommit, 0},
			{"add while preparing", addOp(0), kerr.ConcurrentTransactions, PrepareCommit, 0},
			{"end retry while preparing", endOp(0, true), kerr.ConcurrentTransactions, PrepareCommit, 0},
			{"complete", completeOp, nil, CompleteCommit, 0},
			{"end retry after completion", endOp(0, true), nil, CompleteCommit, 0},
			{"abort after commit", endOp(0, false), kerr.InvalidTxnState, CompleteCommit, 0},
			{"next txn", addOp(0), nil, Ongoing, 0},
		}},
		{"abort", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"add", addOp(0), nil, Ongoing, 0},
			{"end", endOp(0, false), nil, PrepareAbort, 0},
			{"commit while aborting", endOp(0, true), kerr.InvalidTxnState, PrepareAbort, 0},
			{"complete", completeOp, nil, CompleteAbort, 0},
		}},
		{"end without transaction", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"commit", endOp(0, true), kerr.InvalidTxnState, Empty, 0},
		}},
		{"zombie fenced by new instance", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"add", addOp(0), nil, Ongoing, 0},
			{"new instance aborts open txn", initOp(-1, -1), kerr.ConcurrentTransactions, PrepareAbort, 1},
			{"zombie adds", addOp(0), kerr.ProducerFenced, PrepareAbort, 1},
			{"new instance retries while aborting", initOp(-1, -1), kerr.ConcurrentTransactions, PrepareAbort, 1},
			{"abort complete", completeOp, nil, CompleteAbort, 1},
			{"new instance retries", initOp(-1, -1), nil, Empty, 2},
			{"zombie ends", endOp(0, true), kerr.ProducerFenced, Empty, 2},
			{"new instance works", addOp(2), nil, Ongoing, 2},
		}},
		{"KIP-360 re-init with own epoch", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"re-init", initOp(7, 0), nil, Empty, 1},
			{"retry of the re-init", initOp(7, 0), nil, Empty, 1},
			{"stale epoch", initOp(7, 5), kerr.ProducerFenced, Empty, 1},
			{"foreign id", initOp(8, 1), kerr.ProducerFenced, Empty, 1},
		}},
		{"first init with a producer id the coordinator never gave", []op{
			{"init", initOp(3, 4), nil, Empty, 0},
			{"re-init", initOp(7, 0), nil, Empty, 1},
			{"the unknown id again", initOp(3, 4), kerr.ProducerFenced, Empty, 1},
		}},
		{"foreign producer id", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"add", func(m *Metadata) *kerr.Error { return m.AddPartitions(99, 0, nil, 1) }, kerr.InvalidProducerIDMapping, Empty, 0},
		}},
		{"timeout", []op{
			{"init", initOp(-1, -1), nil, Empty, 0},
			{"add at 10", addOp(0), nil, Ongoing, 0},
			{"not yet", func(m *Metadata) *kerr.Error {
				if m.TimeOut(10 + 60000) {
					return kerr.UnknownServerError
				}
				return nil
			}, nil, Ongoing, 0},
			{"expired", func(m *Metadata) *kerr.Error {
				if !m.TimeOut(10 + 60001) {
					return kerr.UnknownServerError
				}
				return nil
			}, nil, PrepareAbort, 1},
			{"zombie produces on", addOp(0), kerr.ProducerFenced, PrepareAbort, 1},
			{"complete", completeOp, nil, CompleteAbort, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New("id", 7, 60000, 0)
			for _, o := range tt.ops {
				if err := o.do(m); err != o.wantErr {
					t.Fatalf("%s: error %v, want %v", o.name, err, o.wantErr)
				}
				if m.State != o.wantState || m.Epoch != o.wantEpoch {
					t.Fatalf("%s: state %s epoch %d, want %s epoch %d", o.name, m.State, m.Epoch, o.wantState, o.wantEpoch)
				}
				if (m.State == Empty || m.State == CompleteCommit || m.State == CompleteAbort) && len(m.Partitions) != 0 {
					t.Fatalf("%s: %s with partitions %v", o.name, m.State, m.Partitions)
				}
			}
		})
	}
}

func TestEpochExhaustion(t *testing.T) {
	m := New("id", 7, 1000, 0)
	m.Epoch = maxEpoch
	res := m.InitProducerID(-1, -1, 1000, 1)
	if !res.NeedNewID || res.Err != nil {
		t.Fatalf("init at max epoch: %+v", res)
	}
	m.Rotate(8)
	if m.ProducerID != 8 || m.Epoch != 0 {
		t.Fatalf("rotated to %d/%d", m.ProducerID, m.Epoch)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	m := New("tid", 42, 30000, 5)
	m.Epoch = 3
	if e := m.AddPartitions(42, 3, []TopicPartition{{"b", 1}, {"a", 2}, {"a", 0}}, 9); e != nil {
		t.Fatal(e)
	}
	id, got, ok := Decode(Key("tid"), m.Value())
	if !ok || id != "tid" || got.ProducerID != 42 || got.Epoch != 3 || got.State != Ongoing || got.TimeoutMS != 30000 || got.StartMS != 9 || len(got.Partitions) != 3 {
		t.Fatalf("decoded %q %+v ok=%v", id, got, ok)
	}
	if id, got, ok := Decode(Key("tid"), nil); !ok || id != "tid" || got != nil {
		t.Fatalf("tombstone decoded as %q %+v %v", id, got, ok)
	}
	if _, _, ok := Decode([]byte{0, 1, 2}, nil); ok {
		t.Fatal("garbage key decoded")
	}
}

func FuzzDecode(f *testing.F) {
	m := New("tid", 42, 30000, 5)
	f.Add(Key("tid"), m.Value())
	f.Add([]byte{0, 0, 0, 1, 'x'}, []byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		_, m, ok := Decode(k, v)
		if ok && m != nil {
			_ = m.Value()
		}
	})
}

func TestTransitionsV2(t *testing.T) {
	end := func(epoch int16, commit bool) func(*Metadata) *kerr.Error {
		return func(m *Metadata) *kerr.Error { return m.EndTxnV2(7, epoch, commit, 20).Err }
	}
	ops := []op{
		{"init", initOp(-1, -1), nil, Empty, 0},
		{"abort without transaction bumps", end(0, false), nil, PrepareAbort, 1},
		{"complete", completeOp, nil, CompleteAbort, 1},
		{"commit with the pre-abort epoch", end(0, true), kerr.InvalidTxnState, CompleteAbort, 1},
		{"commit without transaction", end(1, true), kerr.InvalidTxnState, CompleteAbort, 1},
		{"add", addOp(1), nil, Ongoing, 1},
		{"commit bumps", end(1, true), nil, PrepareCommit, 2},
		{"stale add", addOp(1), kerr.ProducerFenced, PrepareCommit, 2},
		// Kafka's retryOnEpochBump: the pre-bump epoch is a retry, not a zombie.
		{"retry while markers are pending", end(1, true), kerr.ConcurrentTransactions, PrepareCommit, 2},
		{"other result while pending", end(1, false), kerr.InvalidTxnState, PrepareCommit, 2},
		{"complete", completeOp, nil, CompleteCommit, 2},
		{"retry with the old epoch", end(1, true), nil, CompleteCommit, 2},
		{"old epoch abort is the wrong result", end(1, false), kerr.InvalidTxnState, CompleteCommit, 2},
		{"older epoch is fenced", end(0, false), kerr.ProducerFenced, CompleteCommit, 2},
		{"next txn at the new epoch", addOp(2), nil, Ongoing, 2},
	}
	m := New("id", 7, 60000, 0)
	for _, o := range ops {
		if err := o.do(m); err != o.wantErr {
			t.Fatalf("%s: error %v, want %v", o.name, err, o.wantErr)
		}
		if m.State != o.wantState || m.Epoch != o.wantEpoch {
			t.Fatalf("%s: state %s epoch %d, want %s epoch %d", o.name, m.State, m.Epoch, o.wantState, o.wantEpoch)
		}
	}
	if !m.TV2 {
		t.Fatal("TV2 not recorded")
	}
	// Epoch exhaustion: the bump reaches the last epoch, the producer
	// moves to the next id when the transaction completes.
	m.Epoch = maxEpoch - 1
	res := m.EndTxnV2(7, maxEpoch-1, true, 30)
	if !res.Prepared || !res.NeedNewID {
		t.Fatalf("end at the last epoch: %+v", res)
	}
	m.NextProducerID = 8
	_, dec, _ := Decode(Key("id"), m.Value())
	if dec.NextProducerID != 8 || !dec.TV2 {
		t.Fatalf("v1 record lost the next id or version: %+v", dec)
	}
	m.Complete(40)
	if m.ProducerID != 8 || m.Epoch != 0 || m.NextProducerID != -1 || m.State != CompleteCommit {
		t.Fatalf("after rotation: %+v", m)
	}
}

// TestEndTxnV2AfterTimeout: the epoch a timeout fenced is a zombie's, not a
// retry's, so its commit is PRODUCER_FENCED even though it is the epoch
// just before the bump (Kafka's epoch fence clears lastProducerEpoch).
func TestEndTxnV2AfterTimeout(t *testing.T) {
	m := New("id", 7, 100, 0)
	if r := m.InitProducerID(-1, -1, 100, 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := m.AddPartitions(7, 0, []TopicPartition{{Topic: "t", Partition: 0}}, 1); err != nil {
		t.Fatal(err)
	}
	if !m.TimeOut(500) || !m.Complete(501) {
		t.Fatalf("timeout did not abort: %+v", m)
	}
	for _, commit := range []bool{true, false} {
		if res := m.EndTxnV2(7, 0, commit, 502); res.Err != kerr.ProducerFenced {
			t.Fatalf("zombie end (commit=%v) after timeout: %v, want PRODUCER_FENCED", commit, res.Err)
		}
	}
}

// TestEndTxnV2RetryAfterReload: a coordinator that loads a version-2
// transaction from the log (a failover) takes a request with the epoch just
// before the current one for a retry of the EndTxn that bumped it, as
// Kafka's coordinator does without remembering the bump, while a timeout
// (two bumps) leaves the timed-out producer fenced after a reload too.
func TestEndTxnV2RetryAfterReload(t *testing.T) {
	reload := func(m *Metadata) *Metadata {
		t.Helper()
		_, d, ok := Decode(Key(m.ID), m.Value())
		if !ok || d == nil {
			t.Fatalf("decode %+v", m)
		}
		return d
	}
	m := New("id", 7, 60000, 0)
	if r := m.InitProducerID(-1, -1, 60000, 1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := m.AddPartitions(7, 0, []TopicPartition{tpA}, 2); err != nil {
		t.Fatal(err)
	}
	if res := m.EndTxnV2(7, 0, true, 3); !res.Prepared {
		t.Fatalf("commit: %+v", res)
	}
	pending := reload(m)
	if res := pending.EndTxnV2(7, 0, true, 4); res.Err != kerr.ConcurrentTransactions {
		t.Fatalf("retry while the reloaded commit is pending: %v, want CONCURRENT_TRANSACTIONS", res.Err)
	}
	m.Complete(5)
	done := reload(m)
	for _, tc := range []struct {
		name   string
		epoch  int16
		commit bool
		want   *kerr.Error
	}{
		{"retry of the commit", 0, true, nil},
		{"the other result", 0, false, kerr.InvalidTxnState},
		{"an older epoch", -1, true, kerr.ProducerFenced},
	} {
		d := reload(m)
		if res := d.EndTxnV2(7, tc.epoch, tc.commit, 6); res.Err != tc.want {
			t.Errorf("%s after a reload: %v, want %v", tc.name, res.Err, tc.want)
		}
	}
	if done.Epoch != 1 || done.State != CompleteCommit {
		t.Fatalf("reloaded %+v", done)
	}

	// A version-2 transaction that times out: two bumps, and the zombie's
	// epoch is fenced before and after a reload.
	if err := done.AddPartitions(7, 1, []TopicPartition{tpA}, 10); err != nil {
		t.Fatal(err)
	}
	if !done.TimeOut(60000+11) || done.Epoch != 3 || !done.Complete(60000+12) {
		t.Fatalf("timeout: %+v", done)
	}
	for _, m := range []*Metadata{done, reload(done)} {
		for _, commit := range []bool{true, false} {
			if res := m.EndTxnV2(7, 1, commit, 60000+13); res.Err != kerr.ProducerFenced {
				t.Fatalf("timed-out producer's end (commit=%v): %v, want PRODUCER_FENCED", commit, res.Err)
			}
		}
	}
}
