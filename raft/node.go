package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Config configures a Node. Zero-valued tuning fields take their value from
// DefaultConfig, so a literal with only the identity fields set is valid.
type Config struct {
	// NodeID is this node's id; it is also its raft ServerID (in decimal).
	NodeID int32
	// DataDir holds raft.db (log + stable store) and snapshots/.
	DataDir string
	// BindAddr is the host:port the raft TCP transport listens on. Port 0
	// picks a free port (see Node.Addr).
	BindAddr string
	// AdvertiseAddr is the address peers dial, when BindAddr is not
	// dialable (e.g. 0.0.0.0). Empty: the bound address.
	AdvertiseAddr string
	// Bootstrap forms a new single-voter cluster with this node when DataDir
	// holds no raft state; ignored when state exists.
	Bootstrap bool
	// Logger receives raft's warnings and errors. Nil: slog.Default().
	Logger *slog.Logger

	// HeartbeatTimeout is how long a follower waits without hearing from a
	// leader before it starts an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without
	// reaching a quorum; must not exceed HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long the leader waits before sending an
	// AppendEntries with nothing new (it carries the commit index).
	CommitTimeout time.Duration
	// ApplyTimeout bounds enqueueing a command (and membership changes)
	// when the caller's context has no deadline.
	ApplyTimeout time.Duration
	// StartTimeout bounds how long Open waits, after bootstrapping a new
	// cluster, for leadership and the cluster id.
	StartTimeout time.Duration
	// TransportTimeout is the I/O deadline of raft RPCs.
	TransportTimeout time.Duration
	// SnapshotThreshold is the number of log entries since the last
	// snapshot that triggers a new one; SnapshotInterval how often it is
	// checked; TrailingLogs how many entries stay after a snapshot;
	// SnapshotRetain how many snapshots are kept on disk.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int
}

// DefaultConfig returns the tuning defaults, the only place they are set.
// The timeouts suit a LAN; a single voter elects itself within one to two
// heartbeat timeouts, i.e. about one second.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		ApplyTimeout:       10 * time.Second,
		StartTimeout:       30 * time.Second,
		TransportTimeout:   10 * time.Second,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	setDur(&c.ElectionTimeout, d.ElectionTimeout)
	setDur(&c.LeaderLeaseTimeout, min(d.LeaderLeaseTimeout, c.HeartbeatTimeout))
	setDur(&c.CommitTimeout, d.CommitTimeout)
	setDur(&c.ApplyTimeout, d.ApplyTimeout)
	setDur(&c.StartTimeout, d.StartTimeout)
	setDur(&c.TransportTimeout, d.TransportTimeout)
	setDur(&c.SnapshotInterval, d.SnapshotInterval)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = d.SnapshotRetain
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Node is one member of the metadata quorum. All methods are safe for
// concurrent use.
type Node struct {
	cfg   Config
	r     *hraft.Raft
	fsm   *fsm
	store *raftboltdb.BoltStore
	trans *hraft.NetworkTransport
	obs   *hraft.Observer

	// stop is closed by Close: it ends watchLeader (wg waits for it) and
	// wakes WaitLeader callers.
	stop      chan struct{}
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node on cfg.DataDir, restoring the latest snapshot and
// replaying the log. With cfg.Bootstrap and no existing state it forms a
// one-voter cluster and waits (up to StartTimeout) until it leads and the
// cluster id is set. Otherwise it returns at once; use WaitLeader.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.NodeID < 0 || cfg.DataDir == "" || cfg.BindAddr == "" {
		return nil, fmt.Errorf("open raft node: %w: need NodeID >= 0, DataDir and BindAddr", ErrInvalidCommand)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("open raft node: %w", err)
	}
	hlog := newHCLogAdapter(cfg.Logger)
	n := &Node{cfg: cfg, fsm: newFSM(), stop: make(chan struct{})}
	var err error
	dbPath := filepath.Join(cfg.DataDir, "raft.db")
	n.store, err = raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", dbPath, err)
	}
	fail := func(err error) (*Node, error) {
		if n.trans != nil {
			_ = n.trans.Close()
		}
		_ = n.store.Close()
		return nil, err
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return fail(fmt.Errorf("open raft snapshots in %s: %w", cfg.DataDir, err))
	}
	var adv net.Addr
	if cfg.AdvertiseAddr != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
			return fail(fmt.Errorf("resolve raft advertise address %s: %w", cfg.AdvertiseAddr, err))
		}
	}
	stream, err := newTCPStream(cfg.BindAddr, adv)
	if err != nil {
		return fail(fmt.Errorf("raft transport on %s: %w", cfg.BindAddr, err))
	}
	n.trans = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: cfg.TransportTimeout, Logger: hlog})

	rc := hraft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.Logger = hlog
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	// A buffered apply channel lets the leader pick up to MaxAppendEntries
	// queued commands per disk write (ApplyAll, concurrent Apply callers).
	rc.BatchApplyCh = true
	if err := hraft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("raft config: %w", err))
	}

	existing, err := hraft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fail(fmt.Errorf("inspect raft state in %s: %w", cfg.DataDir, err))
	}
	bootstrapped := false
	if !existing && cfg.Bootstrap {
		conf := hraft.Configuration{Servers: []hraft.Server{{Suffrage: hraft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr()}}}
		if err := hraft.BootstrapCluster(rc, n.store, n.store, snaps, n.trans, conf); err != nil {
			return fail(fmt.Errorf("bootstrap raft cluster: %w", err))
		}
		bootstrapped = true
	}
	n.r, err = hraft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}

	// Register before the first look at the leader so no change is missed;
	// the observer never blocks raft (a full channel already means "look
	// again", and watchLeader always reads the current leader).
	obsCh := make(chan hraft.Observation, 8)
	n.obs = hraft.NewObserver(obsCh, false, func(o *hraft.Observation) bool {
		_, ok := o.Data.(hraft.LeaderObservation)
		return ok
	})
	n.r.RegisterObserver(n.obs)
	n.wg.Add(1)
	go n.watchLeader(obsCh)

	if bootstrapped {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
		defer cancel()
		if err := n.WaitLeader(ctx); err != nil {
			_ = n.Close()
			return nil, fmt.Errorf("bootstrap raft cluster: %w", err)
		}
	}
	return n, nil
}

func serverID(id int32) hraft.ServerID { return hraft.ServerID(strconv.FormatInt(int64(id), 10)) }

func parseServerID(id hraft.ServerID) (int32, bool) {
	v, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil || v < 0 {
		return -1, false
	}
	return int32(v), true
}

// watchLeader keeps State.ControllerID equal to raft's view of the leader,
// and, when this node becomes leader of a cluster without an id, proposes
// InitCluster. Owned by the Node; ends when stop is closed.
func (n *Node) watchLeader(obsCh <-chan hraft.Observation) {
	defer n.wg.Done()
	for {
		_, lid := n.r.LeaderWithID()
		ctrl, ok := parseServerID(lid)
		if !ok {
			ctrl = -1
		}
		n.fsm.setController(ctrl)
		if ctrl == n.cfg.NodeID && n.fsm.current().ClusterID == "" {
			n.initCluster()
		}
		select {
		case <-obsCh:
		case <-n.stop:
			return
		}
	}
}

// initCluster gives a cluster without an id one. The barrier first applies
// every entry of earlier terms, so a restarted leader sees the id it already
// has instead of proposing a second one. The proposal itself is not awaited:
// if another InitCluster precedes it in the log it fails harmlessly, and if
// leadership is lost the next leader proposes again.
func (n *Node) initCluster() {
	if err := n.r.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
		return // not leader any more, or shutting down
	}
	if n.fsm.current().ClusterID != "" {
		return
	}
	n.r.Apply(EncodeCommand(InitCluster{ClusterID: NewClusterID()}), n.cfg.ApplyTimeout)
}

// Addr returns the transport's address as peers should dial it.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// ID returns this node's id.
func (n *Node) ID() int32 { return n.cfg.NodeID }

// State returns the current metadata; lock-free. The result is immutable
// and stays valid (unchanging) after later applies.
func (n *Node) State() *State { return n.fsm.current() }

// Subscribe returns a channel that receives a value after the state
// changes (an apply, a restore, a controller change). Notifications
// coalesce (capacity 1): read State() after each. cancel stops delivery.
func (n *Node) Subscribe() (<-chan struct{}, func()) { return n.fsm.subscribe() }

// IsLeader reports whether this node is the raft leader (the controller).
func (n *Node) IsLeader() bool { return n.r.State() == hraft.Leader }

// LeaderID returns the current leader's node id as this node knows it.
func (n *Node) LeaderID() (int32, bool) {
	_, id := n.r.LeaderWithID()
	return parseServerID(id)
}

// WaitLeader blocks until a leader is known and the state carries a cluster
// id; on the leader itself it also waits (with a barrier) until every
// entry of earlier terms is applied, so State() is complete when it returns.
// On a follower the state may still trail the leader by the entries in
// flight; compare State().Version with a Result.Index to wait for one.
func (n *Node) WaitLeader(ctx context.Context) error {
	ch, cancel := n.Subscribe()
	defer cancel()
	for {
		if n.closed.Load() {
			return ErrClosed
		}
		s := n.State()
		if s.ControllerID >= 0 && s.ClusterID != "" {
			if s.ControllerID != n.cfg.NodeID {
				return nil
			}
			if err := n.Barrier(ctx); err == nil {
				return nil
			} else if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) {
				return err
			}
		}
		select {
		case <-ch:
		case <-n.stop:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ctx.Err())
		}
	}
}

// timeout turns ctx's deadline into raft's enqueue timeout.
func (n *Node) timeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if n.closed.Load() {
		return 0, ErrClosed
	}
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 {
			return 0, context.DeadlineExceeded
		}
		return d, nil
	}
	return n.cfg.ApplyTimeout, nil
}

// mapRaftErr turns hashicorp/raft's errors into this package's sentinels.
func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrNotVoter):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, hraft.ErrLeadershipLost), errors.Is(err, hraft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, hraft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	default:
		return err
	}
}

// Apply proposes cmd and waits until it is committed and applied on this
// node. It fails with ErrNotLeader on a follower. Domain errors of the state
// machine (ErrTopicExists, ErrStalePartitionEpoch, ...) come back wrapped.
// ctx bounds the time to hand the command to raft; once handed over, the
// call returns when the entry is applied or leadership is lost
// (ErrLeadershipLost: outcome unknown, safe to retry) or the node closes.
func (n *Node) Apply(ctx context.Context, cmd Command) (Result, error) {
	timeout, err := n.timeout(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("apply %s: %w", cmd.Type(), err)
	}
	if !n.IsLeader() {
		return Result{}, fmt.Errorf("apply %s: %w", cmd.Type(), ErrNotLeader)
	}
	return applyOutcome(cmd, n.r.Apply(EncodeCommand(cmd), timeout))
}

// ApplyAll proposes cmds in order without waiting between them, then waits
// for all: raft commits them in few disk writes and the state machine
// applies them in few copy-on-write batches, which is far cheaper than one
// Apply after another (a failover moving many partitions). errs[i] is the
// outcome of cmds[i] as Apply would report it; the commands are independent
// (a failing one does not stop the rest). ctx bounds the enqueueing.
func (n *Node) ApplyAll(ctx context.Context, cmds []Command) (results []Result, errs []error) {
	results = make([]Result, len(cmds))
	errs = make([]error, len(cmds))
	futures := make([]hraft.ApplyFuture, len(cmds))
	for i, cmd := range cmds {
		timeout, err := n.timeout(ctx)
		if err == nil && !n.IsLeader() {
			err = ErrNotLeader
		}
		if err != nil {
			errs[i] = fmt.Errorf("apply %s: %w", cmd.Type(), err)
			continue
		}
		futures[i] = n.r.Apply(EncodeCommand(cmd), timeout)
	}
	for i, f := range futures {
		if f != nil {
			results[i], errs[i] = applyOutcome(cmds[i], f)
		}
	}
	return results, errs
}

// applyOutcome waits for f and unwraps the state machine's response.
func applyOutcome(cmd Command, f hraft.ApplyFuture) (Result, error) {
	if err := f.Error(); err != nil {
		return Result{}, fmt.Errorf("apply %s: %w", cmd.Type(), mapRaftErr(err))
	}
	resp, ok := f.Response().(*applyResponse)
	if !ok {
		return Result{}, fmt.Errorf("apply %s: unexpected fsm response %T", cmd.Type(), f.Response())
	}
	if resp.err != nil {
		return Result{}, resp.err
	}
	return resp.res, nil
}

// Barrier waits until every entry committed before it is applied on this
// node; leader only.
func (n *Node) Barrier(ctx context.Context) error {
	timeout, err := n.timeout(ctx)
	if err != nil {
		return fmt.Errorf("raft barrier: %w", err)
	}
	return mapRaftErr(n.r.Barrier(timeout).Error())
}

// AddVoter adds (or promotes) node id at addr as a voter; leader only.
func (n *Node) AddVoter(id int32, addr string) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := n.r.AddVoter(serverID(id), hraft.ServerAddress(addr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("add voter %d at %s: %w", id, addr, mapRaftErr(err))
	}
	return nil
}

// AddNonvoter adds node id at addr as a non-voter: it receives the log but
// does not vote; leader only.
func (n *Node) AddNonvoter(id int32, addr string) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := n.r.AddNonvoter(serverID(id), hraft.ServerAddress(addr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("add nonvoter %d at %s: %w", id, addr, mapRaftErr(err))
	}
	return nil
}

// RemoveServer removes node id from the raft configuration; leader only.
func (n *Node) RemoveServer(id int32) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := n.r.RemoveServer(serverID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("remove server %d: %w", id, mapRaftErr(err))
	}
	return nil
}

// Server is one member of the raft configuration.
type Server struct {
	ID    int32
	Addr  string
	Voter bool
}

// Servers returns the latest raft configuration (committed or not) as this
// node knows it, ordered as raft keeps it. Members whose ServerID is not a
// node id (never written by this package) are skipped.
func (n *Node) Servers() ([]Server, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", mapRaftErr(err))
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		id, ok := parseServerID(s.ID)
		if !ok {
			continue
		}
		out = append(out, Server{ID: id, Addr: string(s.Address), Voter: s.Suffrage == hraft.Voter})
	}
	return out, nil
}

// TransferLeadership hands leadership to another voter (e.g. before a
// planned shutdown of the controller) and waits until that succeeded or
// failed; leader only.
func (n *Node) TransferLeadership() error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := n.r.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("transfer leadership: %w", mapRaftErr(err))
	}
	return nil
}

// Close shuts raft down (which closes the transport), stops the leader
// watcher and closes the bolt store. Further calls return the first result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		err := n.r.Shutdown().Error()
		n.r.DeregisterObserver(n.obs)
		close(n.stop)
		n.wg.Wait()
		n.closeErr = errors.Join(err, n.trans.Close(), n.store.Close())
		if n.closeErr != nil {
			n.closeErr = fmt.Errorf("close raft node %d: %w", n.cfg.NodeID, n.closeErr)
		}
	})
	return n.closeErr
}
