package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// rawTxn drives one transactional id with hand-built requests.
type rawTxn struct {
	t     *testing.T
	cl    *kgo.Client
	id    string
	pid   int64
	epoch int16
}

func (r *rawTxn) init() {
	r.t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = kmsg.StringPtr(r.id)
		req.TransactionTimeoutMillis = 60000
		resp, err := req.RequestWith(testCtx(r.t), r.cl)
		if err != nil {
			r.t.Fatal(err)
		}
		if resp.ErrorCode == kerr.ConcurrentTransactions.Code {
			continue // an open transaction was aborted first; retry as clients do
		}
		if resp.ErrorCode != 0 {
			r.t.Fatalf("init: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		r.pid, r.epoch = resp.ProducerID, resp.ProducerEpoch
		return
	}
	r.t.Fatal("init: still CONCURRENT_TRANSACTIONS")
}

// commitOffset adds the group to the transaction and commits offset for t/0.
func (r *rawTxn) commitOffset(g string, off int64) {
	r.t.Helper()
	ctx := testCtx(r.t)
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = r.id, r.pid, r.epoch, g
	aresp, err := add.RequestWith(ctx, r.cl)
	if err != nil || aresp.ErrorCode != 0 {
		r.t.Fatalf("add offsets: %v %v", err, aresp)
	}
	cresp, err := r.offsetCommitReq(g, off).RequestWith(ctx, r.cl)
	if err != nil || cresp.Topics[0].Partitions[0].ErrorCode != 0 {
		r.t.Fatalf("txn offset commit: %v %+v", err, cresp)
	}
}

// offsetCommitReq is the TxnOffsetCommit of offset for t/0 in group g.
func (r *rawTxn) offsetCommitReq(g string, off int64) *kmsg.TxnOffsetCommitRequest {
	c := kmsg.NewPtrTxnOffsetCommitRequest()
	c.TransactionalID, c.Group, c.ProducerID, c.ProducerEpoch, c.Generation = r.id, g, r.pid, r.epoch, -1
	tp := kmsg.NewTxnOffsetCommitRequestTopic()
	tp.Topic = "t"
	p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = 0, off
	tp.Partitions = append(tp.Partitions, p)
	c.Topics = append(c.Topics, tp)
	return c
}

func (r *rawTxn) end(commit bool) {
	r.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = r.id, r.pid, r.epoch, commit
	resp, err := req.RequestWith(testCtx(r.t), r.cl)
	if err != nil || resp.ErrorCode != 0 {
		r.t.Fatalf("end txn: %v %+v", err, resp)
	}
	if resp.Version >= 5 {
		// Transaction version 2: the epoch was bumped.
		if resp.ProducerEpoch != r.epoch+1 {
			r.t.Fatalf("EndTxn v%d answered epoch %d after %d", resp.Version, resp.ProducerEpoch, r.epoch)
		}
		r.pid, r.epoch = resp.ProducerID, resp.ProducerEpoch
	}
}

// fetchOffset returns the committed offset of g for t/0 and its error code.
func fetchOffset(t *testing.T, cl *kgo.Client, g string, stable bool) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.RequireStable = g, stable
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0}
	req.Topics = append(req.Topics, ft)
	req.Version = 7
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		return -1, resp.ErrorCode
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// TestTxnOffsetCommit: offsets committed in a transaction are invisible
// (and unstable under RequireStable) until the commit marker, dropped on
// abort, and a transaction open across a restart is still pending after it
// and aborted by the producer's re-initialization.
func TestTxnOffsetCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := func(c *Config) {
		groupTestConfig(c)
		c.DataDir, c.Fsync, c.TransactionTopicPartitions = dir, "always", 3
	}
	b := startTestBroker(t, mod)
	createTopic(t, newAdmin(t, b), "t", 1, nil)
	cl := newClient(t, b, kgo.MaxVersions(kversion.V4_0_0()))
	r := &rawTxn{t: t, cl: cl, id: "offs"}
	r.init()

	r.commitOffset("pg", 5)
	if off, code := fetchOffset(t, cl, "pg", true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("require stable while pending: offset %d code %d", off, code)
	}
	if off, code := fetchOffset(t, cl, "pg", false); code != 0 || off != -1 {
		t.Fatalf("pending offset visible: %d code %d", off, code)
	}
	r.end(true)
	if off, code := fetchOffset(t, cl, "pg", true); code != 0 || off != 5 {
		t.Fatalf("after commit: offset %d code %d", off, code)
	}
	r.commitOffset("pg", 9)
	r.end(false)
	if off, _ := fetchOffset(t, cl, "pg", true); off != 5 {
		t.Fatalf("after abort: offset %d, want 5", off)
	}
	r.commitOffset("pg", 11)
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := startTestBroker(t, mod)
	cl2 := newClient(t, b2)
	if off, code := fetchOffset(t, cl2, "pg", true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("pending offset lost across restart: offset %d code %d", off, code)
	}
	r2 := &rawTxn{t: t, cl: cl2, id: "offs"}
	r2.init()
	if r2.pid != r.pid || r2.epoch <= r.epoch {
		t.Fatalf("re-init gave %d/%d after %d/%d", r2.pid, r2.epoch, r.pid, r.epoch)
	}
	if off, code := fetchOffset(t, cl2, "pg", true); code != 0 || off != 5 {
		t.Fatalf("after re-init aborted the open transaction: offset %d code %d", off, code)
	}
}

// TestTxnOffsetCommitFailedAppendDropped: offsets of a TxnOffsetCommit whose
// append failed do not join the producer's pending offsets, so the
// transaction's commit marker materializes only what the log holds. The
// append fails here because the __consumer_offsets replica stops leading
// for the request's duration.
func TestTxnOffsetCommitFailedAppendDropped(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) {
		groupTestConfig(c)
		c.TransactionTopicPartitions = 1
	})
	createTopic(t, newAdmin(t, b), "t", 1, nil)
	cl := newClient(t, b, kgo.MaxVersions(kversion.V4_0_0()))
	r := &rawTxn{t: t, cl: cl, id: "dropped"}
	r.init()
	r.commitOffset("fg", 5) // the producer now has pending offsets for fg

	setLeading := offsetsReplicaLeading(t, b, "fg")
	setLeading(false)
	// A raw connection: a client would retry the retriable error until
	// the replica leads again.
	resp := send[*kmsg.TxnOffsetCommitResponse](t, rawClient(t, b), r.offsetCommitReq("fg", 7), 3)
	setLeading(true)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code == 0 {
		t.Fatal("txn offset commit succeeded on a replica that does not lead")
	}

	r.end(true)
	if off, code := fetchOffset(t, cl, "fg", true); code != 0 || off != 5 {
		t.Fatalf("after commit: offset %d code %d, want 5 (the failed commit of 7 dropped)", off, code)
	}
}

// TestTxnOffsetOfDeletedTopicPurged: a topic deleted while a transaction's
// offset on it is pending (the tick that purges the deleted topic's
// offsets cannot see a pending one) loses that offset soon after the
// transaction commits, with no further state change to prompt a purge.
func TestTxnOffsetOfDeletedTopicPurged(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { groupTestConfig(c); c.TransactionTopicPartitions = 3 })
	adm := newAdmin(t, b)
	createTopic(t, adm, "t", 1, nil)
	cl := newClient(t, b, kgo.MaxVersions(kversion.V4_0_0()))
	r := &rawTxn{t: t, cl: cl, id: "gone-topic"}
	r.init()
	r.commitOffset("pg", 5)
	if _, err := adm.DeleteTopics(testCtx(t), "t"); err != nil {
		t.Fatal(err)
	}
	waitStateSettled(b) // past the deletion's follow-up commands and the tick that purged
	r.end(true)
	deadline := time.Now().Add(10 * time.Second)
	for holdsOffset(t, b, "pg", "t") {
		if time.Now().After(deadline) {
			t.Fatal("the committed transaction's offset on the deleted topic is still held")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
