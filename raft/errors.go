package raft

import "errors"

// Sentinel errors of package raft. Domain errors (topic, broker, partition,
// producer-id) are produced deterministically by the state machine while it
// applies a command: every replica computes the same error for the same log
// entry, and the state is left unchanged. Node.Apply returns them wrapped with
// the command name; match them with errors.Is. The broker maps them to Kafka
// error codes.
var (
	// ErrNotLeader is returned by Node.Apply and the membership calls on a
	// node that is not the raft leader. The caller forwards to the leader or
	// retries after a leader change.
	ErrNotLeader = errors.New("raft: not the leader")

	// ErrLeadershipLost means the command was handed to raft but leadership
	// was lost before it committed: it may or may not be applied. Commands
	// are idempotent, so retrying against the new leader is safe.
	ErrLeadershipLost = errors.New("raft: leadership lost while applying")

	// ErrClosed is returned by calls on a node after Close.
	ErrClosed = errors.New("raft: node closed")

	// ErrUnknownCommand means a log entry or encoded command carries a type
	// byte that is not registered.
	ErrUnknownCommand = errors.New("raft: unknown command type")

	// ErrCorruptCommand means the body of an encoded command or snapshot does
	// not decode (truncated, trailing bytes, impossible lengths).
	ErrCorruptCommand = errors.New("raft: corrupt command")

	// ErrCorruptSnapshot means a snapshot stream does not decode.
	ErrCorruptSnapshot = errors.New("raft: corrupt snapshot")

	// ErrInvalidCommand means a command is well formed but violates a
	// structural rule (empty topic name, zero topic ID, bad resource type...).
	ErrInvalidCommand = errors.New("raft: invalid command")

	// ErrClusterIDMismatch is returned by InitCluster when the cluster already
	// carries a different id.
	ErrClusterIDMismatch = errors.New("raft: cluster id already set to a different value")

	// ErrUnknownBroker: the command names a broker that is not registered.
	ErrUnknownBroker = errors.New("raft: unknown broker")

	// ErrStaleBrokerEpoch: the command names a broker epoch that is not the
	// broker's current one (the broker re-registered meanwhile).
	ErrStaleBrokerEpoch = errors.New("raft: stale broker epoch")

	// ErrTopicExists: CreateTopic with a name (or topic ID) already in use by
	// a topic with a different ID (or name).
	ErrTopicExists = errors.New("raft: topic already exists")

	// ErrUnknownTopic: the command names a topic (by name or ID) that does
	// not exist.
	ErrUnknownTopic = errors.New("raft: unknown topic")

	// ErrUnknownPartition: PartitionChange names a partition index the topic
	// does not have.
	ErrUnknownPartition = errors.New("raft: unknown partition")

	// ErrInvalidPartitions: a partition count or partition list that is not
	// allowed (zero partitions, CreatePartitions that does not grow, indices
	// that are not contiguous).
	ErrInvalidPartitions = errors.New("raft: invalid partitions")

	// ErrInvalidReplicationFactor: replication factor < 1 or larger than the
	// number of unfenced brokers.
	ErrInvalidReplicationFactor = errors.New("raft: invalid replication factor")

	// ErrInvalidReplicaAssignment: a replica list that is empty, names a
	// negative broker id or names a broker twice (Kafka's
	// INVALID_REPLICA_ASSIGNMENT).
	ErrInvalidReplicaAssignment = errors.New("raft: invalid replica assignment")

	// ErrStalePartitionEpoch: PartitionChange was computed from an older
	// version of the partition (compare-and-set on PartitionEpoch failed).
	ErrStalePartitionEpoch = errors.New("raft: stale partition epoch")

	// ErrInvalidPartitionChange: the new leader/ISR/replicas/leader epoch are
	// inconsistent (leader not in ISR, ISR not within replicas, leader epoch
	// going backwards or not bumped on a leader change).
	ErrInvalidPartitionChange = errors.New("raft: invalid partition change")

	// ErrUnknownSCRAMCredential: DeleteSCRAMCredential names a user and
	// mechanism without a credential (Kafka's RESOURCE_NOT_FOUND).
	ErrUnknownSCRAMCredential = errors.New("raft: unknown scram credential")

	// ErrInvalidVoters: a static voter list (Config.Voters, ParseVoters)
	// that is malformed, repeats an id or an address, or does not list the
	// node itself.
	ErrInvalidVoters = errors.New("raft: invalid voters")

	// ErrNoQuorum: no leader was elected among the static voters within the
	// start timeout (fewer than a majority running or reachable).
	ErrNoQuorum = errors.New("raft: no quorum")

	// ErrFenced: a broker heartbeat or shutdown request was answered, but
	// the broker is not (yet) in the state it asked for; retry.
	ErrFenced = errors.New("raft: broker fenced")

	// ErrBrokerActive: UnregisterBroker named a broker that is not fenced
	// (still running); it must be stopped first.
	ErrBrokerActive = errors.New("raft: broker is active")

	// ErrStaleProducerIDBlock: AllocateProducerIDs carried a Start that is not
	// the current NextProducerID (another allocation won the race).
	ErrStaleProducerIDBlock = errors.New("raft: stale producer id block")

	// ErrElectionNotNeeded: ElectLeader found nothing to do (the preferred
	// replica already leads; an unclean election for a partition that has
	// a leader). Kafka's ELECTION_NOT_NEEDED.
	ErrElectionNotNeeded = errors.New("raft: election not needed")

	// ErrPreferredLeaderNotAvailable: the preferred replica is fenced,
	// unregistered or out of the ISR. Kafka's PREFERRED_LEADER_NOT_AVAILABLE.
	ErrPreferredLeaderNotAvailable = errors.New("raft: preferred leader not available")

	// ErrEligibleLeadersNotAvailable: an unclean election found no live
	// replica to elect. Kafka's ELIGIBLE_LEADERS_NOT_AVAILABLE.
	ErrEligibleLeadersNotAvailable = errors.New("raft: eligible leaders not available")

	// ErrNoReassignmentInProgress: a reassignment was cancelled for a
	// partition that has none. Kafka's NO_REASSIGNMENT_IN_PROGRESS.
	ErrNoReassignmentInProgress = errors.New("raft: no reassignment in progress")

	// ErrDuplicateVoter: PromoteVoter named a node that already votes.
	// Kafka's DUPLICATE_VOTER.
	ErrDuplicateVoter = errors.New("raft: already a voter")

	// ErrVoterNotFound: DemoteVoter named a node that is not a voter, or
	// the last voter. Kafka's VOTER_NOT_FOUND.
	ErrVoterNotFound = errors.New("raft: voter not found")

	// ErrNotMember: PromoteVoter named a node that is not in the raft
	// configuration (it never joined as a non-voter, or was removed).
	ErrNotMember = errors.New("raft: not a member of the quorum")

	// ErrReplicaLagging: PromoteVoter named a non-voter that has not yet
	// replicated the leader's committed log; retry once it caught up.
	ErrReplicaLagging = errors.New("raft: replica lagging behind the leader")

	// ErrUnknownDelegationToken: a delegation token command names a token
	// that does not exist (expired and removed meanwhile). Kafka's
	// DELEGATION_TOKEN_NOT_FOUND.
	ErrUnknownDelegationToken = errors.New("raft: unknown delegation token")
)
