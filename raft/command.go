package raft

import (
	"fmt"
	"slices"
)

// CommandType is the first byte of every encoded command. Values are part of
// the on-disk log format: never renumber or reuse one.
type CommandType uint8

// Registered command types.
const (
	CmdInitCluster           CommandType = 1
	CmdRegisterBroker        CommandType = 2
	CmdFenceBroker           CommandType = 3
	CmdUnfenceBroker         CommandType = 4
	CmdCreateTopic           CommandType = 5
	CmdDeleteTopic           CommandType = 6
	CmdCreatePartitions      CommandType = 7
	CmdPartitionChange       CommandType = 8
	CmdAlterConfigs          CommandType = 9
	CmdAllocateProducerIDs   CommandType = 10
	CmdCreateACLs            CommandType = 11
	CmdDeleteACLs            CommandType = 12
	CmdUpsertSCRAMCredential CommandType = 13
	CmdDeleteSCRAMCredential CommandType = 14
	CmdUnregisterBroker      CommandType = 15
	CmdReassignPartition     CommandType = 16
	CmdAlterClientQuotas     CommandType = 17
	// Delegation tokens (tokens.go).
	CmdCreateDelegationToken         CommandType = 18
	CmdUpdateDelegationTokenExpiry   CommandType = 19
	CmdRemoveDelegationToken         CommandType = 20
	CmdRemoveExpiredDelegationTokens CommandType = 21
)

// Command is one state-machine operation. The set is closed: only the types
// of this package implement it, each registered once in commandTable.
//
// Contract for every command: apply is deterministic (depends only on the
// state, the command and the log index), validates completely before its
// first write, and applying the same command twice leaves the same state as
// applying it once (the second application may return an error, never a
// different state).
type Command interface {
	// Type is the command's registered type byte.
	Type() CommandType
	encode(e *encoder)
	apply(t *txn, index uint64) (Result, error)
}

// Result is what a successfully applied command reports back to Node.Apply.
type Result struct {
	// Index is the raft log index the command was applied at.
	Index uint64
	// BrokerEpoch is the broker's epoch after RegisterBroker.
	BrokerEpoch int64
	// ProducerIDs is the block handed out by AllocateProducerIDs.
	ProducerIDs ProducerIDBlock
}

// ProducerIDBlock is a range of producer ids [Start, Start+Count).
type ProducerIDBlock struct {
	Start int64
	Count int32
}

// commandTable is the single registry of command types: name for errors
// and logs, decode to rebuild a command from its body. Apply is a method of
// the decoded value.
var commandTable = map[CommandType]struct {
	name   string
	decode func(d *decoder) Command
}{
	CmdInitCluster:           {"InitCluster", decodeInitCluster},
	CmdRegisterBroker:        {"RegisterBroker", decodeRegisterBroker},
	CmdFenceBroker:           {"FenceBroker", decodeFenceBroker},
	CmdUnfenceBroker:         {"UnfenceBroker", decodeUnfenceBroker},
	CmdCreateTopic:           {"CreateTopic", decodeCreateTopic},
	CmdDeleteTopic:           {"DeleteTopic", decodeDeleteTopic},
	CmdCreatePartitions:      {"CreatePartitions", decodeCreatePartitions},
	CmdPartitionChange:       {"PartitionChange", decodePartitionChange},
	CmdAlterConfigs:          {"AlterConfigs", decodeAlterConfigs},
	CmdAllocateProducerIDs:   {"AllocateProducerIDs", decodeAllocateProducerIDs},
	CmdCreateACLs:            {"CreateACLs", decodeCreateACLs},
	CmdDeleteACLs:            {"DeleteACLs", decodeDeleteACLs},
	CmdUpsertSCRAMCredential: {"UpsertSCRAMCredential", decodeUpsertSCRAMCredential},
	CmdDeleteSCRAMCredential: {"DeleteSCRAMCredential", decodeDeleteSCRAMCredential},
	CmdUnregisterBroker:      {"UnregisterBroker", decodeUnregisterBroker},
	CmdReassignPartition:     {"ReassignPartition", decodeReassignPartition},
	CmdAlterClientQuotas:     {"AlterClientQuotas", decodeAlterClientQuotas},

	CmdCreateDelegationToken:         {"CreateDelegationToken", decodeCreateDelegationToken},
	CmdUpdateDelegationTokenExpiry:   {"UpdateDelegationTokenExpiry", decodeUpdateDelegationTokenExpiry},
	CmdRemoveDelegationToken:         {"RemoveDelegationToken", decodeRemoveDelegationToken},
	CmdRemoveExpiredDelegationTokens: {"RemoveExpiredDelegationTokens", decodeRemoveExpiredDelegationTokens},
}

// String returns the command's registered name.
func (c CommandType) String() string {
	if e, ok := commandTable[c]; ok {
		return e.name
	}
	return fmt.Sprintf("CommandType(%d)", uint8(c))
}

// EncodeCommand returns the log form of cmd: the type byte, then the body.
func EncodeCommand(cmd Command) []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.u8(uint8(cmd.Type()))
	cmd.encode(&e)
	return e.b
}

// DecodeCommand parses the log form of a command. It returns
// ErrUnknownCommand or ErrCorruptCommand (wrapped) for bad input and never
// panics.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorruptCommand)
	}
	entry, ok := commandTable[CommandType(b[0])]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCommand, b[0])
	}
	d := decoder{b: b, off: 1}
	cmd := entry.decode(&d)
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("decode %s: %w", entry.name, err)
	}
	return cmd, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCommand, fmt.Sprintf(format, args...))
}

// ---- InitCluster

// InitCluster sets the cluster id once. Re-applying the same id is a no-op;
// a different id fails with ErrClusterIDMismatch.
type InitCluster struct {
	ClusterID string
}

// Type implements Command.
func (InitCluster) Type() CommandType { return CmdInitCluster }

func (c InitCluster) encode(e *encoder) { e.str(c.ClusterID) }

func decodeInitCluster(d *decoder) Command { return InitCluster{ClusterID: d.str()} }

func (c InitCluster) apply(t *txn, _ uint64) (Result, error) {
	if c.ClusterID == "" {
		return Result{}, invalid("empty cluster id")
	}
	switch t.s.ClusterID {
	case c.ClusterID:
		return Result{}, nil
	case "":
		t.s.ClusterID = c.ClusterID
		return Result{}, nil
	default:
		return Result{}, fmt.Errorf("%w: have %q, got %q", ErrClusterIDMismatch, t.s.ClusterID, c.ClusterID)
	}
}

// ---- RegisterBroker

// RegisterBroker adds a broker or records a new incarnation of it. A new
// incarnation (IncarnationID differs from the registered one, or the broker
// is unknown) gets Epoch = the log index and Fenced as given. The same
// incarnation again only refreshes the endpoint and keeps epoch and fencing,
// so a retried registration changes nothing.
type RegisterBroker struct {
	ID            int32
	Host          string
	Port          int32
	Rack          string
	IncarnationID [16]byte
	// Fenced is the fencing state of a new incarnation.
	Fenced bool
	// Listeners are every advertised listener endpoint (Host and Port are
	// the inter-broker one). Encoded after the older fields, and only when
	// present, so log entries written before it decode unchanged.
	Listeners []Endpoint
}

// Type implements Command.
func (RegisterBroker) Type() CommandType { return CmdRegisterBroker }

func (c RegisterBroker) encode(e *encoder) {
	e.i32(c.ID)
	e.str(c.Host)
	e.i32(c.Port)
	e.str(c.Rack)
	e.id(c.IncarnationID)
	e.boolean(c.Fenced)
	if len(c.Listeners) > 0 {
		encodeEndpoints(e, c.Listeners)
	}
}

func decodeRegisterBroker(d *decoder) Command {
	c := RegisterBroker{ID: d.i32(), Host: d.str(), Port: d.i32(), Rack: d.str(), IncarnationID: d.id(), Fenced: d.boolean()}
	if d.err == nil && d.remaining() > 0 {
		c.Listeners = decodeEndpoints(d)
	}
	return c
}

// minEndpointSize is the fewest bytes an encoded Endpoint takes.
const minEndpointSize = 3

func encodeEndpoints(e *encoder, eps []Endpoint) {
	e.uvarint(uint64(len(eps)))
	for _, ep := range eps {
		e.str(ep.Name)
		e.str(ep.Host)
		e.i32(ep.Port)
	}
}

func decodeEndpoints(d *decoder) []Endpoint {
	n := d.count(minEndpointSize)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]Endpoint, n)
	for i := range out {
		out[i] = Endpoint{Name: d.str(), Host: d.str(), Port: d.i32()}
	}
	return out
}

// validateEndpoints requires named, distinct listener endpoints.
func validateEndpoints(eps []Endpoint) error {
	seen := map[string]bool{}
	for _, ep := range eps {
		if ep.Name == "" || seen[ep.Name] || ep.Port < 0 {
			return invalid("listener endpoints %+v", eps)
		}
		seen[ep.Name] = true
	}
	return nil
}

func (c RegisterBroker) apply(t *txn, index uint64) (Result, error) {
	if c.ID < 0 {
		return Result{}, invalid("broker id %d", c.ID)
	}
	if err := validateEndpoints(c.Listeners); err != nil {
		return Result{}, err
	}
	listeners := slices.Clone(c.Listeners)
	b, ok := t.s.Brokers[c.ID]
	if ok && b.IncarnationID == c.IncarnationID {
		if b.Host != c.Host || b.Port != c.Port || b.Rack != c.Rack || !slices.Equal(b.Listeners, c.Listeners) {
			b.Host, b.Port, b.Rack, b.Listeners = c.Host, c.Port, c.Rack, listeners
			t.brokers()[c.ID] = b
		}
		return Result{BrokerEpoch: b.Epoch}, nil
	}
	b = Broker{ID: c.ID, Host: c.Host, Port: c.Port, Rack: c.Rack, Fenced: c.Fenced,
		Epoch: int64(index), IncarnationID: c.IncarnationID, Listeners: listeners}
	t.brokers()[c.ID] = b
	return Result{BrokerEpoch: b.Epoch}, nil
}

// ---- FenceBroker / UnfenceBroker

// FenceBroker marks a broker fenced. Epoch < 0 fences whatever incarnation
// is registered; otherwise it must match the broker's epoch.
type FenceBroker struct {
	ID    int32
	Epoch int64
}

// UnfenceBroker marks a broker unfenced, with the same epoch rule as
// FenceBroker.
type UnfenceBroker struct {
	ID    int32
	Epoch int64
}

// Type implements Command.
func (FenceBroker) Type() CommandType { return CmdFenceBroker }

// Type implements Command.
func (UnfenceBroker) Type() CommandType { return CmdUnfenceBroker }

func (c FenceBroker) encode(e *encoder)   { e.i32(c.ID); e.varint(c.Epoch) }
func (c UnfenceBroker) encode(e *encoder) { e.i32(c.ID); e.varint(c.Epoch) }

func decodeFenceBroker(d *decoder) Command   { return FenceBroker{ID: d.i32(), Epoch: d.varint()} }
func decodeUnfenceBroker(d *decoder) Command { return UnfenceBroker{ID: d.i32(), Epoch: d.varint()} }

func (c FenceBroker) apply(t *txn, _ uint64) (Result, error) {
	return Result{}, setFenced(t, c.ID, c.Epoch, true)
}

func (c UnfenceBroker) apply(t *txn, _ uint64) (Result, error) {
	return Result{}, setFenced(t, c.ID, c.Epoch, false)
}

func setFenced(t *txn, id int32, epoch int64, fenced bool) error {
	b, ok := t.s.Brokers[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	}
	if epoch >= 0 && epoch != b.Epoch {
		return fmt.Errorf("%w: broker %d has epoch %d, command %d", ErrStaleBrokerEpoch, id, b.Epoch, epoch)
	}
	if b.Fenced != fenced {
		b.Fenced = fenced
		t.brokers()[id] = b
	}
	return nil
}

// ---- UnregisterBroker

// UnregisterBroker removes a broker (Kafka's UnregisterBroker API, used when
// a node is decommissioned). Unknown brokers fail with ErrUnknownBroker, so
// a retry after success reports it and changes nothing; an unfenced
// (running) broker fails with ErrBrokerActive, checked here against the
// committed state rather than a proposer's possibly older view. Partitions
// that still name the broker keep it in their replica lists; moving them is
// the controller's job.
type UnregisterBroker struct {
	ID int32
}

// Type implements Command.
func (UnregisterBroker) Type() CommandType { return CmdUnregisterBroker }

func (c UnregisterBroker) encode(e *encoder) { e.i32(c.ID) }

func decodeUnregisterBroker(d *decoder) Command { return UnregisterBroker{ID: d.i32()} }

func (c UnregisterBroker) apply(t *txn, _ uint64) (Result, error) {
	b, ok := t.s.Brokers[c.ID]
	if !ok {
		return Result{}, fmt.Errorf("%w: %d", ErrUnknownBroker, c.ID)
	}
	if !b.Fenced {
		return Result{}, fmt.Errorf("%w: broker %d is unfenced; stop it first", ErrBrokerActive, c.ID)
	}
	delete(t.brokers(), c.ID)
	return Result{}, nil
}

// ---- CreateTopic

// CreateTopic adds a topic. The topic ID is chosen by the proposer (see
// NewCreateTopic), which makes a retry recognizable: the same name with the
// same ID is a no-op, the same name or ID with a different partner fails
// with ErrTopicExists.
type CreateTopic struct {
	Topic Topic
}

// Type implements Command.
func (CreateTopic) Type() CommandType { return CmdCreateTopic }

func (c CreateTopic) encode(e *encoder) { encodeTopic(e, &c.Topic) }

func decodeCreateTopic(d *decoder) Command { return CreateTopic{Topic: *decodeTopic(d)} }

func (c CreateTopic) apply(t *txn, _ uint64) (Result, error) {
	tp := c.Topic
	if err := validateTopic(&tp); err != nil {
		return Result{}, err
	}
	if old, ok := t.s.Topics[tp.Name]; ok {
		if old.ID == tp.ID {
			return Result{}, nil
		}
		return Result{}, fmt.Errorf("%w: %q", ErrTopicExists, tp.Name)
	}
	if old, ok := t.s.TopicsByID[tp.ID]; ok {
		return Result{}, fmt.Errorf("%w: topic id of %q already used by %q", ErrTopicExists, tp.Name, old.Name)
	}
	t.putTopic(cloneTopic(&tp))
	return Result{}, nil
}

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

// validateTopic checks the structural invariants of a topic; the same rules
// hold for topics restored from a snapshot.
func validateTopic(tp *Topic) error {
	if tp.Name == "" || len(tp.Name) > maxTopicNameLen {
		return invalid("topic name %q", tp.Name)
	}
	if tp.ID == ([16]byte{}) {
		return invalid("topic %q: zero topic id", tp.Name)
	}
	if len(tp.Partitions) == 0 {
		return fmt.Errorf("%w: topic %q has no partitions", ErrInvalidPartitions, tp.Name)
	}
	for i := range tp.Partitions {
		p := &tp.Partitions[i]
		if p.Index != int32(i) {
			return fmt.Errorf("%w: topic %q: partition at position %d has index %d", ErrInvalidPartitions, tp.Name, i, p.Index)
		}
		if err := validatePartition(p.Replicas, p.ISR, p.Leader); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", tp.Name, i, err)
		}
		if err := validateReassignment(p.Replicas, p.AddingReplicas, p.RemovingReplicas); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", tp.Name, i, err)
		}
		if p.LeaderEpoch < 0 || p.PartitionEpoch < 0 {
			return fmt.Errorf("%w: topic %q partition %d: negative epoch", ErrInvalidPartitionChange, tp.Name, i)
		}
	}
	return nil
}

// validatePartition: replicas non-empty, non-negative and distinct
// (ErrInvalidReplicaAssignment), ISR a distinct subset of replicas and
// leader -1 or in the ISR (ErrInvalidPartitionChange).
func validatePartition(replicas, isr []int32, leader int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("%w: no replicas", ErrInvalidReplicaAssignment)
	}
	seen := make(map[int32]bool, len(replicas))
	for _, r := range replicas {
		if r < 0 || seen[r] {
			return fmt.Errorf("%w: replicas %v", ErrInvalidReplicaAssignment, replicas)
		}
		seen[r] = true
	}
	inISR := make(map[int32]bool, len(isr))
	for _, r := range isr {
		if !seen[r] || inISR[r] {
			return fmt.Errorf("%w: isr %v not a subset of replicas %v", ErrInvalidPartitionChange, isr, replicas)
		}
		inISR[r] = true
	}
	if leader != -1 && !inISR[leader] {
		return fmt.Errorf("%w: leader %d not in isr %v", ErrInvalidPartitionChange, leader, isr)
	}
	return nil
}

func cloneTopic(tp *Topic) *Topic {
	cp := *tp
	cp.Partitions = make([]Partition, len(tp.Partitions))
	for i, p := range tp.Partitions {
		p.Replicas = append([]int32(nil), p.Replicas...)
		p.ISR = append([]int32(nil), p.ISR...)
		p.AddingReplicas = slices.Clone(p.AddingReplicas)
		p.RemovingReplicas = slices.Clone(p.RemovingReplicas)
		cp.Partitions[i] = p
	}
	if len(tp.Configs) > 0 {
		cp.Configs = make(map[string]string, len(tp.Configs))
		for k, v := range tp.Configs {
			cp.Configs[k] = v
		}
	} else {
		cp.Configs = nil
	}
	return &cp
}

func encodePartition(e *encoder, p *Partition) {
	e.i32(p.Index)
	e.i32s(p.Replicas)
	e.i32s(p.ISR)
	e.i32(p.Leader)
	e.i32(p.LeaderEpoch)
	e.i32(p.PartitionEpoch)
}

func decodePartition(d *decoder) Partition {
	return Partition{Index: d.i32(), Replicas: d.i32s(), ISR: d.i32s(), Leader: d.i32(), LeaderEpoch: d.i32(), PartitionEpoch: d.i32()}
}

// minPartitionSize is the fewest bytes an encoded partition takes.
const minPartitionSize = 6

func encodeTopic(e *encoder, tp *Topic) {
	e.str(tp.Name)
	e.id(tp.ID)
	e.boolean(tp.Internal)
	e.uvarint(uint64(len(tp.Partitions)))
	for i := range tp.Partitions {
		encodePartition(e, &tp.Partitions[i])
	}
	e.strMap(tp.Configs)
}

func decodeTopic(d *decoder) *Topic {
	tp := &Topic{Name: d.str(), ID: d.id(), Internal: d.boolean()}
	n := d.count(minPartitionSize)
	if n > 0 {
		tp.Partitions = make([]Partition, n)
		for i := range tp.Partitions {
			tp.Partitions[i] = decodePartition(d)
		}
	}
	tp.Configs = d.strMap()
	return tp
}

// ---- DeleteTopic

// DeleteTopic removes a topic by ID. Deleting an unknown topic fails with
// ErrUnknownTopic (so a retry after success reports it, and changes nothing).
type DeleteTopic struct {
	ID [16]byte
}

// Type implements Command.
func (DeleteTopic) Type() CommandType { return CmdDeleteTopic }

func (c DeleteTopic) encode(e *encoder) { e.id(c.ID) }

func decodeDeleteTopic(d *decoder) Command { return DeleteTopic{ID: d.id()} }

func (c DeleteTopic) apply(t *txn, _ uint64) (Result, error) {
	tp, ok := t.s.TopicsByID[c.ID]
	if !ok {
		return Result{}, fmt.Errorf("%w: id %x", ErrUnknownTopic, c.ID)
	}
	t.deleteTopic(tp)
	return Result{}, nil
}

// ---- CreatePartitions

// CreatePartitions appends partitions to a topic. Partitions holds the new
// partitions only, with contiguous indices starting at the topic's current
// count. If exactly these partitions are already the topic's tail (a
// retry), it is a no-op; anything else that does not grow the topic by
// appending fails with ErrInvalidPartitions.
type CreatePartitions struct {
	TopicID    [16]byte
	Partitions []Partition
}

// Type implements Command.
func (CreatePartitions) Type() CommandType { return CmdCreatePartitions }

func (c CreatePartitions) encode(e *encoder) {
	e.id(c.TopicID)
	e.uvarint(uint64(len(c.Partitions)))
	for i := range c.Partitions {
		encodePartition(e, &c.Partitions[i])
	}
}

func decodeCreatePartitions(d *decoder) Command {
	c := CreatePartitions{TopicID: d.id()}
	n := d.count(minPartitionSize)
	if n > 0 {
		c.Partitions = make([]Partition, n)
		for i := range c.Partitions {
			c.Partitions[i] = decodePartition(d)
		}
	}
	return c
}

func (c CreatePartitions) apply(t *txn, _ uint64) (Result, error) {
	tp, ok := t.s.TopicsByID[c.TopicID]
	if !ok {
		return Result{}, fmt.Errorf("%w: id %x", ErrUnknownTopic, c.TopicID)
	}
	if len(c.Partitions) == 0 {
		return Result{}, fmt.Errorf("%w: topic %q: no new partitions", ErrInvalidPartitions, tp.Name)
	}
	have := len(tp.Partitions)
	base := int(c.Partitions[0].Index)
	if base < 0 || base > have {
		return Result{}, fmt.Errorf("%w: topic %q has %d partitions, new ones start at %d", ErrInvalidPartitions, tp.Name, have, base)
	}
	if base < have {
		if base+len(c.Partitions) == have && partitionsEqual(tp.Partitions[base:], c.Partitions) {
			return Result{}, nil // a retry of the change that produced this tail
		}
		return Result{}, fmt.Errorf("%w: topic %q has %d partitions, cannot shrink or rewrite", ErrInvalidPartitions, tp.Name, have)
	}
	grown := Topic{Name: tp.Name, ID: tp.ID, Partitions: append(slices.Clip(tp.Partitions), c.Partitions...)}
	if err := validateTopic(&grown); err != nil {
		return Result{}, err
	}
	mt := t.mutableTopic(tp)
	for _, p := range c.Partitions {
		p.Replicas = append([]int32(nil), p.Replicas...)
		p.ISR = append([]int32(nil), p.ISR...)
		mt.Partitions = append(mt.Partitions, p)
	}
	return Result{}, nil
}

func partitionsEqual(a, b []Partition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Index != y.Index || x.Leader != y.Leader || x.LeaderEpoch != y.LeaderEpoch ||
			x.PartitionEpoch != y.PartitionEpoch || !int32sEqual(x.Replicas, y.Replicas) || !int32sEqual(x.ISR, y.ISR) {
			return false
		}
	}
	return true
}

func int32sEqual(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ---- PartitionChange

// PartitionChange is a compare-and-set on one partition: it applies only if
// the partition's PartitionEpoch equals ExpectedPartitionEpoch (else
// ErrStalePartitionEpoch), and then sets Leader, ISR, LeaderEpoch (and
// Replicas when non-nil) and increments PartitionEpoch. A retry after
// success is therefore stale and changes nothing. A reassignment in
// progress is kept, unless Replicas is set: a new replica list ends it
// (ReassignPartition is the command that moves replicas step by step).
//
// LeaderEpoch must not go backwards, and must grow when the leader changes.
type PartitionChange struct {
	TopicID                [16]byte
	Partition              int32
	Leader                 int32
	ISR                    []int32
	LeaderEpoch            int32
	ExpectedPartitionEpoch int32
	// Replicas replaces the replica list when non-nil (reassignment).
	Replicas []int32
}

// Type implements Command.
func (PartitionChange) Type() CommandType { return CmdPartitionChange }

func (c PartitionChange) encode(e *encoder) {
	e.id(c.TopicID)
	e.i32(c.Partition)
	e.i32(c.Leader)
	e.i32s(c.ISR)
	e.i32(c.LeaderEpoch)
	e.i32(c.ExpectedPartitionEpoch)
	e.boolean(c.Replicas != nil)
	if c.Replicas != nil {
		e.i32s(c.Replicas)
	}
}

func decodePartitionChange(d *decoder) Command {
	c := PartitionChange{TopicID: d.id(), Partition: d.i32(), Leader: d.i32(), ISR: d.i32s(), LeaderEpoch: d.i32(), ExpectedPartitionEpoch: d.i32()}
	if d.boolean() {
		c.Replicas = d.i32s()
		if c.Replicas == nil {
			c.Replicas = []int32{}
		}
	}
	return c
}

func (c PartitionChange) apply(t *txn, _ uint64) (Result, error) {
	tp, ok := t.s.TopicsByID[c.TopicID]
	if !ok {
		return Result{}, fmt.Errorf("%w: id %x", ErrUnknownTopic, c.TopicID)
	}
	if c.Partition < 0 || int(c.Partition) >= len(tp.Partitions) {
		return Result{}, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, tp.Name, c.Partition)
	}
	p := tp.Partitions[c.Partition]
	if c.ExpectedPartitionEpoch != p.PartitionEpoch {
		return Result{}, fmt.Errorf("%w: %s-%d is at %d, change expects %d", ErrStalePartitionEpoch, tp.Name, c.Partition, p.PartitionEpoch, c.ExpectedPartitionEpoch)
	}
	replicas := p.Replicas
	if c.Replicas != nil {
		replicas = c.Replicas
	}
	if err := validatePartition(replicas, c.ISR, c.Leader); err != nil {
		return Result{}, fmt.Errorf("%s-%d: %w", tp.Name, c.Partition, err)
	}
	if c.LeaderEpoch < p.LeaderEpoch || (c.Leader != p.Leader && c.LeaderEpoch == p.LeaderEpoch) {
		return Result{}, fmt.Errorf("%w: %s-%d leader epoch %d -> %d with leader %d -> %d", ErrInvalidPartitionChange, tp.Name, c.Partition, p.LeaderEpoch, c.LeaderEpoch, p.Leader, c.Leader)
	}
	if p.PartitionEpoch == 1<<31-1 {
		return Result{}, fmt.Errorf("%w: %s-%d partition epoch overflow", ErrInvalidPartitionChange, tp.Name, c.Partition)
	}
	mt := t.mutableTopic(tp)
	np := &mt.Partitions[c.Partition]
	np.Replicas = append([]int32(nil), replicas...)
	np.ISR = append([]int32(nil), c.ISR...)
	np.Leader = c.Leader
	np.LeaderEpoch = c.LeaderEpoch
	if c.Replicas != nil {
		np.AddingReplicas, np.RemovingReplicas = nil, nil
	}
	np.PartitionEpoch++
	return Result{}, nil
}

// ---- ReassignPartition

// ReassignPartition is the compare-and-set that starts, cancels and
// completes a partition reassignment (KIP-455): it applies only if the
// partition's PartitionEpoch equals ExpectedPartitionEpoch (else
// ErrStalePartitionEpoch), then sets Replicas, ISR, Leader, LeaderEpoch,
// AddingReplicas and RemovingReplicas together and increments
// PartitionEpoch, so a retry after success is stale and changes nothing.
// The controller computes it with ReassignCommand and
// CompleteReassignmentCommands. Adding and Removing must be disjoint,
// distinct subsets of Replicas (ErrInvalidReplicaAssignment); leader and
// ISR follow PartitionChange's rules.
type ReassignPartition struct {
	TopicID                [16]byte
	Partition              int32
	ExpectedPartitionEpoch int32
	Replicas               []int32
	ISR                    []int32
	Leader                 int32
	LeaderEpoch            int32
	Adding                 []int32
	Removing               []int32
}

// Type implements Command.
func (ReassignPartition) Type() CommandType { return CmdReassignPartition }

func (c ReassignPartition) encode(e *encoder) {
	e.id(c.TopicID)
	e.i32(c.Partition)
	e.i32(c.ExpectedPartitionEpoch)
	e.i32s(c.Replicas)
	e.i32s(c.ISR)
	e.i32(c.Leader)
	e.i32(c.LeaderEpoch)
	e.i32s(c.Adding)
	e.i32s(c.Removing)
}

func decodeReassignPartition(d *decoder) Command {
	return ReassignPartition{TopicID: d.id(), Partition: d.i32(), ExpectedPartitionEpoch: d.i32(),
		Replicas: d.i32s(), ISR: d.i32s(), Leader: d.i32(), LeaderEpoch: d.i32(), Adding: d.i32s(), Removing: d.i32s()}
}

func (c ReassignPartition) apply(t *txn, _ uint64) (Result, error) {
	tp, ok := t.s.TopicsByID[c.TopicID]
	if !ok {
		return Result{}, fmt.Errorf("%w: id %x", ErrUnknownTopic, c.TopicID)
	}
	if c.Partition < 0 || int(c.Partition) >= len(tp.Partitions) {
		return Result{}, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, tp.Name, c.Partition)
	}
	p := tp.Partitions[c.Partition]
	if c.ExpectedPartitionEpoch != p.PartitionEpoch {
		return Result{}, fmt.Errorf("%w: %s-%d is at %d, reassignment expects %d", ErrStalePartitionEpoch, tp.Name, c.Partition, p.PartitionEpoch, c.ExpectedPartitionEpoch)
	}
	if err := validatePartition(c.Replicas, c.ISR, c.Leader); err != nil {
		return Result{}, fmt.Errorf("%s-%d: %w", tp.Name, c.Partition, err)
	}
	if err := validateReassignment(c.Replicas, c.Adding, c.Removing); err != nil {
		return Result{}, fmt.Errorf("%s-%d: %w", tp.Name, c.Partition, err)
	}
	if c.LeaderEpoch < p.LeaderEpoch || (c.Leader != p.Leader && c.LeaderEpoch == p.LeaderEpoch) {
		return Result{}, fmt.Errorf("%w: %s-%d leader epoch %d -> %d with leader %d -> %d", ErrInvalidPartitionChange, tp.Name, c.Partition, p.LeaderEpoch, c.LeaderEpoch, p.Leader, c.Leader)
	}
	if p.PartitionEpoch == 1<<31-1 {
		return Result{}, fmt.Errorf("%w: %s-%d partition epoch overflow", ErrInvalidPartitionChange, tp.Name, c.Partition)
	}
	mt := t.mutableTopic(tp)
	np := &mt.Partitions[c.Partition]
	np.Replicas = slices.Clone(c.Replicas)
	np.ISR = append([]int32(nil), c.ISR...)
	np.Leader = c.Leader
	np.LeaderEpoch = c.LeaderEpoch
	np.AddingReplicas = nilIfEmpty(c.Adding)
	np.RemovingReplicas = nilIfEmpty(c.Removing)
	np.PartitionEpoch++
	return Result{}, nil
}

func nilIfEmpty(v []int32) []int32 {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

// validateReassignment: adding and removing are distinct, disjoint subsets
// of replicas (ErrInvalidReplicaAssignment).
func validateReassignment(replicas, adding, removing []int32) error {
	seen := map[int32]bool{}
	for _, r := range append(slices.Clip(adding), removing...) {
		if seen[r] || !slices.Contains(replicas, r) {
			return fmt.Errorf("%w: adding %v removing %v of replicas %v", ErrInvalidReplicaAssignment, adding, removing, replicas)
		}
		seen[r] = true
	}
	return nil
}

// ---- AlterConfigs

// ConfigResource is the kind of resource AlterConfigs changes; the values
// are Kafka's ConfigResource types.
type ConfigResource uint8

// Config resource types.
const (
	ResourceTopic  ConfigResource = 2
	ResourceBroker ConfigResource = 4
	ResourceGroup  ConfigResource = 32
)

// AlterConfigs changes the dynamic configs of a topic (Name = topic name),
// of a broker (Name = decimal broker id, or "" for the cluster default) or
// of a consumer group (Name = group id).
// Keys in Delete are removed, then Set is applied, so a key in both ends up
// set. Setting and deleting are idempotent.
type AlterConfigs struct {
	Resource ConfigResource
	Name     string
	Set      map[string]string
	Delete   []string
}

// Type implements Command.
func (AlterConfigs) Type() CommandType { return CmdAlterConfigs }

func (c AlterConfigs) encode(e *encoder) {
	e.u8(uint8(c.Resource))
	e.str(c.Name)
	e.strMap(c.Set)
	e.strs(c.Delete)
}

func decodeAlterConfigs(d *decoder) Command {
	return AlterConfigs{Resource: ConfigResource(d.u8()), Name: d.str(), Set: d.strMap(), Delete: d.strs()}
}

func (c AlterConfigs) apply(t *txn, _ uint64) (Result, error) {
	switch c.Resource {
	case ResourceTopic:
		tp, ok := t.s.Topics[c.Name]
		if !ok {
			return Result{}, fmt.Errorf("%w: %q", ErrUnknownTopic, c.Name)
		}
		next := alteredConfigs(tp.Configs, c.Set, c.Delete)
		if configsEqual(next, tp.Configs) {
			return Result{}, nil
		}
		t.mutableTopic(tp).Configs = next
		return Result{}, nil
	case ResourceBroker:
		if err := validBrokerResource(c.Name); err != nil {
			return Result{}, err
		}
		old := t.s.BrokerConfigs[c.Name]
		next := alteredConfigs(old, c.Set, c.Delete)
		if configsEqual(next, old) {
			return Result{}, nil
		}
		if next == nil {
			delete(t.brokerConfigs(), c.Name)
		} else {
			t.brokerConfigs()[c.Name] = next
		}
		return Result{}, nil
	case ResourceGroup:
		if err := validGroupResource(c.Name); err != nil {
			return Result{}, err
		}
		old := t.s.GroupConfigs[c.Name]
		next := alteredConfigs(old, c.Set, c.Delete)
		if configsEqual(next, old) {
			return Result{}, nil
		}
		if next == nil {
			delete(t.groupConfigs(), c.Name)
		} else {
			t.groupConfigs()[c.Name] = next
		}
		return Result{}, nil
	default:
		return Result{}, invalid("config resource type %d", c.Resource)
	}
}

// validGroupResource checks a group config resource name: any group id but
// the empty one, as Kafka.
func validGroupResource(name string) error {
	if name == "" {
		return invalid("empty group config resource name")
	}
	return nil
}

func validBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > 10 || (len(name) > 1 && name[0] == '0') {
		return invalid("broker resource name %q", name)
	}
	var v int64
	for _, ch := range name {
		if ch < '0' || ch > '9' {
			return invalid("broker resource name %q", name)
		}
		v = v*10 + int64(ch-'0')
	}
	if v > 1<<31-1 {
		return invalid("broker resource name %q", name)
	}
	return nil
}

// alteredConfigs returns a fresh map (nil when empty); old is not modified.
func alteredConfigs(old, set map[string]string, del []string) map[string]string {
	next := make(map[string]string, len(old)+len(set))
	for k, v := range old {
		next[k] = v
	}
	for _, k := range del {
		delete(next, k)
	}
	for k, v := range set {
		next[k] = v
	}
	if len(next) == 0 {
		return nil
	}
	return next
}

func configsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ---- AllocateProducerIDs

// AllocateProducerIDs hands the block [Start, Start+Count) to a broker. It
// is a compare-and-set on NextProducerID: Start must equal it, else
// ErrStaleProducerIDBlock (a retry after success is stale and changes
// nothing). The block is returned in Result.ProducerIDs.
type AllocateProducerIDs struct {
	BrokerID int32
	Start    int64
	Count    int32
}

// Type implements Command.
func (AllocateProducerIDs) Type() CommandType { return CmdAllocateProducerIDs }

func (c AllocateProducerIDs) encode(e *encoder) {
	e.i32(c.BrokerID)
	e.varint(c.Start)
	e.i32(c.Count)
}

func decodeAllocateProducerIDs(d *decoder) Command {
	return AllocateProducerIDs{BrokerID: d.i32(), Start: d.varint(), Count: d.i32()}
}

func (c AllocateProducerIDs) apply(t *txn, _ uint64) (Result, error) {
	if c.Count <= 0 {
		return Result{}, invalid("producer id block of %d", c.Count)
	}
	if c.Start != t.s.NextProducerID {
		return Result{}, fmt.Errorf("%w: next is %d, command starts at %d", ErrStaleProducerIDBlock, t.s.NextProducerID, c.Start)
	}
	if c.Start > 1<<63-1-int64(c.Count) {
		return Result{}, invalid("producer id space exhausted")
	}
	t.s.NextProducerID = c.Start + int64(c.Count)
	return Result{ProducerIDs: ProducerIDBlock{Start: c.Start, Count: c.Count}}, nil
}

// applyError marks an error produced by the state machine for a log entry.
type applyError struct {
	cmd string
	err error
}

func (e *applyError) Error() string { return e.cmd + ": " + e.err.Error() }
func (e *applyError) Unwrap() error { return e.err }
