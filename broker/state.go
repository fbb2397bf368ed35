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

// open starts raft (one voter when the cluster is new), makes sure the cluster
// has an id, registers this broker, and opens the partition logs it hosts.
func (b *Broker) open() error {
	if err := os.MkdirAll(b.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	b.staticConfigs = b.staticBrokerConfigs()
	node, err := raft.Open(raft.Config{
		NodeID:    b.cfg.NodeID,
		DataDir:   filepath.Join(b.cfg.DataDir, raftDirName),
		BindAddr:  b.cfg.RaftListen,
		Bootstrap: true,
		Logger:    b.log.With("component", "raft"),
	})
	if err != nil {
		return fmt.Errorf("open raft: %w", err)
	}
	b.node = node
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		_ = node.Close()
		return fmt.Errorf("wait for raft leader: %w", err)
	}
	if node.State().ClusterID == "" {
		if _, err := node.Apply(ctx, raft.InitCluster{ClusterID: raft.NewClusterID()}); err != nil {
			_ = node.Close()
			return fmt.Errorf("init cluster: %w", err)
		}
	}
	host, port, err := splitHostPort(b.advertised())
	if err != nil {
		_ = node.Close()
		return err
	}
	if _, err := node.Apply(ctx, raft.RegisterBroker{ID: b.cfg.NodeID, Host: host, Port: port, IncarnationID: raft.NewTopicID()}); err != nil {
		_ = node.Close()
		return fmt.Errorf("register broker: %w", err)
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
	b.bgWG.Add(1)
	go b.maintain()
	return nil
}

// advertised is the HOST:PORT published to clients.
func (b *Broker) advertised() string {
	if b.cfg.Advertise != "" {
		return b.cfg.Advertise
	}
	return b.addr
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

// staticBrokerConfigs are the broker configs fixed by flags (Kafka's
// STATIC_BROKER_CONFIG source).
func (b *Broker) staticBrokerConfigs() map[string]string {
	return map[string]string{
		"node.id":                    strconv.Itoa(int(b.cfg.NodeID)),
		"broker.id":                  strconv.Itoa(int(b.cfg.NodeID)),
		"log.dirs":                   b.cfg.DataDir,
		"num.partitions":             strconv.Itoa(int(b.cfg.DefaultPartitions)),
		"default.replication.factor": strconv.Itoa(int(b.cfg.DefaultReplicationFactor)),
		"auto.create.topics.enable":  strconv.FormatBool(b.cfg.AutoCreateTopics),
		"socket.request.max.bytes":   strconv.Itoa(int(b.cfg.MaxRequestBytes)),
	}
}
