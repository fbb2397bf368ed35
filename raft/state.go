package raft

import (
	"fmt"
	"maps"
	"slices"
)

// State is the cluster metadata as of one applied raft index.
//
// Invariant: a *State is never mutated after it has been published (returned
// by Node.State or FSM.State). Its maps, topics, partitions and slices are
// shared with later versions (copy-on-write), so readers must treat every
// reachable value as read-only; copy before modifying.
//
// Invariant: Topics and TopicsByID index the same set of *Topic values, and
// every map is non-nil.
type State struct {
	// ClusterID is set once by InitCluster (22-char base64url); "" before.
	ClusterID string
	// ControllerID is the node id of the current raft leader as this node
	// sees it, -1 when unknown. It comes from raft, not from the log, so it
	// is not part of snapshots and differs between replicas for a moment.
	ControllerID int32
	// Brokers by broker id.
	Brokers map[int32]Broker
	// Topics by name.
	Topics map[string]*Topic
	// TopicsByID indexes the same topics by topic ID.
	TopicsByID map[[16]byte]*Topic
	// BrokerConfigs maps a resource name ("" = cluster-wide default, "1" =
	// broker 1) to its dynamic configs. Entries are never empty maps.
	BrokerConfigs map[string]map[string]string
	// GroupConfigs maps a group id to its dynamic group configs (KIP-848
	// group-level overrides, set with kafka-configs --entity-type groups),
	// whether or not the group exists. Entries are never empty maps.
	GroupConfigs map[string]map[string]string
	// ACLs is the set of ACL bindings.
	ACLs map[ACL]struct{}
	// SCRAM holds the SCRAM credentials by user and mechanism.
	SCRAM map[SCRAMKey]SCRAMCredential
	// ClientQuotas maps a quota entity to its quota configs (key -> value).
	// Entries are never empty maps; the inner maps are shared by every
	// State version and never modified.
	ClientQuotas map[QuotaEntity]map[string]float64
	// QuotasVersion is the raft index of the last command that changed
	// ClientQuotas (0 when none did), so readers can cache what they derive
	// from the quotas and rebuild only when it moves.
	QuotasVersion uint64
	// DelegationTokens holds the delegation tokens by token id (tokens.go).
	DelegationTokens map[string]DelegationToken
	// NextProducerID is the first producer id not yet handed out.
	NextProducerID int64
	// Version is the raft index of the last log entry applied, whether or
	// not it changed anything (so "applied through index N" can be checked).
	Version uint64
}

// Broker is a registered broker.
type Broker struct {
	ID   int32
	Host string
	Port int32
	Rack string
	// Fenced brokers lead no partitions; a broker starts fenced unless its
	// registration says otherwise and is unfenced by the controller.
	Fenced bool
	// Epoch is the raft index of the registration that created the broker's
	// current incarnation; it changes only when IncarnationID changes.
	Epoch int64
	// IncarnationID identifies one process lifetime of the broker; a
	// re-registration with the same incarnation is a no-op.
	IncarnationID [16]byte
	// Listeners are the broker's advertised endpoints, one per listener
	// name; clients are answered with those of the listener they came in
	// on. Empty for brokers registered before listeners were recorded:
	// Host and Port then serve every listener. Shared by every State
	// version; never modified.
	Listeners []Endpoint
}

// Endpoint is one advertised listener of a broker.
type Endpoint struct {
	Name string // listener name, upper case
	Host string
	Port int32
}

// Endpoint returns the broker's endpoint for the listener name: from
// Listeners, or Host and Port when the broker recorded none.
func (b Broker) Endpoint(listener string) (host string, port int32, ok bool) {
	if len(b.Listeners) == 0 {
		return b.Host, b.Port, true
	}
	for _, e := range b.Listeners {
		if e.Name == listener {
			return e.Host, e.Port, true
		}
	}
	return "", 0, false
}

// Topic is a topic and its partitions.
type Topic struct {
	Name     string
	ID       [16]byte
	Internal bool
	// Partitions is indexed by partition number: Partitions[i].Index == i.
	Partitions []Partition
	// Configs are the topic-level overrides; nil when there are none.
	Configs map[string]string
}

// Partition is the replica placement and leadership of one partition.
type Partition struct {
	Index int32
	// Replicas is the assigned replica list; Replicas[0] is the preferred
	// leader.
	Replicas []int32
	// ISR is the in-sync subset of Replicas.
	ISR []int32
	// Leader is a member of ISR, or -1 when there is none.
	Leader int32
	// LeaderEpoch increases with every leader change.
	LeaderEpoch int32
	// PartitionEpoch increases with every change of the partition; it is
	// the compare-and-set token of PartitionChange.
	PartitionEpoch int32
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress (KIP-455); both are nil when there is none. While one runs,
	// Replicas is the target followed by the replicas being removed, so
	// the target is Replicas minus RemovingReplicas and the original
	// assignment is Replicas minus AddingReplicas.
	//
	// Invariant: both are distinct subsets of Replicas and disjoint.
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// TargetReplicas returns the replicas p will have once its reassignment
// completes (Replicas when none is in progress); a fresh slice.
func (p *Partition) TargetReplicas() []int32 {
	return without(p.Replicas, p.RemovingReplicas)
}

// OriginalReplicas returns the replicas p had before its reassignment
// started (Replicas when none is in progress): what cancelling restores.
// A fresh slice.
func (p *Partition) OriginalReplicas() []int32 {
	return without(p.Replicas, p.AddingReplicas)
}

// without returns the members of a not in b, in a's order (a fresh slice).
func without(a, b []int32) []int32 {
	out := make([]int32, 0, len(a))
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// newState returns the empty state of a cluster that has applied nothing.
func newState() *State {
	return &State{
		ControllerID:  -1,
		Brokers:       map[int32]Broker{},
		Topics:        map[string]*Topic{},
		TopicsByID:    map[[16]byte]*Topic{},
		BrokerConfigs: map[string]map[string]string{},
		GroupConfigs:  map[string]map[string]string{},
		ACLs:          map[ACL]struct{}{},
		SCRAM:         map[SCRAMKey]SCRAMCredential{},
		ClientQuotas:  map[QuotaEntity]map[string]float64{},

		DelegationTokens: map[string]DelegationToken{},
	}
}

// Topic returns the topic with the given name.
func (s *State) Topic(name string) (*Topic, bool) {
	t, ok := s.Topics[name]
	return t, ok
}

// TopicByID returns the topic with the given topic ID.
func (s *State) TopicByID(id [16]byte) (*Topic, bool) {
	t, ok := s.TopicsByID[id]
	return t, ok
}

// SortedBrokers returns all brokers ordered by id (a fresh slice).
func (s *State) SortedBrokers() []Broker {
	out := make([]Broker, 0, len(s.Brokers))
	for _, b := range s.Brokers {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Broker) int { return int(a.ID) - int(b.ID) })
	return out
}

// SortedTopicNames returns all topic names in order (a fresh slice).
func (s *State) SortedTopicNames() []string {
	return slices.Sorted(maps.Keys(s.Topics))
}

// checkInvariants verifies the invariants documented on State and on its
// types; decodeState rejects snapshots that break them, and builds with the
// invariants tag check every published state.
func (s *State) checkInvariants() error {
	if s.Brokers == nil || s.Topics == nil || s.TopicsByID == nil || s.BrokerConfigs == nil || s.GroupConfigs == nil || s.ACLs == nil || s.SCRAM == nil || s.ClientQuotas == nil {
		return fmt.Errorf("nil map in state")
	}
	if len(s.Topics) != len(s.TopicsByID) {
		return fmt.Errorf("%d topics by name, %d by id", len(s.Topics), len(s.TopicsByID))
	}
	for name, tp := range s.Topics {
		if tp.Name != name || s.TopicsByID[tp.ID] != tp {
			return fmt.Errorf("topic indexes disagree for %q", name)
		}
		if err := validateTopic(tp); err != nil {
			return err
		}
	}
	for id, b := range s.Brokers {
		if b.ID != id {
			return fmt.Errorf("broker %d stored under id %d", b.ID, id)
		}
	}
	for name, m := range s.BrokerConfigs {
		if len(m) == 0 {
			return fmt.Errorf("empty config map for resource %q", name)
		}
		if err := validBrokerResource(name); err != nil {
			return err
		}
	}
	for name, m := range s.GroupConfigs {
		if len(m) == 0 {
			return fmt.Errorf("empty config map for group %q", name)
		}
		if err := validGroupResource(name); err != nil {
			return err
		}
	}
	for a := range s.ACLs {
		if err := a.validate(); err != nil {
			return err
		}
	}
	for k, c := range s.SCRAM {
		if err := validateSCRAM(k, c); err != nil {
			return err
		}
	}
	if err := s.checkDelegationTokenInvariants(); err != nil {
		return err
	}
	return s.checkQuotaInvariants()
}

// txn builds the next State from a published one, copying each map, topic or
// inner config map the first time it is modified. Everything reachable from
// a txn's private copies is owned by the txn until publish; everything else
// is shared with base and must not be written.
//
// Apply functions validate completely before their first write, so a
// command that fails leaves the txn as it was.
type txn struct {
	s *State

	brokersOwned       bool
	topicsOwned        bool
	brokerConfigsOwned bool
	groupConfigsOwned  bool
	aclsOwned          bool
	scramOwned         bool
	quotasOwned        bool
	tokensOwned        bool
	// ownedTopics holds the *Topic copies made by this txn; they may be
	// modified in place, their Partitions slice and Configs map included.
	ownedTopics map[*Topic]bool
}

func newTxn(base *State) *txn {
	ns := *base
	return &txn{s: &ns}
}

func (t *txn) brokers() map[int32]Broker {
	if !t.brokersOwned {
		t.s.Brokers = maps.Clone(t.s.Brokers)
		t.brokersOwned = true
	}
	return t.s.Brokers
}

func (t *txn) ownTopicMaps() {
	if !t.topicsOwned {
		t.s.Topics = maps.Clone(t.s.Topics)
		t.s.TopicsByID = maps.Clone(t.s.TopicsByID)
		t.topicsOwned = true
	}
}

func (t *txn) brokerConfigs() map[string]map[string]string {
	if !t.brokerConfigsOwned {
		t.s.BrokerConfigs = maps.Clone(t.s.BrokerConfigs)
		t.brokerConfigsOwned = true
	}
	return t.s.BrokerConfigs
}

func (t *txn) groupConfigs() map[string]map[string]string {
	if !t.groupConfigsOwned {
		t.s.GroupConfigs = maps.Clone(t.s.GroupConfigs)
		t.groupConfigsOwned = true
	}
	return t.s.GroupConfigs
}

func (t *txn) acls() map[ACL]struct{} {
	if !t.aclsOwned {
		t.s.ACLs = maps.Clone(t.s.ACLs)
		t.aclsOwned = true
	}
	return t.s.ACLs
}

func (t *txn) scram() map[SCRAMKey]SCRAMCredential {
	if !t.scramOwned {
		t.s.SCRAM = maps.Clone(t.s.SCRAM)
		t.scramOwned = true
	}
	return t.s.SCRAM
}

// putTopic inserts a topic the txn owns (freshly decoded from the log).
func (t *txn) putTopic(tp *Topic) {
	t.ownTopicMaps()
	t.s.Topics[tp.Name] = tp
	t.s.TopicsByID[tp.ID] = tp
	if t.ownedTopics == nil {
		t.ownedTopics = map[*Topic]bool{}
	}
	t.ownedTopics[tp] = true
}

func (t *txn) deleteTopic(tp *Topic) {
	t.ownTopicMaps()
	delete(t.s.Topics, tp.Name)
	delete(t.s.TopicsByID, tp.ID)
	delete(t.ownedTopics, tp)
}

// mutableTopic returns a copy of tp owned by the txn (tp itself if already
// owned) and installs it in both topic maps. Partition structs are copied;
// their Replicas and ISR slices stay shared and must be replaced, never
// written.
func (t *txn) mutableTopic(tp *Topic) *Topic {
	if t.ownedTopics[tp] {
		return tp
	}
	cp := *tp
	cp.Partitions = slices.Clone(tp.Partitions)
	cp.Configs = maps.Clone(tp.Configs)
	t.putTopic(&cp)
	return &cp
}
