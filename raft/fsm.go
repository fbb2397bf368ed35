package raft

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	hraft "github.com/hashicorp/raft"
)

// fsm is the cluster-metadata state machine behind hashicorp/raft.
//
// Ownership: raft calls Apply, ApplyBatch, Snapshot and Restore from its one
// FSM goroutine; the node's leader observer calls setController. Both build
// a new State from the current one and publish it under mu, so the two
// writers never lose each other's update. Readers load the atomic pointer
// without locking.
type fsm struct {
	// mu serializes publishers (the raft FSM goroutine and setController).
	mu    sync.Mutex
	state atomic.Pointer[State]

	// subMu guards subs and nextSub.
	subMu   sync.Mutex
	subs    map[uint64]chan struct{}
	nextSub uint64
}

// applyResponse is what the FSM hands back through raft's ApplyFuture.
type applyResponse struct {
	res Result
	err error
}

var _ hraft.BatchingFSM = (*fsm)(nil)

func newFSM() *fsm {
	f := &fsm{subs: map[uint64]chan struct{}{}}
	f.state.Store(newState())
	return f
}

// current returns the published state; lock-free.
func (f *fsm) current() *State { return f.state.Load() }

// subscribe returns a channel that receives a value after each publish.
// Notifications coalesce: the channel holds at most one, so a slow reader
// sees "something changed" once and reads the latest State.
func (f *fsm) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.subMu.Lock()
	id := f.nextSub
	f.nextSub++
	f.subs[id] = ch
	f.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.subMu.Lock()
			delete(f.subs, id)
			f.subMu.Unlock()
		})
	}
}

// publish installs s and wakes subscribers. f.mu must be held.
func (f *fsm) publish(s *State) {
	assertInvariants(s)
	f.state.Store(s)
	f.subMu.Lock()
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.subMu.Unlock()
}

// setController republishes the state with a new ControllerID.
func (f *fsm) setController(id int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.current()
	if cur.ControllerID == id {
		return
	}
	ns := *cur
	ns.ControllerID = id
	f.publish(&ns)
}

// Apply implements hraft.FSM.
func (f *fsm) Apply(l *hraft.Log) any {
	return f.ApplyBatch([]*hraft.Log{l})[0]
}

// ApplyBatch implements hraft.BatchingFSM: the whole batch shares one
// copy-on-write transaction and one publish, so a burst of commands (a
// failover moving many partitions) copies each touched map once.
func (f *fsm) ApplyBatch(logs []*hraft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(logs))
	t := newTxn(f.current())
	applied := false
	for i, l := range logs {
		if l.Type != hraft.LogCommand {
			continue
		}
		applied = true
		out[i] = applyEntry(t, l.Index, l.Data)
	}
	if applied {
		f.publish(t.s)
	}
	return out
}

// applyEntry decodes and applies one log entry to t. Undecodable entries
// produce an error response and no change: every replica decodes the same
// bytes the same way, so they all agree to skip it.
func applyEntry(t *txn, index uint64, data []byte) *applyResponse {
	t.s.Version = index
	cmd, err := DecodeCommand(data)
	if err != nil {
		return &applyResponse{err: &applyError{cmd: "decode", err: err}}
	}
	res, err := cmd.apply(t, index)
	if err != nil {
		return &applyResponse{err: &applyError{cmd: cmd.Type().String(), err: err}}
	}
	res.Index = index
	return &applyResponse{res: res}
}

// Snapshot implements hraft.FSM. The published State is immutable, so the
// snapshot is just the pointer; encoding happens in Persist, concurrently
// with later applies.
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) {
	return &fsmSnapshot{s: f.current()}, nil
}

// Restore implements hraft.FSM: the decoded snapshot replaces the state
// wholesale; the controller id (not part of the log) is kept.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	s, err := decodeState(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s.ControllerID = f.current().ControllerID
	f.publish(s)
	return nil
}

type fsmSnapshot struct {
	s *State
}

// Persist implements hraft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	if _, err := sink.Write(encodeState(s.s)); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close metadata snapshot: %w", err)
	}
	return nil
}

// Release implements hraft.FSMSnapshot; the state needs no release.
func (s *fsmSnapshot) Release() {}

// snapshotMagic opens every snapshot; the last byte is the format version.
// Version 3 appends the reassignments in progress; version 2 snapshots
// (written before reassignment existed) are still read.
const snapshotMagic = "strom-metadata\x03"

// snapshotMagicV2 is the previous format: no reassignment section.
const snapshotMagicV2 = "strom-metadata\x02"

// snapshotMagicV4 marks a version 3 snapshot with a delegation token
// section after the SCRAM credentials. It is written only when tokens
// exist, so a snapshot without tokens stays byte for byte version 3.
const snapshotMagicV4 = "strom-metadata\x04"

// encodeState serializes everything in s that comes from the log (not
// ControllerID), deterministically: brokers, topics and config resources in
// sorted order.
func encodeState(s *State) []byte {
	e := encoder{b: make([]byte, 0, 4096)}
	if len(s.DelegationTokens) > 0 {
		e.b = append(e.b, snapshotMagicV4...)
	} else {
		e.b = append(e.b, snapshotMagic...)
	}
	e.str(s.ClusterID)
	e.varint(s.NextProducerID)
	e.uvarint(s.Version)
	brokers := s.SortedBrokers()
	e.uvarint(uint64(len(brokers)))
	for _, b := range brokers {
		e.i32(b.ID)
		e.str(b.Host)
		e.i32(b.Port)
		e.str(b.Rack)
		e.boolean(b.Fenced)
		e.varint(b.Epoch)
		e.id(b.IncarnationID)
	}
	names := s.SortedTopicNames()
	e.uvarint(uint64(len(names)))
	for _, n := range names {
		encodeTopic(&e, s.Topics[n])
	}
	res := make([]string, 0, len(s.BrokerConfigs))
	for k := range s.BrokerConfigs {
		res = append(res, k)
	}
	slices.Sort(res)
	e.uvarint(uint64(len(res)))
	for _, r := range res {
		e.str(r)
		e.strMap(s.BrokerConfigs[r])
	}
	encodeACLs(&e, s.SortedACLs())
	keys := slices.SortedFunc(maps.Keys(s.SCRAM), compareSCRAMKey)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		c := s.SCRAM[k]
		e.str(k.User)
		e.u8(uint8(k.Mechanism))
		e.bytes(c.Salt)
		e.bytes(c.StoredKey)
		e.bytes(c.ServerKey)
		e.i32(c.Iterations)
	}
	if len(s.DelegationTokens) > 0 {
		encodeDelegationTokenSection(&e, s)
	}
	// Reassignments in progress, after everything version 2 had, so the
	// topic encoding (shared with CreateTopic commands) stays unchanged.
	type reassigning struct {
		topic string
		p     *Partition
	}
	var rs []reassigning
	for _, n := range names {
		tp := s.Topics[n]
		for i := range tp.Partitions {
			if tp.Partitions[i].Reassigning() {
				rs = append(rs, reassigning{n, &tp.Partitions[i]})
			}
		}
	}
	e.uvarint(uint64(len(rs)))
	for _, r := range rs {
		e.str(r.topic)
		e.i32(r.p.Index)
		e.i32s(r.p.AddingReplicas)
		e.i32s(r.p.RemovingReplicas)
	}
	// Broker listener endpoints, an optional last section (snapshots
	// written before it end after the reassignments): the brokers that
	// recorded listeners, by id.
	var withListeners []Broker
	for _, b := range brokers {
		if len(b.Listeners) > 0 {
			withListeners = append(withListeners, b)
		}
	}
	// Optional sections follow in a fixed order: listeners, client quotas,
	// group configs. A section is written when it or a later one has
	// content (possibly empty, then), so a snapshot without the later
	// features is byte for byte what it was before they existed.
	quotasOn := len(s.ClientQuotas) > 0 || len(s.GroupConfigs) > 0
	if len(withListeners) > 0 || quotasOn {
		e.uvarint(uint64(len(withListeners)))
		for _, b := range withListeners {
			e.i32(b.ID)
			encodeEndpoints(&e, b.Listeners)
		}
	}
	if quotasOn {
		encodeQuotaSection(&e, s)
	}
	if len(s.GroupConfigs) > 0 {
		groups := slices.Sorted(maps.Keys(s.GroupConfigs))
		e.uvarint(uint64(len(groups)))
		for _, g := range groups {
			e.str(g)
			e.strMap(s.GroupConfigs[g])
		}
	}
	return e.b
}

// decodeGroupConfigSection reads the optional group config section into s.
// It is only written for a non-empty set.
func decodeGroupConfigSection(d *decoder, s *State) error {
	n := d.count(2)
	if d.err == nil && n == 0 {
		return fmt.Errorf("%w: empty group config section", ErrCorruptSnapshot)
	}
	for range n {
		name := d.str()
		m := d.strMap()
		if d.err != nil {
			break
		}
		if err := validGroupResource(name); err != nil || len(m) == 0 {
			return fmt.Errorf("%w: group config resource %q", ErrCorruptSnapshot, name)
		}
		if _, dup := s.GroupConfigs[name]; dup {
			return fmt.Errorf("%w: duplicate group config resource %q", ErrCorruptSnapshot, name)
		}
		s.GroupConfigs[name] = m
	}
	return nil
}

// decodeState parses and validates a snapshot; any failure wraps
// ErrCorruptSnapshot. It never panics on bad input.
func decodeState(b []byte) (*State, error) {
	if len(b) < len(snapshotMagic) {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	v2 := string(b[:len(snapshotMagicV2)]) == snapshotMagicV2
	v4 := string(b[:len(snapshotMagicV4)]) == snapshotMagicV4
	if !v2 && !v4 && string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	d := decoder{b: b, off: len(snapshotMagic)}
	s := newState()
	s.ClusterID = d.str()
	s.NextProducerID = d.varint()
	s.Version = d.uvarint()
	nb := d.count(20)
	for range nb {
		br := Broker{ID: d.i32(), Host: d.str(), Port: d.i32(), Rack: d.str(), Fenced: d.boolean(), Epoch: d.varint(), IncarnationID: d.id()}
		if d.err != nil {
			break
		}
		if _, dup := s.Brokers[br.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate broker %d", ErrCorruptSnapshot, br.ID)
		}
		s.Brokers[br.ID] = br
	}
	nt := d.count(20)
	for range nt {
		tp := decodeTopic(&d)
		if d.err != nil {
			break
		}
		if err := validateTopic(tp); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
		if _, dup := s.Topics[tp.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate topic %q", ErrCorruptSnapshot, tp.Name)
		}
		if _, dup := s.TopicsByID[tp.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate topic id of %q", ErrCorruptSnapshot, tp.Name)
		}
		s.Topics[tp.Name] = tp
		s.TopicsByID[tp.ID] = tp
	}
	nr := d.count(2)
	for range nr {
		name := d.str()
		m := d.strMap()
		if d.err != nil {
			break
		}
		if err := validBrokerResource(name); err != nil || len(m) == 0 {
			return nil, fmt.Errorf("%w: config resource %q", ErrCorruptSnapshot, name)
		}
		if _, dup := s.BrokerConfigs[name]; dup {
			return nil, fmt.Errorf("%w: duplicate config resource %q", ErrCorruptSnapshot, name)
		}
		s.BrokerConfigs[name] = m
	}
	for _, a := range decodeACLs(&d) {
		if _, dup := s.ACLs[a]; dup {
			return nil, fmt.Errorf("%w: duplicate acl %+v", ErrCorruptSnapshot, a)
		}
		s.ACLs[a] = struct{}{}
	}
	ns := d.count(6)
	for range ns {
		k := SCRAMKey{User: d.str(), Mechanism: SCRAMMechanism(d.u8())}
		c := SCRAMCredential{Salt: d.bytes(), StoredKey: d.bytes(), ServerKey: d.bytes(), Iterations: d.i32()}
		if d.err != nil {
			break
		}
		if _, dup := s.SCRAM[k]; dup {
			return nil, fmt.Errorf("%w: duplicate scram credential %+v", ErrCorruptSnapshot, k)
		}
		s.SCRAM[k] = c
	}
	if v4 {
		if err := decodeDelegationTokenSection(&d, s); err != nil {
			return nil, err
		}
	}
	if !v2 {
		if err := decodeReassignments(&d, s); err != nil {
			return nil, err
		}
		if d.err == nil && d.remaining() > 0 {
			if err := decodeBrokerListeners(&d, s); err != nil {
				return nil, err
			}
		}
		if d.err == nil && d.remaining() > 0 {
			if err := decodeQuotaSection(&d, s); err != nil {
				return nil, err
			}
		}
		if d.err == nil && d.remaining() > 0 {
			if err := decodeGroupConfigSection(&d, s); err != nil {
				return nil, err
			}
		}
	}
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	if err := s.checkInvariants(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	return s, nil
}

// decodeBrokerListeners reads the optional listener section into the
// freshly decoded brokers of s.
func decodeBrokerListeners(d *decoder, s *State) error {
	n := d.count(5)
	for range n {
		id := d.i32()
		eps := decodeEndpoints(d)
		if d.err != nil {
			break
		}
		b, ok := s.Brokers[id]
		if !ok || len(b.Listeners) > 0 || len(eps) == 0 {
			return fmt.Errorf("%w: listeners of broker %d", ErrCorruptSnapshot, id)
		}
		if err := validateEndpoints(eps); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
		b.Listeners = eps
		s.Brokers[id] = b
	}
	return nil
}

// decodeReassignments reads the version 3 reassignment section into the
// freshly decoded (still private) topics of s.
func decodeReassignments(d *decoder, s *State) error {
	n := d.count(4)
	for range n {
		name, idx, adding, removing := d.str(), d.i32(), d.i32s(), d.i32s()
		if d.err != nil {
			return nil
		}
		tp, ok := s.Topics[name]
		if !ok || idx < 0 || int(idx) >= len(tp.Partitions) {
			return fmt.Errorf("%w: reassignment of unknown partition %s-%d", ErrCorruptSnapshot, name, idx)
		}
		p := &tp.Partitions[idx]
		if p.Reassigning() || len(adding)+len(removing) == 0 {
			return fmt.Errorf("%w: bad reassignment entry for %s-%d", ErrCorruptSnapshot, name, idx)
		}
		p.AddingReplicas, p.RemovingReplicas = adding, removing
		if err := validateReassignment(p.Replicas, adding, removing); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
	}
	return nil
}
