package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Joining: a node with Config.NonVoter set (a broker-only node, Kafka's
// process.roles=broker) never bootstraps. It starts raft with whatever
// configuration its log holds (none on first start) and asks the voters,
// over the forward protocol, to add it as a non-voter. The leader adds it
// with AddNonvoter; a voter that is not the leader relays the request to
// the leader once. From then on the leader replicates the log to it like
// to any follower, so it holds the whole metadata state, while elections
// and commits never wait for it.

// joinRequest asks the leader to make node id at addr a non-voter, or (a
// leave request, which has no addr) to remove non-voter id. relayed marks
// a request a non-leader voter already passed on, so it is not passed on
// again.
type joinRequest struct {
	id      int32
	addr    string
	relayed bool
}

func encodeJoinRequest(j joinRequest) []byte {
	e := &encoder{}
	e.u8(fwdJoin)
	e.i32(j.id)
	e.str(j.addr)
	e.boolean(j.relayed)
	return e.b
}

func encodeLeaveRequest(j joinRequest) []byte {
	e := &encoder{}
	e.u8(fwdLeave)
	e.i32(j.id)
	e.boolean(j.relayed)
	return e.b
}

// joinRetryMin and joinRetryMax bound the pause between join attempts.
const (
	joinRetryMin = 50 * time.Millisecond
	joinRetryMax = time.Second
)

// joinLocal handles a join request on a voter: the leader adds the node,
// another voter relays the request to the leader it knows.
func (n *Node) joinLocal(ctx context.Context, j joinRequest) error {
	if j.id < 0 || j.addr == "" {
		return fmt.Errorf("join: %w: node id %d at %q", ErrInvalidVoters, j.id, j.addr)
	}
	if !n.IsLeader() {
		return n.relay(ctx, "join", j, encodeJoinRequest)
	}
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("join node %d: %w", j.id, mapRaftErr(err))
	}
	for _, s := range f.Configuration().Servers {
		id, ok := parseServerID(s.ID)
		if !ok {
			continue
		}
		switch {
		case id == j.id && s.Suffrage == hraft.Voter:
			return fmt.Errorf("join: %w: node %d is a voter; a non-voter needs an id of its own", ErrInvalidVoters, j.id)
		case id == j.id && string(s.Address) == j.addr:
			return nil // already a member: a restart or a retried request
		case id != j.id && string(s.Address) == j.addr:
			return fmt.Errorf("join: %w: address %s of node %d is already node %d's", ErrInvalidVoters, j.addr, j.id, id)
		}
	}
	timeout, err := n.timeout(ctx)
	if err != nil {
		return fmt.Errorf("join node %d: %w", j.id, err)
	}
	// A member id at a new address (moved host) is updated in place.
	if err := n.r.AddNonvoter(serverID(j.id), hraft.ServerAddress(j.addr), 0, timeout).Error(); err != nil {
		return fmt.Errorf("join node %d at %s: %w", j.id, j.addr, mapRaftErr(err))
	}
	n.cfg.Logger.Info("raft: added non-voter", "node", j.id, "addr", j.addr)
	return nil
}

// relay passes a join or leave request that reached a follower on to the
// leader, once.
func (n *Node) relay(ctx context.Context, what string, j joinRequest, encode func(joinRequest) []byte) error {
	addr, _ := n.r.LeaderWithID()
	if j.relayed || addr == "" {
		return fmt.Errorf("%s node %d: %w", what, j.id, ErrNotLeader)
	}
	j.relayed = true
	body, err := forwardCall(ctx, string(addr), encode(j))
	if err != nil {
		return fmt.Errorf("%s node %d via leader %s: %w", what, j.id, addr, err)
	}
	remote, err := decodeErrorResponse(body)
	if err != nil {
		return fmt.Errorf("%s node %d via leader %s: %w: %w", what, j.id, addr, errUnreachable, err)
	}
	return remote
}

// RemoveNonvoter takes non-voter id out of the raft configuration (a
// broker-only node being decommissioned), on any node: a follower passes
// the request to the leader. Removing a node that is not a member is a
// no-op; a voter cannot be removed this way (ErrInvalidVoters).
func (n *Node) RemoveNonvoter(ctx context.Context, id int32) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	backoff := 5 * time.Millisecond
	for {
		var err error
		switch {
		case n.closed.Load():
			return fmt.Errorf("remove non-voter %d: %w", id, ErrClosed)
		case n.IsLeader():
			err = n.leaveLocal(ctx, joinRequest{id: id})
		default:
			// Relayed by this node, so the leader does not relay again.
			err = n.relay(ctx, "remove non-voter", joinRequest{id: id}, encodeLeaveRequest)
		}
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-n.stop:
			return fmt.Errorf("remove non-voter %d: %w", id, ErrClosed)
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("remove non-voter %d: gave up: %w", id, ctx.Err()))
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// leaveLocal handles a leave request on a voter: the leader removes the
// non-voter, another voter relays the request to the leader it knows.
func (n *Node) leaveLocal(ctx context.Context, j joinRequest) error {
	if !n.IsLeader() {
		return n.relay(ctx, "remove non-voter", j, encodeLeaveRequest)
	}
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("remove non-voter %d: %w", j.id, mapRaftErr(err))
	}
	member := false
	for _, s := range f.Configuration().Servers {
		if s.ID == serverID(j.id) {
			if s.Suffrage == hraft.Voter {
				return fmt.Errorf("remove non-voter: %w: node %d is a voter", ErrInvalidVoters, j.id)
			}
			member = true
		}
	}
	if !member {
		return nil
	}
	timeout, err := n.timeout(ctx)
	if err != nil {
		return fmt.Errorf("remove non-voter %d: %w", j.id, err)
	}
	if err := n.r.RemoveServer(serverID(j.id), 0, timeout).Error(); err != nil {
		return fmt.Errorf("remove non-voter %d: %w", j.id, mapRaftErr(err))
	}
	n.cfg.Logger.Info("raft: removed non-voter", "node", j.id)
	return nil
}

// isMember reports whether this node's latest configuration lists it at its
// own address.
func (n *Node) isMember() bool {
	f := n.r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == serverID(n.cfg.NodeID) && s.Address == n.trans.LocalAddr() {
			return true
		}
	}
	return false
}

// joinLoop asks the voters in turn to add this node until one agreed and
// its own configuration lists it. A refusal that retrying cannot change (an id
// that is a voter's, an address taken) is logged once per change of
// message and retried slowly, since an operator may fix the other node.
// Owned by n.wg; ends with n.stop.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	req := joinRequest{id: n.cfg.NodeID, addr: string(n.trans.LocalAddr())}
	// life ends the calls in flight when the node stops; its watcher ends
	// with the loop.
	life, end := context.WithCancel(context.Background())
	defer end()
	go func() {
		select {
		case <-n.stop:
			end()
		case <-life.Done():
		}
	}()
	backoff := joinRetryMin
	var lastErr string
	// At least one request succeeds even when the stored configuration
	// already lists this node: it may have been removed since (the leader
	// stops replicating to a removed node, so its own copy never learns).
	joined := false
	for i := 0; !joined || !n.isMember(); i++ {
		v := n.cfg.Voters[i%len(n.cfg.Voters)]
		ctx, cancel := context.WithTimeout(life, n.cfg.TransportTimeout)
		body, err := forwardCall(ctx, v.Addr, encodeJoinRequest(req))
		cancel()
		if err == nil {
			var remote error
			if remote, err = decodeErrorResponse(body); err == nil {
				err = remote
			}
		}
		if err == nil {
			// Added: the configuration reaches this node with the leader's
			// next AppendEntries; isMember sees it then.
			joined = true
			backoff = joinRetryMin
			if n.isMember() {
				return
			}
		} else if msg := err.Error(); msg != lastErr && !errors.Is(err, errUnreachable) && !errors.Is(err, ErrNotLeader) {
			n.cfg.Logger.Warn("raft: joining the cluster as a non-voter failed", "voter", v.String(), "err", err)
			lastErr = msg
		}
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, joinRetryMax)
	}
}
