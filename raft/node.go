package raft

import (
	"context"
	"crypto/tls"
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
	// holds no raft state; ignored when state exists or Voters is set.
	Bootstrap bool
	// Voters is the static voter set (Kafka's controller.quorum.voters):
	// when set it must list NodeID, and a node without raft state
	// bootstraps the cluster with exactly these voters (every member does
	// so with the identical configuration, which hashicorp/raft allows).
	// AdvertiseAddr defaults to this node's entry. Ignored for a node with
	// existing state, whose configuration lives in its log. One voter
	// (NodeID itself) behaves like Bootstrap.
	Voters []Voter
	// NonVoter makes this node a broker-only member (Kafka's
	// process.roles=broker): it never bootstraps, votes or leads; it asks
	// the Voters, which must be set and must not list NodeID, to add it as
	// a raft non-voter (join.go) and from then on receives the log like any
	// follower. AdvertiseAddr (or a dialable BindAddr) is the address the
	// leader replicates to.
	NonVoter bool
	// TLS, when set, secures the raft port: every connection, raft RPCs
	// and forwarded commands alike, is TLS in both directions with this
	// config. Certificates is this node's certificate (its names must
	// cover the address peers dial), RootCAs verifies the peers' server
	// certificates, and ClientCAs with ClientAuth
	// tls.RequireAndVerifyClientCert makes the port mutual TLS, so only
	// holders of a certificate of the cluster's CA can reach raft. Without
	// it the port is plain TCP and must be on a trusted network, like a
	// PLAINTEXT controller listener in Kafka.
	TLS *tls.Config
	// BrokerSessionTimeout, when positive, makes the raft leader the
	// controller of broker liveness (liveness.go): a registered broker it
	// has not heard from (Node.Heartbeat) for this long is fenced with
	// FenceCommands, and a fenced broker heartbeating its current epoch,
	// caught up to its registration, is unfenced with UnfenceCommands.
	// Zero: no liveness tracking (no broker is ever fenced by time).
	BrokerSessionTimeout time.Duration
	// LeaderImbalanceCheckInterval is Kafka's
	// leader.imbalance.check.interval.seconds: how often the controller
	// (which runs only with BrokerSessionTimeout) moves leaderships back
	// to preferred replicas with RebalanceCommands. Negative disables
	// automatic balancing (auto.leader.rebalance.enable=false).
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is Kafka's
	// leader.imbalance.per.broker.percentage: the share of a broker's
	// preferred partitions it may not lead before balancing acts.
	LeaderImbalancePerBrokerPercentage int
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

// soleVoterTimeout replaces the heartbeat, election and leader lease
// timeouts (when shorter) of a node whose configuration has no voter but
// itself: no peer can contest its election, so the first heartbeat timeout
// is pure waiting. hashicorp/raft's lease is not reloadable, so the short
// lease stays until restart; once leader, the heartbeat timeout is raised to
// twice the lease (soleVoterTimeout*2), the same lease-to-heartbeat ratio
// as DefaultConfig, so voters added later are heartbeaten well within it.
const soleVoterTimeout = 50 * time.Millisecond

// DefaultConfig returns the tuning defaults, the only place they are set.
// The timeouts suit a LAN. A node that is the only voter of its
// configuration starts with soleVoterTimeout instead, so it leads within
// ~50-100 ms; any other voter waits only the leader lease for its first
// election, until it knows a leader.
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

		LeaderImbalanceCheckInterval:       300 * time.Second,
		LeaderImbalancePerBrokerPercentage: 10,
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
	setDur(&c.LeaderImbalanceCheckInterval, d.LeaderImbalanceCheckInterval)
	if c.LeaderImbalancePerBrokerPercentage == 0 {
		c.LeaderImbalancePerBrokerPercentage = d.LeaderImbalancePerBrokerPercentage
	}
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
	// stream is the transport's stream layer; Close waits for its
	// goroutines (forward handlers included).
	stream *tcpStream
	obs    *hraft.Observer
	// progress is the followers' replication progress while this node
	// leads (quorum.go); set before raft starts.
	progress *progress
	// ctrl tracks broker liveness while this node leads; nil when
	// BrokerSessionTimeout is zero.
	ctrl *controller
	hlog *hclogAdapter

	// soleVoter is set when Open found this node the only voter and started
	// raft with soleVoterTimeout. relaxedHeartbeat is the heartbeat timeout
	// watchLeader reloads once a leader is known, when Open started raft
	// with a shorter one (0: no reload); only watchLeader changes it after
	// Open.
	soleVoter        bool
	relaxedHeartbeat time.Duration

	// opened is closed once Open has set r, or has failed: the transport
	// accepts forward connections before raft exists, and their handlers
	// wait for it.
	opened chan struct{}

	// stop is closed by Close: it ends watchLeader and the controller (wg
	// waits for them) and wakes WaitLeader and ApplyAll callers.
	stop      chan struct{}
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node on cfg.DataDir, restoring the latest snapshot and
// replaying the log. With no existing state and cfg.Bootstrap (or Voters
// naming only this node) it forms a one-voter cluster and waits (up to
// StartTimeout) until it leads and the cluster id is set. With several
// Voters it bootstraps their configuration and returns at once: a leader
// needs a majority of them running, so the caller waits with WaitLeader. A node with existing state returns at once too.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.NodeID < 0 || cfg.DataDir == "" || cfg.BindAddr == "" {
		return nil, fmt.Errorf("open raft node: %w: need NodeID >= 0, DataDir and BindAddr", ErrInvalidCommand)
	}
	if cfg.NonVoter {
		if len(cfg.Voters) == 0 {
			return nil, fmt.Errorf("open raft node: %w: a non-voter needs the voters to join", ErrInvalidVoters)
		}
		if _, listed := voterFor(cfg.Voters, cfg.NodeID); listed {
			return nil, fmt.Errorf("open raft node: %w: non-voter %d is listed among the voters %s", ErrInvalidVoters, cfg.NodeID, FormatVoters(cfg.Voters))
		}
		if err := validateVoters(cfg.Voters, cfg.Voters[0].ID); err != nil {
			return nil, fmt.Errorf("open raft node: %w", err)
		}
	} else if len(cfg.Voters) > 0 {
		if err := validateVoters(cfg.Voters, cfg.NodeID); err != nil {
			return nil, fmt.Errorf("open raft node: %w", err)
		}
		if cfg.AdvertiseAddr == "" {
			self, _ := voterFor(cfg.Voters, cfg.NodeID)
			cfg.AdvertiseAddr = self.Addr
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("open raft node: %w", err)
	}
	hlog := newHCLogAdapter(cfg.Logger)
	n := &Node{cfg: cfg, fsm: newFSM(), stop: make(chan struct{}), opened: make(chan struct{}), hlog: hlog}
	if cfg.BrokerSessionTimeout > 0 {
		n.ctrl = newController(n, cfg.BrokerSessionTimeout)
	}
	var err error
	dbPath := filepath.Join(cfg.DataDir, "raft.db")
	n.store, err = raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", dbPath, err)
	}
	fail := func(err error) (*Node, error) {
		close(n.opened)
		if n.trans != nil {
			_ = n.trans.Close()
		}
		if n.stream != nil {
			_ = n.stream.Close()
			n.stream.wait()
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
	stream, err := newTCPStream(cfg.BindAddr, adv, cfg.TLS, n.serveForward)
	if err != nil {
		return fail(fmt.Errorf("raft transport on %s: %w", cfg.BindAddr, err))
	}
	n.stream = stream
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
	// A leader that demotes itself (DemoteVoter, Kafka's RemoveRaftVoter)
	// steps down and must stay a follower: every node is also a broker
	// that needs the metadata log. hashicorp's default shuts raft down.
	rc.ShutdownOnRemove = false
	if err := hraft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("raft config: %w", err))
	}

	existing, err := hraft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fail(fmt.Errorf("inspect raft state in %s: %w", cfg.DataDir, err))
	}
	bootstrapped := false
	bootstrap := !existing && !cfg.NonVoter && (cfg.Bootstrap || len(cfg.Voters) > 0)
	sole := bootstrap && len(cfg.Voters) <= 1
	if existing && !cfg.NonVoter {
		sole = isSoleVoter(n.store, snaps, rc.LocalID)
	}
	switch {
	case sole:
		n.soleVoter = true
		hlog.soleVoter.Store(true)
		if fast := soleVoterTimeout; fast < rc.HeartbeatTimeout {
			rc.HeartbeatTimeout, rc.ElectionTimeout = fast, fast
			rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, fast)
			n.relaxedHeartbeat = min(cfg.HeartbeatTimeout, 2*rc.LeaderLeaseTimeout)
		}
	case !cfg.NonVoter && rc.LeaderLeaseTimeout < rc.HeartbeatTimeout:
		// A voter among several knows no leader at start either, and a
		// whole cluster starting (or restarting) at once waits out a
		// heartbeat timeout before its first election. Until a leader is
		// known it waits only the lease, the shortest timeout raft allows
		// without shortening the lease, which is not reloadable: on a
		// fresh three-node cluster that is about 0.3 s less before it is
		// ready. A node joining a running cluster hears the leader well
		// within it (heartbeats come every tenth of the leader's
		// timeout), and pre-vote keeps an early campaign from deposing
		// anyone.
		n.relaxedHeartbeat = rc.HeartbeatTimeout
		rc.HeartbeatTimeout = rc.LeaderLeaseTimeout
		rc.ElectionTimeout = min(rc.ElectionTimeout, rc.LeaderLeaseTimeout)
	}
	if bootstrap {
		conf := hraft.Configuration{Servers: []hraft.Server{{Suffrage: hraft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr()}}}
		if len(cfg.Voters) > 1 {
			conf.Servers = nil
			for _, v := range cfg.Voters {
				addr := hraft.ServerAddress(v.Addr)
				if v.ID == cfg.NodeID {
					addr = n.trans.LocalAddr()
				}
				conf.Servers = append(conf.Servers, hraft.Server{Suffrage: hraft.Voter, ID: serverID(v.ID), Address: addr})
			}
		}
		if err := hraft.BootstrapCluster(rc, n.store, n.store, snaps, n.trans, conf); err != nil {
			return fail(fmt.Errorf("bootstrap raft cluster: %w", err))
		}
		bootstrapped = true
	}
	// The raft instance sees the transport through progressTransport, which
	// records followers' replication progress for DescribeQuorum.
	// Raft's goroutines may send before NewRaft returns, so the log's last
	// index is read through a pointer published once it has.
	var started atomic.Pointer[hraft.Raft]
	n.progress = newProgress(func() uint64 {
		if r := started.Load(); r != nil {
			return r.LastIndex()
		}
		return 0
	})
	n.r, err = hraft.NewRaft(rc, n.fsm, n.store, n.store, snaps, &progressTransport{NetworkTransport: n.trans, p: n.progress})
	started.Store(n.r)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	close(n.opened)
	if existing && len(cfg.Voters) > 0 && !cfg.NonVoter {
		if f := n.r.GetConfiguration(); f.Error() == nil {
			if stored := configVoters(f.Configuration()); FormatVoters(stored) != FormatVoters(sortedVoters(cfg.Voters)) {
				cfg.Logger.Warn("raft: the data dir holds a cluster whose voters differ from the configured ones; keeping the stored configuration",
					"configured", FormatVoters(cfg.Voters), "stored", FormatVoters(stored))
			}
		}
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
	if n.ctrl != nil {
		n.wg.Add(1)
		go n.ctrl.run()
	}
	if cfg.NonVoter {
		n.wg.Add(1)
		go n.joinLoop()
	}

	if bootstrapped && sole {
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
		if ctrl >= 0 && n.relaxedHeartbeat > 0 {
			n.relaxTimeouts()
		}
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

// relaxTimeouts raises the heartbeat and election timeouts of a node that
// started with short ones (a sole voter, see soleVoterTimeout, or a voter
// among several, see Open) once a leader is known: itself for a sole voter.
// Only watchLeader calls it; a failed reload keeps the short timeouts, which
// are valid, so it is logged and not retried.
func (n *Node) relaxTimeouts() {
	hb := n.relaxedHeartbeat
	n.relaxedHeartbeat = 0
	cur := n.r.ReloadableConfig()
	cur.HeartbeatTimeout = hb
	cur.ElectionTimeout = max(hb, n.cfg.ElectionTimeout)
	if err := n.r.ReloadConfig(cur); err != nil {
		n.cfg.Logger.Warn("raft: keeping start-up timeouts", "err", err)
	}
}

// isSoleVoter reports whether the latest configuration stored in the raft
// log (or, when the log holds none after the newest snapshot, in that
// snapshot) has exactly one voter, id. Any doubt (unreadable entries) says
// false, which only costs the normal election delay.
func isSoleVoter(store *raftboltdb.BoltStore, snaps hraft.SnapshotStore, id hraft.ServerID) (sole bool) {
	defer func() {
		if recover() != nil { // hraft.DecodeConfiguration panics on bad input
			sole = false
		}
	}()
	var conf *hraft.Configuration
	var snapCfgIndex uint64
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		conf = &metas[0].Configuration
		snapCfgIndex = metas[0].ConfigurationIndex
	}
	first, err1 := store.FirstIndex()
	last, err2 := store.LastIndex()
	if err1 != nil || err2 != nil {
		return false
	}
	for i := last; i >= max(first, snapCfgIndex+1) && i > 0; i-- {
		var e hraft.Log
		if err := store.GetLog(i, &e); err != nil {
			return false
		}
		if e.Type == hraft.LogConfiguration {
			c := hraft.DecodeConfiguration(e.Data)
			conf = &c
			break
		}
	}
	if conf == nil {
		return false
	}
	voters := 0
	for _, srv := range conf.Servers {
		if srv.Suffrage == hraft.Voter {
			voters++
			if srv.ID != id {
				return false
			}
		}
	}
	return voters == 1
}

// initCluster gives a cluster without an id one. The barrier first applies
// every entry of earlier terms, so a restarted leader sees the id it already
// has instead of proposing a second one. The proposal itself is not awaited:
// if another InitCluster precedes it in the log it fails harmlessly, and if
// leadership is lost the next leader proposes again.
func (n *Node) initCluster() {
	if err := n.awaitBarrier(n.cfg.ApplyTimeout); err != nil {
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
// node, from any node: a follower forwards it to the raft leader (see
// ApplyAll for the retry rules) and returns once its own State() includes
// the entry. Domain errors of the state machine (ErrTopicExists,
// ErrStalePartitionEpoch, ...) come back wrapped, also from a remote
// leader. ctx bounds the whole call (ApplyTimeout when it has no deadline).
func (n *Node) Apply(ctx context.Context, cmd Command) (Result, error) {
	res, errs := n.ApplyAll(ctx, []Command{cmd})
	return res[0], errs[0]
}

// ApplyAll proposes cmds in order without waiting between them, then waits
// for all: raft commits them in few disk writes and the state machine
// applies them in few copy-on-write batches, which is far cheaper than one
// Apply after another (a failover moving many partitions). errs[i] is the
// outcome of cmds[i]; the commands are independent (a failing one does not
// stop the rest).
//
// On a node that is not the leader the commands go to the leader over the
// raft port (forward.go). Commands that fail with ErrNotLeader, or with
// ErrLeadershipLost (outcome unknown; commands are idempotent), or because
// the leader was unreachable, are retried on the next leader until ctx
// ends (ApplyTimeout when ctx has no deadline); then they fail with the
// last error joined with ctx's. When commands were applied by a remote
// leader, ApplyAll returns only once this node's State() has reached the
// highest of their log indexes (for domain errors too, so the state that
// caused them is visible); if ctx ends first the affected successes fail
// with ctx's error. Results carry the entry's log index even on a domain
// error.
func (n *Node) ApplyAll(ctx context.Context, cmds []Command) (results []Result, errs []error) {
	results = make([]Result, len(cmds))
	errs = make([]error, len(cmds))
	if len(cmds) == 0 {
		return results, errs
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	pending := make([]int, len(cmds))
	for i := range pending {
		pending[i] = i
	}
	var remoteIndex uint64 // highest log index a remote leader reported
	var notify <-chan struct{}
	backoff := 5 * time.Millisecond
	for {
		sub := make([]Command, len(pending))
		for j, i := range pending {
			sub[j] = cmds[i]
		}
		var res []Result
		var es []error
		if n.closed.Load() {
			res, es = make([]Result, len(sub)), make([]error, len(sub))
			for j, c := range sub {
				es[j] = fmt.Errorf("apply %s: %w", c.Type(), ErrClosed)
			}
		} else if n.IsLeader() {
			res, es = n.applyAllLocal(ctx, sub)
		} else if addr, _ := n.r.LeaderWithID(); addr != "" {
			res, es = forwardApply(ctx, n.stream.dialContext, string(addr), sub)
			for j := range res {
				if es[j] == nil || !retryable(es[j]) {
					remoteIndex = max(remoteIndex, res[j].Index)
				}
			}
		} else {
			res, es = make([]Result, len(sub)), make([]error, len(sub))
			for j, c := range sub {
				es[j] = fmt.Errorf("apply %s: %w: no leader known", c.Type(), ErrNotLeader)
			}
		}
		next := pending[:0:0]
		for j, i := range pending {
			results[i], errs[i] = res[j], es[j]
			if retryable(es[j]) {
				next = append(next, i)
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
		if ctx.Err() == nil && notify == nil {
			ch, unsub := n.Subscribe()
			defer unsub()
			notify = ch
		}
		select {
		case <-notify: // e.g. a new leader is known
		case <-time.After(backoff):
		case <-n.stop:
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 200*time.Millisecond)
		if ctx.Err() != nil {
			for _, i := range pending {
				errs[i] = errors.Join(errs[i], fmt.Errorf("apply %s: gave up: %w", cmds[i].Type(), ctx.Err()))
			}
			break
		}
	}
	if remoteIndex > 0 {
		if err := n.waitApplied(ctx, remoteIndex); err != nil {
			for i := range cmds {
				if errs[i] == nil && results[i].Index > n.State().Version {
					errs[i] = fmt.Errorf("apply %s: committed at index %d, not yet applied here: %w", cmds[i].Type(), results[i].Index, err)
				}
			}
		}
	}
	return results, errs
}

// retryable reports the outcomes ApplyAll retries on the next leader.
func retryable(err error) bool {
	return err != nil && (errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, errUnreachable)) &&
		!errors.Is(err, ErrClosed)
}

// waitApplied blocks until this node's state has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	if n.State().Version >= index {
		return nil
	}
	ch, cancel := n.Subscribe()
	defer cancel()
	for n.State().Version < index {
		select {
		case <-ch:
		case <-n.stop:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// applyAllLocal is ApplyAll on the leader, without forwarding or retries:
// ErrNotLeader when this node does not lead. ctx bounds the enqueueing.
func (n *Node) applyAllLocal(ctx context.Context, cmds []Command) (results []Result, errs []error) {
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

// applyOutcome waits for f and unwraps the state machine's response. A
// domain error keeps the entry's index in the Result.
func applyOutcome(cmd Command, f hraft.ApplyFuture) (Result, error) {
	if err := f.Error(); err != nil {
		return Result{}, fmt.Errorf("apply %s: %w", cmd.Type(), mapRaftErr(err))
	}
	resp, ok := f.Response().(*applyResponse)
	if !ok {
		return Result{}, fmt.Errorf("apply %s: unexpected fsm response %T", cmd.Type(), f.Response())
	}
	if resp.err != nil {
		return Result{Index: f.Index()}, resp.err
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
	return n.awaitBarrier(timeout)
}

// awaitBarrier issues a raft barrier and waits for it, or until Close. A
// barrier hashicorp/raft has queued but not yet taken when it shuts down is
// never answered (its future has no shutdown channel), so a goroutine owned
// by the node that waited on it alone would keep Close waiting forever (seen
// as a hung broker test: the controller's step in Barrier, Close in
// wg.Wait). The waiting goroutine then stays parked on that future; it
// exits as soon as raft answers, which it does except in that race.
func (n *Node) awaitBarrier(timeout time.Duration) error {
	f := n.r.Barrier(timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return mapRaftErr(err)
	case <-n.stop:
		return ErrClosed
	}
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
		terr := n.trans.Close()
		n.stream.wait()
		n.closeErr = errors.Join(err, terr, n.store.Close())
		if n.closeErr != nil {
			n.closeErr = fmt.Errorf("close raft node %d: %w", n.cfg.NodeID, n.closeErr)
		}
	})
	return n.closeErr
}
