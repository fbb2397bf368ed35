package broker

// Committed offsets under replication: an offset commit, transactional or
// not, is acknowledged and shown (OffsetFetch) only once the followers of
// its __consumer_offsets partition have it. The followers of that one
// partition are frozen in process (fetcherManager.holdPartition) while the
// rest of the cluster, __transaction_state included, replicates.

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/raft"
)

// pauseFetchers holds every fetcher of every running node but leader
// (1-based) and waits until none has a fetch in flight, so that no fetch
// sent before the hold brings back what the leader appends next. It
// returns the paused nodes.
func (c *testCluster) pauseFetchers(leader int32) []*Broker {
	c.t.Helper()
	var held []*Broker
	for i, b := range c.brokers {
		if b != nil && int32(i+1) != leader {
			held = append(held, b)
		}
	}
	for _, b := range held {
		b.fetchers.hold.Store(true)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, b := range held {
		for !b.fetchers.allHeld() {
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d: fetchers still busy 10s after the hold", b.cfg.NodeID)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return held
}

// holdFollowers freezes the replication of topic/part on every running
// node but leader (1-based) and returns the release: it pauses those
// nodes' fetchers (pauseFetchers), names the partition held, and lets the
// rest replicate again.
func (c *testCluster) holdFollowers(topic string, part int32, leader int32) (release func()) {
	c.t.Helper()
	held := c.pauseFetchers(leader)
	for _, b := range held {
		b.fetchers.holdPartition(topic, part)
		b.fetchers.hold.Store(false)
	}
	return func() {
		for _, b := range held {
			b.fetchers.releasePartition(topic, part)
		}
	}
}

// waitLogEnd waits until p's log ends beyond end: the write under test
// was appended on the leader.
func waitLogEnd(t *testing.T, p *partition, end int64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.log.EndOffset() <= end {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the leader's log (log end %d)", what, p.log.EndOffset())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fetched is an OffsetFetch outcome from a goroutine.
type fetched struct {
	at  int64
	err error
}

// TestOffsetsShownOnlyReplicated: with the followers of a group's offsets
// partition frozen, a plain commit, a transactional commit and the COMMIT
// marker that materializes it are appended by the leader, yet none is
// acknowledged, passed by the high watermark or shown by OffsetFetch until
// the followers have it; once released, all three complete.
func TestOffsetsShownOnlyReplicated(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, txnClusterConfig)
	// The offsets topic takes as many replicas as there are live brokers
	// when it is created.
	waitBrokerState(testCtx(t), t, c.brokers[0], "three live brokers",
		func(st *raft.State) bool { return len(liveBrokers(st)) == 3 })
	gid := c.idLedBy(offsetsTopic, "g", 1)
	txid := c.idLedBy(txnTopic, "tx", 1)
	idx := groupPartition(gid, 3)
	c.createAssigned("ofs", []int32{1, 2, 3})
	c.waitHosted(1, "ofs", 0) // the coordinator knows the topic
	c.waitInSync(offsetsTopic, idx, 3)
	p := c.brokers[0].parts.get(offsetsTopic, idx)
	// Versions without topic ids, so requests can name the topic.
	cl := c.client(kgo.MaxVersions(kversion.V3_0_0()))
	adm := kadm.NewClient(cl)
	// Fetches go over their own connection: a broker answers the requests
	// of one connection in order, so a fetch behind a waiting commit on the
	// same connection would wait whatever the broker did.
	fetchAdm := kadm.NewClient(c.client(kgo.MaxVersions(kversion.V3_0_0())))
	ctx := testCtx(t)

	commit := func(at int64) error {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "ofs", Partition: 0, At: at, LeaderEpoch: -1})
		resps, err := adm.CommitOffsets(ctx, gid, offs)
		if err != nil {
			return err
		}
		return resps.Error()
	}
	fetch := func() fetched {
		resps, err := fetchAdm.FetchOffsets(ctx, gid)
		if err != nil {
			return fetched{err: err}
		}
		o, ok := resps.Lookup("ofs", 0)
		if !ok {
			return fetched{at: -1}
		}
		return fetched{at: o.At, err: o.Err}
	}
	fetchAsync := func() <-chan fetched {
		ch := make(chan fetched, 1)
		go func() { ch <- fetch() }()
		return ch
	}
	// notShown checks that an OffsetFetch sent while the followers are
	// frozen shows nothing newer than old (it may wait instead), and
	// returns the pending fetch, if any.
	notShown := func(old, newer int64, what string) <-chan fetched {
		t.Helper()
		ch := fetchAsync()
		select {
		case f := <-ch:
			if f.err != nil {
				t.Fatalf("offset fetch while %s is unreplicated: %v", what, f.err)
			}
			if f.at == newer {
				t.Fatalf("offset fetch showed %d from %s before the followers had it", newer, what)
			}
			if f.at != old {
				t.Fatalf("offset fetch while %s is unreplicated: %d, want %d", what, f.at, old)
			}
			return nil
		case <-time.After(300 * time.Millisecond):
			return ch
		}
	}
	shown := func(pending <-chan fetched, want int64, what string) {
		t.Helper()
		if pending != nil {
			if f := <-pending; f.err != nil || f.at != want {
				t.Fatalf("offset fetch held over %s: %d, %v; want %d", what, f.at, f.err, want)
			}
		}
		if f := fetch(); f.err != nil || f.at != want {
			t.Fatalf("offset fetch after %s replicated: %d, %v; want %d", what, f.at, f.err, want)
		}
	}
	// notPassed checks that the high watermark stays at end, the log end
	// before the write, while the write is unreplicated.
	notPassed := func(end int64, what string) {
		t.Helper()
		time.Sleep(200 * time.Millisecond)
		if hw := p.log.HighWatermark(); hw > end {
			t.Fatalf("high watermark %d passed %s at %d..%d before the followers had it", hw, what, end, p.log.EndOffset()-1)
		}
	}
	mustWait := func(done <-chan error, what string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("%s answered (%v) before the followers had it", what, err)
		default:
		}
	}

	// A plain commit.
	if err := commit(10); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	release := c.holdFollowers(offsetsTopic, idx, 1)
	end := p.log.EndOffset()
	done := make(chan error, 1)
	go func() { done <- commit(20) }()
	waitLogEnd(t, p, end, "the commit of 20")
	pending := notShown(10, 20, "the commit of 20")
	notPassed(end, "the commit of 20")
	mustWait(done, "the commit of 20")
	release()
	if err := <-done; err != nil {
		t.Fatalf("commit of 20 after the release: %v", err)
	}
	shown(pending, 20, "the commit of 20")

	// A transactional commit: acknowledged only once replicated.
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(txid), 60000
	ir, err := init.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(ir.ErrorCode)
	}
	if err != nil {
		t.Fatalf("init producer id: %v", err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txid, ir.ProducerID, ir.ProducerEpoch, gid
	if ar, err := add.RequestWith(ctx, cl); err != nil || ar.ErrorCode != 0 {
		t.Fatalf("add offsets to txn: %v %v", err, ar)
	}
	txnCommit := func() error {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txid, gid, ir.ProducerID, ir.ProducerEpoch
		req.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "ofs"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, 30, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	release = c.holdFollowers(offsetsTopic, idx, 1)
	end = p.log.EndOffset()
	go func() { done <- txnCommit() }()
	waitLogEnd(t, p, end, "the transactional commit of 30")
	notPassed(end, "the transactional commit of 30")
	mustWait(done, "the transactional commit of 30")
	release()
	if err := <-done; err != nil {
		t.Fatalf("transactional commit after the release: %v", err)
	}
	shown(nil, 20, "the transactional commit of 30 (its transaction still open)")

	// The COMMIT marker that makes 30 the group's offset.
	release = c.holdFollowers(offsetsTopic, idx, 1)
	end = p.log.EndOffset()
	go func() {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = txid, ir.ProducerID, ir.ProducerEpoch, true
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		done <- err
	}()
	waitLogEnd(t, p, end, "the COMMIT marker")
	pending = notShown(20, 30, "the COMMIT marker")
	notPassed(end, "the COMMIT marker")
	release()
	if err := <-done; err != nil {
		t.Fatalf("end txn: %v", err)
	}
	shown(pending, 30, "the COMMIT marker")
	c.waitInSync(offsetsTopic, idx, 3)
}
