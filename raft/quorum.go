package raft

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// The quorum view (Kafka's DescribeQuorum, KIP-595/836) and voter changes
// (AddRaftVoter/RemoveRaftVoter, KIP-853) on top of hashicorp/raft.
//
// Mapping of Kafka's KRaft terms onto raft's:
//   - leader epoch = raft term (clamped to int32);
//   - raft entry i is metadata-log offset i-1, so a log end offset is a last
//     index and the high watermark is the commit index;
//   - a follower's log end offset is its match index: the highest index the
//     leader knows the follower holds, learnt from the follower's successful
//     AppendEntries (and InstallSnapshot) responses in the leader's current
//     term. hashicorp/raft keeps the match index private, so the leader's
//     transport is wrapped (progressTransport) and records it from the
//     requests and responses it carries. Unknown (no success yet this term):
//     -1, as Kafka reports a replica it has not heard from;
//   - last fetch timestamp = the last response of the follower to any
//     AppendEntries (heartbeats included) this term; last caught-up
//     timestamp = the last such response at which its match index reached
//     the leader's last index;
//   - voters are raft voters, observers raft non-voters (broker-only nodes
//     and demoted voters);
//   - a replica's directory id is DirectoryID(cluster id, node id): raft's
//     configuration holds no per-node directory, so the id is derived, the
//     same on every node, instead of stored.
//
// Removing a voter demotes it to a non-voter rather than dropping it: every
// Strom node is a broker that needs the metadata log, as a Kafka voter that
// is removed keeps fetching as an observer. Adding a voter promotes an
// existing non-voter; a node that is not a raft member cannot be added, since
// Kafka's request carries client listeners but no raft address.

// ReplicaProgress is one member of the quorum as the leader sees it.
type ReplicaProgress struct {
	ID   int32
	Addr string
	// LogEndOffset is the member's last raft index known to the leader
	// (its match index; the leader's own last index for the leader); -1
	// when unknown.
	LogEndOffset int64
	// LastFetch and LastCaughtUp are zero when unknown.
	LastFetch, LastCaughtUp time.Time
}

// QuorumInfo is the leader's description of the quorum (DescribeQuorum).
type QuorumInfo struct {
	LeaderID      int32
	LeaderEpoch   int32
	HighWatermark int64
	// Voters and Observers are sorted by id; the leader is among Voters.
	Voters, Observers []ReplicaProgress
}

// DirectoryID returns the stable directory id Strom reports for node id of
// cluster clusterID (Kafka's Uuid, 16 bytes). It is derived, not random: a
// hash of both, never all zero, and with the top bit of the first byte clear
// so Kafka's base64 form does not start with '-' or '_' (Kafka avoids a
// leading '-' for command lines).
func DirectoryID(clusterID string, id int32) [16]byte {
	sum := sha256.Sum256([]byte("strom-raft-directory\x00" + clusterID + "\x00" + strconv.Itoa(int(id))))
	var out [16]byte
	copy(out[:], sum[:16])
	out[0] &= 0x7f
	if out == [16]byte{} || out == [16]byte{15: 1} {
		out[1] = 1
	}
	return out
}

// peerProgress is what the leader learnt about one follower in term.
type peerProgress struct {
	term        uint64
	match       uint64 // valid when matched
	matched     bool
	lastContact time.Time
	caughtUp    time.Time
}

// progress records followers' replication progress from the leader's
// transport. lastIndex reports the local log's last index; it is read under
// no lock of ours (raft's own accessor is atomic).
type progress struct {
	lastIndex func() uint64
	now       func() time.Time

	// mu guards peers.
	mu    sync.Mutex
	peers map[hraft.ServerID]*peerProgress
}

func newProgress(lastIndex func() uint64) *progress {
	return &progress{lastIndex: lastIndex, now: time.Now, peers: map[hraft.ServerID]*peerProgress{}}
}

// peer returns id's entry for term, starting a new one when the current
// belongs to an earlier term; nil when it belongs to a later term (a late
// response of an earlier leadership). Lock must be held.
func (p *progress) peer(id hraft.ServerID, term uint64) *peerProgress {
	pp := p.peers[id]
	switch {
	case pp != nil && pp.term > term:
		return nil
	case pp == nil || pp.term < term:
		pp = &peerProgress{term: term}
		p.peers[id] = pp
	}
	return pp
}

// appended records the outcome of an AppendEntries to id. A response of a
// newer term (the follower refused us as leader) is not contact in our
// term; a success proves the follower's log matches ours up to the last
// entry sent (for heartbeats, which carry no PrevLogEntry, it proves only
// contact); a refusal proves it does not hold PrevLogEntry.
func (p *progress) appended(id hraft.ServerID, req *hraft.AppendEntriesRequest, resp *hraft.AppendEntriesResponse) {
	if resp.Term != req.Term || req.Term == 0 {
		return
	}
	now := p.now()
	last := p.lastIndex()
	p.contact(id, req.Term, now, func(pp *peerProgress) {
		switch {
		case resp.Success && (req.PrevLogEntry > 0 || len(req.Entries) > 0):
			pp.raise(req.PrevLogEntry + uint64(len(req.Entries)))
		case !resp.Success && req.PrevLogEntry > 0 && pp.matched:
			// The follower lacks entry PrevLogEntry and holds nothing past
			// LastLog: a node that lost its log (re-added after a wipe) shows
			// its real position instead of the old match.
			pp.match = min(pp.match, req.PrevLogEntry-1, resp.LastLog)
		}
		if pp.matched && pp.match >= last {
			pp.caughtUp = now
		}
	})
}

// installed records a successful InstallSnapshot: the follower holds
// everything up to the snapshot's last index.
func (p *progress) installed(id hraft.ServerID, req *hraft.InstallSnapshotRequest, resp *hraft.InstallSnapshotResponse) {
	if !resp.Success || resp.Term != req.Term {
		return
	}
	p.contact(id, req.Term, p.now(), func(pp *peerProgress) { pp.raise(req.LastLogIndex) })
}

// contact records a response from id in term received at now, then lets
// update apply what the response proves, both under p.mu. A late response
// of an earlier leadership (peer returns nil) changes nothing.
func (p *progress) contact(id hraft.ServerID, term uint64, now time.Time, update func(pp *peerProgress)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pp := p.peer(id, term)
	if pp == nil {
		return
	}
	pp.lastContact = now
	update(pp)
}

// raise records that the follower holds every entry up to m. Successes
// only ever raise the match index; only a refusal (in appended) lowers it.
func (pp *peerProgress) raise(m uint64) {
	if !pp.matched || m > pp.match {
		pp.match, pp.matched = m, true
	}
}

// get returns a copy of id's progress in term (zero when none).
func (p *progress) get(id hraft.ServerID, term uint64) peerProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp := p.peers[id]; pp != nil && pp.term == term {
		return *pp
	}
	return peerProgress{term: term}
}

// progressTransport is the raft transport as the leader uses it, recording
// followers' progress from the AppendEntries and InstallSnapshot exchanges
// it carries. Every other method (votes, pre-votes, Close, ...) is the
// wrapped NetworkTransport's.
type progressTransport struct {
	*hraft.NetworkTransport
	p *progress
}

// AppendEntries implements hraft.Transport.
func (t *progressTransport) AppendEntries(id hraft.ServerID, target hraft.ServerAddress, args *hraft.AppendEntriesRequest, resp *hraft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.p.appended(id, args, resp)
	}
	return err
}

// AppendEntriesPipeline implements hraft.Transport.
func (t *progressTransport) AppendEntriesPipeline(id hraft.ServerID, target hraft.ServerAddress) (hraft.AppendPipeline, error) {
	inner, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	pl := &progressPipeline{AppendPipeline: inner, id: id, p: t.p,
		out: make(chan hraft.AppendFuture, 128), stop: make(chan struct{}), done: make(chan struct{})}
	go pl.relay()
	return pl, nil
}

// InstallSnapshot implements hraft.Transport.
func (t *progressTransport) InstallSnapshot(id hraft.ServerID, target hraft.ServerAddress, args *hraft.InstallSnapshotRequest, resp *hraft.InstallSnapshotResponse, data io.Reader) error {
	err := t.NetworkTransport.InstallSnapshot(id, target, args, resp, data)
	if err == nil {
		t.p.installed(id, args, resp)
	}
	return err
}

// progressPipeline passes the wrapped pipeline's completed futures on to
// raft, recording each. Its relay goroutine is owned by the pipeline and
// ends in Close, which raft calls when it stops replicating to the peer.
type progressPipeline struct {
	hraft.AppendPipeline
	id        hraft.ServerID
	p         *progress
	out       chan hraft.AppendFuture
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (pl *progressPipeline) relay() {
	defer close(pl.done)
	in := pl.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			if f.Error() == nil {
				pl.p.appended(pl.id, f.Request(), f.Response())
			}
			select {
			case pl.out <- f:
			case <-pl.stop:
				return
			}
		case <-pl.stop:
			return
		}
	}
}

// Consumer implements hraft.AppendPipeline.
func (pl *progressPipeline) Consumer() <-chan hraft.AppendFuture { return pl.out }

// Close implements hraft.AppendPipeline: it closes the wrapped pipeline and
// waits for the relay to end.
func (pl *progressPipeline) Close() error {
	err := pl.AppendPipeline.Close()
	pl.closeOnce.Do(func() { close(pl.stop) })
	<-pl.done
	return err
}

// DescribeQuorum returns the leader's view of the quorum, from any node: a
// follower asks the leader over the raft port. ErrNotLeader (after retrying
// until ctx ends) when no leader answers.
func (n *Node) DescribeQuorum(ctx context.Context) (QuorumInfo, error) {
	var out QuorumInfo
	err := n.onLeader(ctx, "describe quorum",
		func(context.Context) error {
			var err error
			out, err = n.describeQuorumLocal()
			return err
		},
		func(ctx context.Context, addr string) error {
			var err error
			out, err = forwardDescribeQuorum(ctx, n.stream.dialContext, addr)
			return err
		}, nil)
	return out, err
}

// describeQuorumLocal builds QuorumInfo on the leader.
func (n *Node) describeQuorumLocal() (QuorumInfo, error) {
	if !n.IsLeader() {
		return QuorumInfo{}, fmt.Errorf("describe quorum: %w", ErrNotLeader)
	}
	term := n.r.CurrentTerm()
	info := QuorumInfo{LeaderID: n.cfg.NodeID, LeaderEpoch: int32(min(term, math.MaxInt32)),
		HighWatermark: int64(min(n.r.CommitIndex(), math.MaxInt64))}
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return QuorumInfo{}, fmt.Errorf("describe quorum: %w", mapRaftErr(err))
	}
	now := time.Now()
	for _, s := range f.Configuration().Servers {
		id, ok := parseServerID(s.ID)
		if !ok {
			continue
		}
		rp := ReplicaProgress{ID: id, Addr: string(s.Address), LogEndOffset: -1}
		if id == n.cfg.NodeID {
			rp.LogEndOffset = int64(min(n.r.LastIndex(), math.MaxInt64))
			rp.LastFetch, rp.LastCaughtUp = now, now
		} else {
			pp := n.progress.get(s.ID, term)
			if pp.matched {
				rp.LogEndOffset = int64(min(pp.match, math.MaxInt64))
			}
			rp.LastFetch, rp.LastCaughtUp = pp.lastContact, pp.caughtUp
		}
		if s.Suffrage == hraft.Voter {
			info.Voters = append(info.Voters, rp)
		} else {
			info.Observers = append(info.Observers, rp)
		}
	}
	sortReplicas(info.Voters)
	sortReplicas(info.Observers)
	return info, nil
}

func sortReplicas(rs []ReplicaProgress) {
	slices.SortFunc(rs, func(a, b ReplicaProgress) int { return cmp.Compare(a.ID, b.ID) })
}

// PromoteVoter makes non-voter id (a broker-only node, or a demoted voter)
// a voter, from any node (a follower asks the leader), and returns once the
// new configuration is committed. Errors: ErrDuplicateVoter when id already
// votes, ErrNotMember when id is not in the raft configuration at all,
// ErrReplicaLagging when id has not caught up with the leader's commit
// index (a voter that lags would hold back commits).
func (n *Node) PromoteVoter(ctx context.Context, id int32) error {
	return n.onLeader(ctx, fmt.Sprintf("promote node %d", id),
		func(ctx context.Context) error { return n.promoteLocal(ctx, id) },
		func(ctx context.Context, addr string) error {
			return forwardMembership(ctx, n.stream.dialContext, addr, fwdPromote, id)
		}, nil)
}

// DemoteVoter makes voter id a non-voter, from any node, and returns once
// the new configuration is committed; the node keeps receiving the log.
// Demoting the leader itself makes it step down once committed. Errors:
// ErrVoterNotFound when id is not a voter, or is the last one.
func (n *Node) DemoteVoter(ctx context.Context, id int32) error {
	return n.onLeader(ctx, fmt.Sprintf("demote node %d", id),
		func(ctx context.Context) error { return n.demoteLocal(ctx, id) },
		func(ctx context.Context, addr string) error {
			return forwardMembership(ctx, n.stream.dialContext, addr, fwdDemote, id)
		}, nil)
}

// member returns id's entry in the leader's latest configuration.
func (n *Node) member(id int32) (s hraft.Server, voters int, found bool, err error) {
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return hraft.Server{}, 0, false, mapRaftErr(err)
	}
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == hraft.Voter {
			voters++
		}
		if srv.ID == serverID(id) {
			s, found = srv, true
		}
	}
	return s, voters, found, nil
}

func (n *Node) promoteLocal(ctx context.Context, id int32) error {
	if !n.IsLeader() {
		return fmt.Errorf("promote node %d: %w", id, ErrNotLeader)
	}
	s, _, found, err := n.member(id)
	switch {
	case err != nil:
		return fmt.Errorf("promote node %d: %w", id, err)
	case !found:
		return fmt.Errorf("promote node %d: %w: it must first join as a non-voter (--process-roles broker)", id, ErrNotMember)
	case s.Suffrage == hraft.Voter:
		return fmt.Errorf("promote node %d: %w", id, ErrDuplicateVoter)
	}
	pp := n.progress.get(s.ID, n.r.CurrentTerm())
	if commit := n.r.CommitIndex(); !readyToVote(pp, commit, time.Now(), 2*n.cfg.HeartbeatTimeout) {
		return fmt.Errorf("promote node %d: %w: it holds index %d of commit index %d, last heard from %v",
			id, ErrReplicaLagging, pp.match, commit, pp.lastContact)
	}
	timeout, err := n.timeout(ctx)
	if err != nil {
		return fmt.Errorf("promote node %d: %w", id, err)
	}
	if err := n.r.AddVoter(s.ID, s.Address, 0, timeout).Error(); err != nil {
		return fmt.Errorf("promote node %d: %w", id, mapRaftErr(err))
	}
	n.cfg.Logger.Info("raft: promoted non-voter to voter", "node", id)
	return nil
}

// readyToVote reports whether a non-voter with progress pp may be promoted
// when the leader's commit index is commit: it must hold every committed
// entry and have answered within maxSilence (a stopped node that was
// caught up when it stopped would otherwise count as ready), as Kafka adds
// only a voter that is caught up and fetching.
func readyToVote(pp peerProgress, commit uint64, now time.Time, maxSilence time.Duration) bool {
	return pp.matched && pp.match >= commit && !pp.lastContact.IsZero() && now.Sub(pp.lastContact) <= maxSilence
}

func (n *Node) demoteLocal(ctx context.Context, id int32) error {
	if !n.IsLeader() {
		return fmt.Errorf("demote node %d: %w", id, ErrNotLeader)
	}
	s, voters, found, err := n.member(id)
	switch {
	case err != nil:
		return fmt.Errorf("demote node %d: %w", id, err)
	case !found || s.Suffrage != hraft.Voter:
		return fmt.Errorf("demote node %d: %w", id, ErrVoterNotFound)
	case voters <= 1:
		return fmt.Errorf("demote node %d: %w: it is the last voter", id, ErrVoterNotFound)
	}
	timeout, err := n.timeout(ctx)
	if err != nil {
		return fmt.Errorf("demote node %d: %w", id, err)
	}
	err = n.r.DemoteVoter(s.ID, 0, timeout).Error()
	if err != nil && id == n.cfg.NodeID && errors.Is(err, hraft.ErrLeadershipLost) {
		// The leader demoting itself steps down as the entry commits;
		// whether it did is read back from the configuration.
		if s, _, _, cerr := n.member(id); cerr == nil && s.Suffrage != hraft.Voter {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("demote node %d: %w", id, mapRaftErr(err))
	}
	n.cfg.Logger.Info("raft: demoted voter to non-voter", "node", id)
	return nil
}

// Forward kinds of the quorum calls (forward.go): describe has no body and
// answers u8 error code, str message, then (on success) the QuorumInfo;
// promote and demote carry i32 node id and answer an error response.

func encodeMembershipRequest(kind uint8, id int32) []byte {
	e := &encoder{}
	e.u8(kind)
	e.i32(id)
	return e.b
}

func encodeQuorumResponse(info QuorumInfo, err error) []byte {
	e := &encoder{}
	code, msg := errorCode(err)
	e.u8(code)
	e.str(msg)
	if err != nil {
		return e.b
	}
	e.i32(info.LeaderID)
	e.i32(info.LeaderEpoch)
	e.varint(info.HighWatermark)
	for _, rs := range [][]ReplicaProgress{info.Voters, info.Observers} {
		e.uvarint(uint64(len(rs)))
		for _, r := range rs {
			e.i32(r.ID)
			e.str(r.Addr)
			e.varint(r.LogEndOffset)
			e.varint(unixMilli(r.LastFetch))
			e.varint(unixMilli(r.LastCaughtUp))
		}
	}
	return e.b
}

// decodeQuorumResponse decodes encodeQuorumResponse's body: the info or the
// remote error, or an error for a garbled body.
func decodeQuorumResponse(b []byte) (QuorumInfo, error, error) {
	d := &decoder{b: b}
	code, msg := d.u8(), d.str()
	var info QuorumInfo
	if code == 0 {
		info.LeaderID = d.i32()
		info.LeaderEpoch = d.i32()
		info.HighWatermark = d.varint()
		for _, rs := range []*[]ReplicaProgress{&info.Voters, &info.Observers} {
			n := d.count(7)
			for i := 0; i < n && d.err == nil; i++ {
				*rs = append(*rs, ReplicaProgress{ID: d.i32(), Addr: d.str(), LogEndOffset: d.varint(),
					LastFetch: fromUnixMilli(d.varint()), LastCaughtUp: fromUnixMilli(d.varint())})
			}
		}
	}
	if err := d.done(); err != nil {
		return QuorumInfo{}, nil, fmt.Errorf("quorum response: %w", err)
	}
	return info, codeError(code, msg), nil
}

// unixMilli is t in Unix milliseconds, -1 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func fromUnixMilli(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// forwardDescribeQuorum asks the leader at addr for its QuorumInfo.
func forwardDescribeQuorum(ctx context.Context, dial dialFunc, addr string) (QuorumInfo, error) {
	body, err := forwardCall(ctx, dial, addr, []byte{fwdDescribeQuorum})
	if err != nil {
		return QuorumInfo{}, fmt.Errorf("describe quorum via leader %s: %w", addr, err)
	}
	info, remote, err := decodeQuorumResponse(body)
	if err != nil {
		return QuorumInfo{}, fmt.Errorf("describe quorum via leader %s: %w: %w", addr, errUnreachable, err)
	}
	return info, remote
}

// forwardMembership sends a promote or demote request to the leader at addr.
func forwardMembership(ctx context.Context, dial dialFunc, addr string, kind uint8, id int32) error {
	body, err := forwardCall(ctx, dial, addr, encodeMembershipRequest(kind, id))
	if err != nil {
		return fmt.Errorf("change voter %d via leader %s: %w", id, addr, err)
	}
	remote, err := decodeErrorResponse(body)
	if err != nil {
		return fmt.Errorf("change voter %d via leader %s: %w: %w", id, addr, errUnreachable, err)
	}
	return remote
}
