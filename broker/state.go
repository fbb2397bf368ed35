package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/stromhq/strom/raft"
)

// raftDirName is the raft data directory inside the data dir.
const raftDirName = "__raft"

// metaTimeout bounds raft applies made on behalf of requests and at startup.
const metaTimeout = 10 * time.Second

// open starts raft (a new cluster has this node as its one voter, or the
// static Voters), waits for a leader (a quorum of the voters), makes sure
// the cluster has an id, registers this broker (fenced when there are
// several voters, until the controller sees it heartbeat), and opens the
// partition logs it hosts. With several voters it returns once the
// controller unfenced the broker.
func (b *Broker) open() error {
	if err := os.MkdirAll(b.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	b.staticConfigs = b.staticBrokerConfigs()
	raftTLS, err := b.cfg.raftTLS()
	if err != nil {
		return err
	}
	node, err := raft.Open(raft.Config{
		NodeID:    b.cfg.NodeID,
		DataDir:   filepath.Join(b.cfg.DataDir, raftDirName),
		BindAddr:  b.cfg.RaftListen,
		Bootstrap: !b.cfg.BrokerOnly,
		Voters:    b.cfg.Voters,
		NonVoter:  b.cfg.BrokerOnly,
		TLS:       raftTLS,
		Logger:    b.log.With("component", "raft"),

		BrokerSessionTimeout:               b.cfg.BrokerSessionTimeout,
		LeaderImbalanceCheckInterval:       b.leaderImbalanceCheckInterval(),
		LeaderImbalancePerBrokerPercentage: b.cfg.LeaderImbalancePerBrokerPercentage,
	})
	if err != nil {
		return fmt.Errorf("open raft: %w", err)
	}
	b.node = node
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.StartTimeout)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		_ = node.Close()
		if b.multiNode() {
			return fmt.Errorf("%w: no raft leader among the voters %s within %v: a majority (%d of %d) must be running and reachable: %w",
				raft.ErrNoQuorum, raft.FormatVoters(b.cfg.Voters), b.cfg.StartTimeout, len(b.cfg.Voters)/2+1, len(b.cfg.Voters), err)
		}
		return fmt.Errorf("wait for raft leader: %w", err)
	}
	// Applying InitCluster (again, when raft's leader already set the id) is
	// also a barrier: once it returns, every earlier log entry is applied, so
	// the broker list read below is the whole cluster's. A mismatch means the
	// raft leader's own InitCluster won the race, which is as good.
	clusterID := node.State().ClusterID
	if clusterID == "" {
		clusterID = raft.NewClusterID()
	}
	if _, err := node.Apply(ctx, raft.InitCluster{ClusterID: clusterID}); err != nil &&
		!errors.Is(err, raft.ErrClusterIDMismatch) {
		_ = node.Close()
		return fmt.Errorf("init cluster: %w", err)
	}
	if err := writeMetaProperties(filepath.Join(b.cfg.DataDir, raftDirName), node.State().ClusterID, b.cfg.NodeID); err != nil {
		_ = node.Close()
		return err
	}
	if err := b.bootstrapSCRAM(ctx); err != nil {
		_ = node.Close()
		return err
	}
	if len(node.State().Brokers) == 0 { // the first start of a new cluster
		if err := b.writeBootstrapConfigs(ctx); err != nil {
			_ = node.Close()
			return err
		}
	}
	host, port, err := splitHostPort(b.advertised())
	if err != nil {
		_ = node.Close()
		return err
	}
	endpoints, err := b.endpoints()
	if err != nil {
		_ = node.Close()
		return err
	}
	reg, err := node.Apply(ctx, raft.RegisterBroker{ID: b.cfg.NodeID, Host: host, Port: port, Rack: b.cfg.Rack, Listeners: endpoints,
		IncarnationID: raft.NewTopicID(), Fenced: b.multiNode()})
	if err != nil {
		_ = node.Close()
		return fmt.Errorf("register broker: %w", err)
	}
	b.fetchers = newFetcherManager(b)
	b.brokerEpoch = reg.BrokerEpoch
	b.bgWG.Add(1)
	go b.heartbeatLoop(reg.BrokerEpoch)
	if b.multiNode() {
		if err := b.waitUnfenced(ctx, reg.BrokerEpoch); err != nil {
			b.cancel()
			b.bgWG.Wait()
			_ = node.Close()
			return err
		}
	}
	b.parts = newPartitionManager(b)
	b.parts.removeStrayDirs()
	b.parts.reconcile()
	b.groups = newCoordinator(b)
	b.txns = newTxnCoordinator(b)
	b.bgWG.Add(2)
	go func() {
		defer b.bgWG.Done()
		b.groups.run(b.ctx)
	}()
	go func() {
		defer b.bgWG.Done()
		b.txns.run(b.ctx)
	}()
	ch, unsub := node.Subscribe()
	b.unsubscribe = unsub
	b.bgWG.Add(1)
	go func() {
		defer b.bgWG.Done()
		for {
			select {
			case <-b.ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				b.parts.reconcile()
			}
		}
	}()
	b.bgWG.Add(2)
	go b.maintain()
	go b.sweepDelegationTokens()
	return nil
}

// advertised is the HOST:PORT published to clients.
func (b *Broker) advertised() string {
	return b.interBroker().advertised()
}

// closeState closes the partition logs (clean shutdown) and then raft.
func (b *Broker) closeState() error {
	if b.unsubscribe != nil {
		b.unsubscribe()
	}
	var errs []error
	if b.parts != nil {
		errs = append(errs, b.parts.closeAll())
	}
	if b.node != nil {
		if err := b.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft: %w", err))
		}
	}
	return errors.Join(errs...)
}

// apply runs one raft command on behalf of a request and then reconciles the
// partition logs, so the request's effect is visible when it is answered.
func (b *Broker) apply(ctx context.Context, cmd raft.Command) (raft.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	res, err := b.node.Apply(ctx, cmd)
	if err == nil {
		b.parts.reconcile()
	}
	return res, err
}

// leaderImbalanceCheckInterval maps auto.leader.rebalance.enable and the
// check interval onto raft's one setting (negative: no balancing).
func (b *Broker) leaderImbalanceCheckInterval() time.Duration {
	if !b.cfg.AutoLeaderRebalance {
		return -1
	}
	return b.cfg.LeaderImbalanceCheckInterval
}

// staticBrokerConfigs are the broker configs fixed by flags (Kafka's
// STATIC_BROKER_CONFIG source).
func (b *Broker) staticBrokerConfigs() map[string]string {
	m := map[string]string{
		"node.id":                     strconv.Itoa(int(b.cfg.NodeID)),
		"broker.id":                   strconv.Itoa(int(b.cfg.NodeID)),
		"log.dirs":                    b.cfg.DataDir,
		"num.partitions":              strconv.Itoa(int(b.cfg.DefaultPartitions)),
		"default.replication.factor":  strconv.Itoa(int(b.cfg.DefaultReplicationFactor)),
		"auto.create.topics.enable":   strconv.FormatBool(b.cfg.AutoCreateTopics),
		"socket.request.max.bytes":    strconv.Itoa(int(b.cfg.MaxRequestBytes)),
		"socket.send.buffer.bytes":    strconv.Itoa(b.cfg.SocketSendBufferBytes),
		"socket.receive.buffer.bytes": strconv.Itoa(b.cfg.SocketReceiveBufferBytes),

		"auto.leader.rebalance.enable":            strconv.FormatBool(b.cfg.AutoLeaderRebalance),
		"leader.imbalance.check.interval.seconds": strconv.Itoa(int(b.cfg.LeaderImbalanceCheckInterval / time.Second)),
		"leader.imbalance.per.broker.percentage":  strconv.Itoa(b.cfg.LeaderImbalancePerBrokerPercentage),
	}
	// Kafka's defaults of these two are null; they are listed when set.
	if b.cfg.Rack != "" {
		m["broker.rack"] = b.cfg.Rack
	}
	if b.cfg.ReplicaSelectorClass != "" {
		m["replica.selector.class"] = b.cfg.ReplicaSelectorClass
	}
	return m
}

// writeBootstrapConfigs records the cluster-wide dynamic broker configs a
// freshly formatted Apache Kafka 4.x cluster starts with, so a new Strom
// cluster describes the same way: Kafka's storage format writes
// min.insync.replicas (the static value, default 1) as a cluster default, and
// topics then report it as DYNAMIC_DEFAULT_BROKER_CONFIG (seen with Kafka
// 4.3.1 by integration's TestDifferential). Called on the first start of a
// new cluster, before any broker registers; a crash before the registration
// writes the same entry again on the next start.
func (b *Broker) writeBootstrapConfigs(ctx context.Context) error {
	minISR := topicConfigs["min.insync.replicas"].def
	if v, ok := b.staticConfigs["min.insync.replicas"]; ok {
		minISR = v
	}
	cmd := raft.AlterConfigs{Resource: raft.ResourceBroker, Name: "",
		Set: map[string]string{"min.insync.replicas": minISR}}
	if _, err := b.node.Apply(ctx, cmd); err != nil {
		return fmt.Errorf("write bootstrap cluster configs: %w", err)
	}
	return nil
}
