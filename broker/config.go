package broker

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stromhq/strom/raft"
)

// Config is the configuration of one broker. Obtain one from DefaultConfig and
// change what you need; the zero Config is not valid.
type Config struct {
	// DataDir holds one directory per hosted partition (<topic>-<partition>)
	// and the raft data (__raft).
	DataDir string
	// Listen is the HOST:PORT the Kafka listener binds. Port 0 picks a free
	// port (tests); Broker.Addr reports the bound address. Ignored when
	// Listeners is set.
	Listen string
	// Advertise is the HOST:PORT published in metadata. Empty means the bound
	// listen address. Ignored when Listeners is set.
	Advertise string
	// Listeners are the Kafka listeners (listeners,
	// listener.security.protocol.map and advertised.listeners; build them
	// with ParseListeners). Empty means one PLAINTEXT listener on Listen
	// advertising Advertise.
	Listeners []Listener
	// InterBrokerListener is inter.broker.listener.name: the listener other
	// brokers reach this one on (replica fetches, transaction markers).
	// Every broker of a cluster must use the same name. Empty: the first
	// listener.
	InterBrokerListener string
	// InterBrokerSASL is the SASL client identity this broker presents when
	// the inter-broker listener uses SASL.
	InterBrokerSASL SASLCredentials
	// SASLMechanisms is sasl.enabled.mechanisms of SASL listeners: any of
	// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER.
	SASLMechanisms []string
	// OAuthBearer is how OAUTHBEARER tokens are validated (oauth.go).
	OAuthBearer OAuthBearerConfig
	// DelegationTokens configures delegation tokens (tokens.go): without
	// a secret key the token APIs answer DELEGATION_TOKEN_AUTH_DISABLED.
	DelegationTokens DelegationTokenConfig
	// ConnectionsMaxReauth is connections.max.reauth.ms (KIP-368): the
	// longest a SASL session lasts before the client must re-authenticate
	// on the connection; 0 means no limit (an OAUTHBEARER session still
	// ends when its token expires, as in Kafka).
	ConnectionsMaxReauth time.Duration
	// TLS holds the certificate and client verification of SSL and
	// SASL_SSL listeners.
	TLS TLSConfig
	// SCRAMUsers are credentials created at start when the user has none
	// for the mechanism (`--add-scram`).
	SCRAMUsers []SCRAMUser
	// NodeID is this broker's id, also its raft server id.
	NodeID int32
	// Rack is broker.rack: the rack (availability zone) of this broker,
	// registered through raft. Replica placement spreads each partition's
	// replicas over racks, and consumers in a rack may fetch from a replica
	// there (ReplicaSelectorClass). Empty: no rack.
	Rack string
	// ReplicaSelectorClass is replica.selector.class: empty (Kafka's
	// default) keeps consumers on partition leaders; RackAwareSelector
	// makes a leader point a consumer that names its rack (Fetch v11+) at
	// an in-sync replica in that rack (KIP-392).
	ReplicaSelectorClass string
	// QuotaWindowSamples and QuotaWindowSize are quota.window.num and
	// quota.window.size.seconds: client quota rates are measured over this
	// many samples of this length (Kafka: 11 of 1 s).
	QuotaWindowSamples int
	QuotaWindowSize    time.Duration
	// RaftListen is the HOST:PORT of the raft transport.
	RaftListen string
	// Voters is the static raft voter set (controller.quorum.voters, parse
	// with raft.ParseVoters). Empty: a one-node cluster of this broker
	// alone. With more than one voter every voter is a broker; NodeID must
	// be listed, and this node's entry is the raft address peers dial.
	Voters []raft.Voter
	// BrokerOnly is Kafka's process.roles=broker: the node is a broker but
	// not a raft voter. It needs Voters (which must not list NodeID) and a
	// RaftListen address of its own; it joins the voters as a raft
	// non-voter, so it holds the metadata but never votes or controls.
	BrokerOnly bool
	// RaftTLSCertFile, RaftTLSKeyFile and RaftTLSCAFile (PEM), all or
	// none, make the raft port mutual TLS: this node presents the
	// certificate (whose names must cover its raft address as peers dial
	// it) and accepts and dials only peers whose certificates the CA
	// signed. Without them the raft port is plain TCP and must be reachable
	// only by the cluster's nodes: whoever reaches it can propose metadata
	// changes.
	RaftTLSCertFile string
	RaftTLSKeyFile  string
	RaftTLSCAFile   string
	// BrokerSessionTimeout is broker.session.timeout.ms: the controller
	// fences a broker it has not heard from for this long, and a broker
	// that could not reach the controller for this long stops acting as
	// partition leader. Brokers heartbeat every third of it (at most 2 s,
	// Kafka's broker.heartbeat.interval.ms).
	BrokerSessionTimeout time.Duration
	// AutoLeaderRebalance is auto.leader.rebalance.enable: the controller
	// moves leaderships back to preferred replicas every
	// LeaderImbalanceCheckInterval.
	AutoLeaderRebalance bool
	// LeaderImbalanceCheckInterval is
	// leader.imbalance.check.interval.seconds.
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is
	// leader.imbalance.per.broker.percentage: balancing acts for a broker
	// that does not lead more than this share of its preferred partitions.
	LeaderImbalancePerBrokerPercentage int
	// StartTimeout bounds how long Start waits for a raft quorum of Voters
	// (nodes start in parallel) and for the controller to unfence this
	// broker.
	StartTimeout time.Duration
	// DefaultPartitions is num.partitions: the partition count of
	// auto-created topics and of CreateTopics requests asking for -1.
	DefaultPartitions int32
	// DefaultReplicationFactor is default.replication.factor.
	DefaultReplicationFactor int16
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// Fsync is the flush policy of partition logs: "always", "interval" or
	// "never".
	Fsync string
	// FsyncInterval is the flush period of the "interval" policy.
	FsyncInterval time.Duration
	// MaxRequestBytes is socket.request.max.bytes: larger frames close the
	// connection.
	MaxRequestBytes int32
	// SocketSendBufferBytes is socket.send.buffer.bytes: SO_SNDBUF of every
	// accepted connection; -1 keeps the OS default (autotuned). The default,
	// 384 KiB, is in the middle of the range (256-512 KiB) that served
	// fetches fastest and with the least CPU per byte on loopback: Kafka's
	// 100 KiB blocks sendfile too often, an autotuned buffer (up to 4 MB)
	// costs more per byte (see bench/PROFILE.md). A high-latency link wants
	// a larger one.
	SocketSendBufferBytes int
	// SocketReceiveBufferBytes is socket.receive.buffer.bytes: SO_RCVBUF of
	// every accepted connection; -1 keeps the OS default (autotuned).
	SocketReceiveBufferBytes int
	// MaxInflight bounds the requests of one connection that are decoded
	// but not yet answered; the read loop blocks when it is reached.
	MaxInflight int
	// FetchSessionCacheSlots is max.incremental.fetch.session.cache.slots.
	FetchSessionCacheSlots int
	// IdleTimeout is connections.max.idle.ms: connections that send nothing
	// for this long are closed.
	IdleTimeout time.Duration
	// RetentionCheckInterval is log.retention.check.interval.ms: how often
	// retention and compaction run.
	RetentionCheckInterval time.Duration
	// CheckpointInterval is how often log start offsets, high watermarks and
	// recovery points are checkpointed.
	CheckpointInterval time.Duration
	// ReplicaLagTimeMax is replica.lag.time.max.ms: a follower that has not
	// caught up with its leader for this long leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// GroupInitialRebalanceDelay is group.initial.rebalance.delay.ms: how
	// long the first rebalance of an empty group waits for more members.
	GroupInitialRebalanceDelay time.Duration
	// GroupMinSessionTimeout and GroupMaxSessionTimeout are
	// group.min.session.timeout.ms and group.max.session.timeout.ms.
	GroupMinSessionTimeout, GroupMaxSessionTimeout time.Duration
	// ConsumerGroupSessionTimeout and ConsumerGroupHeartbeatInterval are
	// group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms (KIP-848 groups).
	ConsumerGroupSessionTimeout, ConsumerGroupHeartbeatInterval time.Duration
	// OffsetsTopicPartitions is offsets.topic.num.partitions, used when
	// __consumer_offsets is created.
	OffsetsTopicPartitions int32
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor
	// (capped at the number of live brokers).
	OffsetsTopicReplicationFactor int16
	// TransactionTopicPartitions is transaction.state.log.num.partitions,
	// used when __transaction_state is created.
	TransactionTopicPartitions int32
	// TransactionMaxTimeout is transaction.max.timeout.ms: the largest
	// transaction.timeout.ms a producer may ask for.
	TransactionMaxTimeout time.Duration
	// TransactionalIDExpiration is transactional.id.expiration.ms: an id
	// with no transaction open and no request for this long is forgotten.
	TransactionalIDExpiration time.Duration
	// TransactionAbortCheckInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms.
	TransactionAbortCheckInterval time.Duration
	// OffsetsRetention is offsets.retention.minutes.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// Authorizer turns ACL checks on (Kafka's StandardAuthorizer as
	// authorizer.class.name). Off, every request is allowed and the ACL APIs
	// answer SECURITY_DISABLED. Brokers talk to each other as
	// User:ANONYMOUS until inter-broker authentication exists, so a
	// multi-node cluster with the authorizer on needs that principal in
	// SuperUsers (or CLUSTER_ACTION granted to it).
	Authorizer bool
	// SuperUsers is super.users: principals ("User:admin") allowed
	// everything whatever the ACLs say (see ParseSuperUsers).
	SuperUsers []string
	// AllowEveryoneIfNoACLFound is allow.everyone.if.no.acl.found: a
	// resource without any ACL binding is open to everyone.
	AllowEveryoneIfNoACLFound bool
	// ShutdownTimeout bounds how long Close waits for in-flight requests.
	ShutdownTimeout time.Duration
	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger
}

// RackAwareSelector is the one replica.selector.class Strom implements,
// named as in Kafka: a consumer whose rack differs from the leader's is sent
// to the most caught-up in-sync replica in its rack.
const RackAwareSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// maxRackLen bounds broker.rack so it fits a Kafka string (int16 length).
const maxRackLen = 1 << 14

// DefaultConfig returns the configuration of `strom serve` without flags: a
// single node on 127.0.0.1:9092 with data in ./data. It is the one place that
// holds defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:              "./data",
		Listen:               "127.0.0.1:9092",
		SASLMechanisms:       []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512},
		OAuthBearer:          DefaultOAuthBearerConfig(),
		DelegationTokens:     DefaultDelegationTokenConfig(),
		NodeID:               1,
		RaftListen:           "127.0.0.1:9093",
		BrokerSessionTimeout: 9 * time.Second,

		AutoLeaderRebalance:                true,
		LeaderImbalanceCheckInterval:       300 * time.Second,
		LeaderImbalancePerBrokerPercentage: 10,

		StartTimeout:             2 * time.Minute,
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		AutoCreateTopics:         true,
		Fsync:                    "always",
		FsyncInterval:            time.Second,
		MaxRequestBytes:          100 << 20,
		SocketSendBufferBytes:    384 << 10,
		SocketReceiveBufferBytes: -1,
		MaxInflight:              64,
		FetchSessionCacheSlots:   1000,
		QuotaWindowSamples:       11,
		QuotaWindowSize:          time.Second,
		IdleTimeout:              10 * time.Minute,
		RetentionCheckInterval:   5 * time.Minute,
		CheckpointInterval:       time.Minute,
		ReplicaLagTimeMax:        30 * time.Second,
		ShutdownTimeout:          30 * time.Second,

		GroupInitialRebalanceDelay:     3 * time.Second,
		GroupMinSessionTimeout:         6 * time.Second,
		GroupMaxSessionTimeout:         30 * time.Minute,
		ConsumerGroupSessionTimeout:    45 * time.Second,
		ConsumerGroupHeartbeatInterval: 5 * time.Second,
		OffsetsTopicPartitions:         50,
		OffsetsTopicReplicationFactor:  3,
		OffsetsRetention:               7 * 24 * time.Hour,
		TransactionTopicPartitions:     50,
		TransactionMaxTimeout:          15 * time.Minute,
		TransactionAbortCheckInterval:  10 * time.Second,
		TransactionalIDExpiration:      7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval:  10 * time.Minute,
	}
}

// Validate checks c and reports the first problem found (wrapping
// ErrInvalidConfig); Start does the same, so calling it first only gives
// an earlier error.
func (c Config) Validate() error { return c.validate() }

// validate checks c and reports the first problem found.
func (c *Config) validate() error {
	switch {
	case c.DataDir == "":
		return fmt.Errorf("%w: empty data dir", ErrInvalidConfig)
	case c.NodeID < 0:
		return fmt.Errorf("%w: negative node id %d", ErrInvalidConfig, c.NodeID)
	case c.DefaultPartitions < 1:
		return fmt.Errorf("%w: default partitions %d < 1", ErrInvalidConfig, c.DefaultPartitions)
	case c.DefaultReplicationFactor < 1:
		return fmt.Errorf("%w: default replication factor %d < 1", ErrInvalidConfig, c.DefaultReplicationFactor)
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("%w: max request bytes %d < 1024", ErrInvalidConfig, c.MaxRequestBytes)
	case c.SocketSendBufferBytes == 0 || c.SocketSendBufferBytes < -1:
		return fmt.Errorf("%w: socket send buffer bytes %d (positive, or -1 for the OS default)", ErrInvalidConfig, c.SocketSendBufferBytes)
	case c.SocketReceiveBufferBytes == 0 || c.SocketReceiveBufferBytes < -1:
		return fmt.Errorf("%w: socket receive buffer bytes %d (positive, or -1 for the OS default)", ErrInvalidConfig, c.SocketReceiveBufferBytes)
	case c.TransactionTopicPartitions < 1:
		return fmt.Errorf("%w: transaction topic partitions %d < 1", ErrInvalidConfig, c.TransactionTopicPartitions)
	case c.TransactionMaxTimeout <= 0 || c.TransactionAbortCheckInterval <= 0 || c.TransactionalIDExpiration <= 0:
		return fmt.Errorf("%w: transaction max timeout, abort check interval and id expiration must be positive", ErrInvalidConfig)
	case c.OffsetsTopicPartitions < 1:
		return fmt.Errorf("%w: offsets topic partitions %d < 1", ErrInvalidConfig, c.OffsetsTopicPartitions)
	case c.OffsetsTopicReplicationFactor < 1:
		return fmt.Errorf("%w: offsets topic replication factor %d < 1", ErrInvalidConfig, c.OffsetsTopicReplicationFactor)
	case c.GroupMinSessionTimeout > c.GroupMaxSessionTimeout:
		return fmt.Errorf("%w: group min session timeout %v > max %v", ErrInvalidConfig, c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout)
	case c.QuotaWindowSamples < 2 || c.QuotaWindowSize < time.Millisecond:
		return fmt.Errorf("%w: quota window of %d samples of %s: need at least 2 samples of at least 1ms", ErrInvalidConfig, c.QuotaWindowSamples, c.QuotaWindowSize)
	case c.MaxInflight < 1:
		return fmt.Errorf("%w: max inflight %d < 1", ErrInvalidConfig, c.MaxInflight)
	case c.RetentionCheckInterval <= 0 || c.CheckpointInterval <= 0 || c.IdleTimeout <= 0:
		return fmt.Errorf("%w: idle timeout, retention check and checkpoint intervals must be positive", ErrInvalidConfig)
	case c.ReplicaLagTimeMax <= 0:
		return fmt.Errorf("%w: replica lag time max %s must be positive", ErrInvalidConfig, c.ReplicaLagTimeMax)
	case c.BrokerSessionTimeout <= 0 || c.StartTimeout <= 0:
		return fmt.Errorf("%w: broker session timeout and start timeout must be positive", ErrInvalidConfig)
	case c.LeaderImbalanceCheckInterval <= 0:
		return fmt.Errorf("%w: leader imbalance check interval %s must be positive", ErrInvalidConfig, c.LeaderImbalanceCheckInterval)
	case c.ReplicaSelectorClass != "" && c.ReplicaSelectorClass != RackAwareSelector:
		return fmt.Errorf("%w: replica selector class %q is not %s", ErrInvalidConfig, c.ReplicaSelectorClass, RackAwareSelector)
	case len(c.Rack) > maxRackLen:
		return fmt.Errorf("%w: broker rack is %d bytes long, at most %d", ErrInvalidConfig, len(c.Rack), maxRackLen)
	case c.LeaderImbalancePerBrokerPercentage < 0 || c.LeaderImbalancePerBrokerPercentage > 100:
		return fmt.Errorf("%w: leader imbalance per broker percentage %d not in 0-100", ErrInvalidConfig, c.LeaderImbalancePerBrokerPercentage)
	}
	if set := btoi(c.RaftTLSCertFile != "") + btoi(c.RaftTLSKeyFile != "") + btoi(c.RaftTLSCAFile != ""); set != 0 && set != 3 {
		return fmt.Errorf("%w: raft TLS needs the certificate, key and CA files together", ErrInvalidConfig)
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	if err := c.DelegationTokens.validate(); err != nil {
		return err
	}
	if c.BrokerOnly && len(c.Voters) == 0 {
		return fmt.Errorf("%w: a broker-only node (process roles \"broker\") needs the controller quorum voters", ErrInvalidConfig)
	}
	if len(c.Voters) > 0 {
		// Re-parse the formatted list: one set of rules for flags and code.
		if _, err := raft.ParseVoters(raft.FormatVoters(c.Voters)); err != nil {
			return fmt.Errorf("%w: controller quorum voters: %w", ErrInvalidConfig, err)
		}
		listed := slices.ContainsFunc(c.Voters, func(v raft.Voter) bool { return v.ID == c.NodeID })
		if c.BrokerOnly && listed {
			return fmt.Errorf("%w: broker-only node %d is listed among the controller quorum voters %s", ErrInvalidConfig,
				c.NodeID, raft.FormatVoters(c.Voters))
		}
		if c.BrokerOnly && slices.ContainsFunc(c.Voters, func(v raft.Voter) bool { return v.Addr == c.RaftListen }) {
			return fmt.Errorf("%w: broker-only node %d: raft listen address %s is a voter's", ErrInvalidConfig, c.NodeID, c.RaftListen)
		}
		if !c.BrokerOnly && !listed {
			return fmt.Errorf("%w: node id %d is not among the controller quorum voters %s", ErrInvalidConfig,
				c.NodeID, raft.FormatVoters(c.Voters))
		}
	}
	switch c.Fsync {
	case "always", "interval", "never":
	default:
		return fmt.Errorf("%w: fsync %q is not always, interval or never", ErrInvalidConfig, c.Fsync)
	}
	for _, a := range []struct{ name, v string }{{"listen", c.Listen}, {"raft listen", c.RaftListen}} {
		if _, _, err := splitHostPort(a.v); err != nil {
			return fmt.Errorf("%w: %s address: %w", ErrInvalidConfig, a.name, err)
		}
	}
	for _, u := range c.SuperUsers {
		if i := strings.IndexByte(u, ':'); i <= 0 {
			return fmt.Errorf("%w: super user %q is not a principal of the form Type:name", ErrInvalidConfig, u)
		}
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("%w: advertise address: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

// splitHostPort parses HOST:PORT with a numeric port.
func splitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("parse %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("parse port of %q: %w", addr, err)
	}
	return host, int32(p), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
