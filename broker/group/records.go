package group

// The __consumer_offsets records of consumer-protocol (KIP-848) groups, in
// Apache Kafka's schemas (group-coordinator's ConsumerGroup*Key/Value,
// record types 3-8), so a Kafka tool reading the topic understands them and
// a Kafka coordinator could load them. kmsg has no types for these, hence
// this small codec.
//
// A key is a non-flexible struct: int16 record type, then the group id and,
// for per-member records, the member id, each as an int16-length string. A
// value is int16 version 0 followed by a flexible struct: compact strings and
// arrays (unsigned varint length + 1, 0 for null), 16-byte uuids, big-endian
// integers, and a tagged-field section after every struct.
//
// Decoders never panic on any input: truncated or malformed bytes give an
// error wrapping ErrBadRecord, and unknown tagged fields are skipped (later
// Kafka versions add tagged fields, e.g. MetadataHash in 4.1).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Record types (the key's version field) of consumer groups.
const (
	RecordConsumerGroupMetadata          int16 = 3
	RecordConsumerGroupPartitionMetadata int16 = 4
	RecordConsumerGroupMemberMetadata    int16 = 5
	RecordConsumerGroupTargetMetadata    int16 = 6
	RecordConsumerGroupTargetMember      int16 = 7
	RecordConsumerGroupCurrentAssignment int16 = 8
)

// Errors of this package; match with errors.Is.
var (
	// ErrBadRecord reports a __consumer_offsets record this package cannot
	// decode (truncated, an unknown type or version, a negative length).
	ErrBadRecord = errors.New("malformed consumer group record")
)

// IsConsumerRecordType reports whether t is one of the record types above.
func IsConsumerRecordType(t int16) bool {
	return t >= RecordConsumerGroupMetadata && t <= RecordConsumerGroupCurrentAssignment
}

// perMember reports whether records of type t are keyed by group and member.
func perMember(t int16) bool {
	return t == RecordConsumerGroupMemberMetadata || t == RecordConsumerGroupTargetMember ||
		t == RecordConsumerGroupCurrentAssignment
}

// RecordKey is the key of a consumer group record. Member is empty for the
// group-level types (3, 4, 6).
type RecordKey struct {
	Type   int16
	Group  string
	Member string
}

// AppendTo appends the encoded key to b.
func (k RecordKey) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(k.Type))
	b = appendString16(b, k.Group)
	if perMember(k.Type) {
		b = appendString16(b, k.Member)
	}
	return b
}

// ParseRecordKey decodes a consumer group record key.
func ParseRecordKey(b []byte) (RecordKey, error) {
	r := reader{b: b}
	k := RecordKey{Type: r.int16()}
	if !IsConsumerRecordType(k.Type) && r.err == nil {
		return k, fmt.Errorf("%w: key type %d", ErrBadRecord, k.Type)
	}
	k.Group = r.string16()
	if perMember(k.Type) {
		k.Member = r.string16()
	}
	return k, r.done("key")
}

// ConsumerGroupMetadataValue is record type 3: the group epoch.
type ConsumerGroupMetadataValue struct {
	Epoch int32
}

// ConsumerGroupPartitionMetadataValue is record type 4: the metadata of every
// topic the members subscribe to, as of the last group epoch bump. A change
// of it (a topic created, deleted or grown) bumps the group epoch.
type ConsumerGroupPartitionMetadataValue struct {
	Topics []TopicInfo
}

// ConsumerGroupMemberMetadataValue is record type 5: a member's
// subscription and identity. Nil pointers are nulls.
type ConsumerGroupMemberMetadataValue struct {
	InstanceID         *string
	RackID             *string
	ClientID           string
	ClientHost         string
	SubscribedTopics   []string
	SubscribedRegex    *string
	RebalanceTimeoutMs int32
	ServerAssignor     *string
}

// ConsumerGroupTargetMetadataValue is record type 6: the epoch of the
// target assignment.
type ConsumerGroupTargetMetadataValue struct {
	AssignmentEpoch int32
}

// ConsumerGroupTargetMemberValue is record type 7: one member's target
// assignment.
type ConsumerGroupTargetMemberValue struct {
	Assignment Assignment
}

// ConsumerGroupCurrentAssignmentValue is record type 8: where a member
// stands in its reconciliation. AssignedAt holds the epoch at which each
// assigned partition was given (Kafka's AssignmentEpochs tag, KIP-1251);
// nil when the record did not carry it.
type ConsumerGroupCurrentAssignmentValue struct {
	MemberEpoch         int32
	PreviousMemberEpoch int32
	State               int8
	Assigned            Assignment
	AssignedAt          map[TopicID]map[int32]int32
	Revoking            Assignment
}

// AppendTo appends the encoded value to b.
func (v *ConsumerGroupMetadataValue) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(v.Epoch))
	return appendNoTags(b)
}

// ReadFrom decodes the value.
func (v *ConsumerGroupMetadataValue) ReadFrom(b []byte) error {
	r := reader{b: b}
	r.version()
	v.Epoch = r.int32()
	r.skipTags()
	return r.done("group metadata")
}

// AppendTo appends the encoded value to b; topics are written in the order
// given (callers sort them by name).
func (v *ConsumerGroupPartitionMetadataValue) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0)
	b = appendLen(b, len(v.Topics))
	for _, t := range v.Topics {
		b = append(b, t.ID[:]...)
		b = appendCompactString(b, t.Name)
		b = binary.BigEndian.AppendUint32(b, uint32(t.Partitions))
		b = appendLen(b, 0) // PartitionMetadata (racks): unused since Kafka 4.0
		b = appendNoTags(b)
	}
	return appendNoTags(b)
}

// ReadFrom decodes the value; rack lists are read and dropped.
func (v *ConsumerGroupPartitionMetadataValue) ReadFrom(b []byte) error {
	r := reader{b: b}
	r.version()
	n := r.arrayLen()
	v.Topics = nil
	for i := 0; i < n && r.err == nil; i++ {
		var t TopicInfo
		r.uuid(&t.ID)
		t.Name = r.compactString()
		t.Partitions = r.int32()
		racks := r.arrayLen()
		for j := 0; j < racks && r.err == nil; j++ {
			r.int32()
			nr := r.arrayLen()
			for k := 0; k < nr && r.err == nil; k++ {
				r.compactString()
			}
			r.skipTags()
		}
		r.skipTags()
		v.Topics = append(v.Topics, t)
	}
	r.skipTags()
	return r.done("partition metadata")
}

// AppendTo appends the encoded value to b.
func (v *ConsumerGroupMemberMetadataValue) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0)
	b = appendNullableString(b, v.InstanceID)
	b = appendNullableString(b, v.RackID)
	b = appendCompactString(b, v.ClientID)
	b = appendCompactString(b, v.ClientHost)
	b = appendLen(b, len(v.SubscribedTopics))
	for _, s := range v.SubscribedTopics {
		b = appendCompactString(b, s)
	}
	b = appendNullableString(b, v.SubscribedRegex)
	b = binary.BigEndian.AppendUint32(b, uint32(v.RebalanceTimeoutMs))
	b = appendNullableString(b, v.ServerAssignor)
	return appendNoTags(b) // ClassicMemberMetadata (tag 0): only for classic members of a consumer group
}

// ReadFrom decodes the value.
func (v *ConsumerGroupMemberMetadataValue) ReadFrom(b []byte) error {
	r := reader{b: b}
	r.version()
	v.InstanceID = r.nullableString()
	v.RackID = r.nullableString()
	v.ClientID = r.compactString()
	v.ClientHost = r.compactString()
	n := r.arrayLen()
	v.SubscribedTopics = nil
	for i := 0; i < n && r.err == nil; i++ {
		v.SubscribedTopics = append(v.SubscribedTopics, r.compactString())
	}
	v.SubscribedRegex = r.nullableString()
	v.RebalanceTimeoutMs = r.int32()
	v.ServerAssignor = r.nullableString()
	r.skipTags()
	return r.done("member metadata")
}

// AppendTo appends the encoded value to b.
func (v *ConsumerGroupTargetMetadataValue) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(v.AssignmentEpoch))
	return appendNoTags(b)
}

// ReadFrom decodes the value.
func (v *ConsumerGroupTargetMetadataValue) ReadFrom(b []byte) error {
	r := reader{b: b}
	r.version()
	v.AssignmentEpoch = r.int32()
	r.skipTags()
	return r.done("target assignment metadata")
}

// AppendTo appends the encoded value to b.
func (v *ConsumerGroupTargetMemberValue) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0)
	b = appendAssignment(b, v.Assignment, nil)
	return appendNoTags(b)
}

// ReadFrom decodes the value.
func (v *ConsumerGroupTargetMemberValue) ReadFrom(b []byte) error {
	r := reader{b: b}
	r.version()
	v.Assignment, _ = r.assignment()
	r.skipTags()
	return r.done("target assignment member")
}

// AppendTo appends the encoded value to b.
func (v *ConsumerGroupCurrentAssignmentValue) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(v.MemberEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(v.PreviousMemberEpoch))
	b = append(b, byte(v.State))
	b = appendAssignment(b, v.Assigned, v.AssignedAt)
	b = appendAssignment(b, v.Revoking, nil)
	return appendNoTags(b)
}

// ReadFrom decodes the value.
func (v *ConsumerGroupCurrentAssignmentValue) ReadFrom(b []byte) error {
	r := reader{b: b}
	r.version()
	v.MemberEpoch = r.int32()
	v.PreviousMemberEpoch = r.int32()
	v.State = int8(r.byte())
	v.Assigned, v.AssignedAt = r.assignment()
	v.Revoking, _ = r.assignment()
	r.skipTags()
	return r.done("current member assignment")
}

// appendAssignment writes a []TopicPartitions array, topics in id order;
// with at, each topic carries its AssignmentEpochs (tag 0) aligned with the
// partitions.
func appendAssignment(b []byte, a Assignment, at map[TopicID]map[int32]int32) []byte {
	ids := sortedIDs(a)
	b = appendLen(b, len(ids))
	for _, id := range ids {
		ps := slices.Clone(a[id])
		slices.Sort(ps)
		b = append(b, id[:]...)
		b = appendLen(b, len(ps))
		for _, p := range ps {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
		if at == nil {
			b = appendNoTags(b)
			continue
		}
		var field []byte
		field = appendLen(field, len(ps))
		for _, p := range ps {
			e, ok := at[id][p]
			if !ok {
				e = -1
			}
			field = binary.BigEndian.AppendUint32(field, uint32(e))
		}
		b = binary.AppendUvarint(b, 1) // one tagged field
		b = binary.AppendUvarint(b, 0) // tag 0: AssignmentEpochs
		b = binary.AppendUvarint(b, uint64(len(field)))
		b = append(b, field...)
	}
	return b
}

func appendString16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendLen(b []byte, n int) []byte { return binary.AppendUvarint(b, uint64(n)+1) }

func appendCompactString(b []byte, s string) []byte {
	b = appendLen(b, len(s))
	return append(b, s...)
}

func appendNullableString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return appendCompactString(b, *s)
}

func appendNoTags(b []byte) []byte { return append(b, 0) }

// reader decodes with a sticky error: after the first failure every read
// returns zero values, and done reports it.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadRecord, what)
	}
	r.b = nil
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail("truncated " + what)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	if b := r.take(1, "int8"); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) int16() int16 {
	if b := r.take(2, "int16"); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) int32() int32 {
	if b := r.take(4, "int32"); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) uuid(dst *TopicID) {
	if b := r.take(16, "uuid"); b != nil {
		copy(dst[:], b)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// version reads a value's version; only 0 is known.
func (r *reader) version() {
	if v := r.int16(); v != 0 && r.err == nil {
		r.fail(fmt.Sprintf("value version %d", v))
	}
}

func (r *reader) string16() string {
	n := r.int16()
	return string(r.take(int(n), "string"))
}

// length reads a compact length; -1 is null. Lengths beyond the remaining
// bytes are refused here, so no caller allocates for a forged count.
func (r *reader) length() int {
	v := r.uvarint()
	if r.err != nil {
		return -1
	}
	if v > uint64(len(r.b))+1 {
		r.fail("length beyond the record")
		return -1
	}
	return int(v) - 1
}

func (r *reader) compactString() string {
	n := r.length()
	if n < 0 {
		if r.err == nil {
			r.fail("null string")
		}
		return ""
	}
	return string(r.take(n, "string"))
}

func (r *reader) nullableString() *string {
	n := r.length()
	if n < 0 {
		return nil
	}
	s := string(r.take(n, "string"))
	return &s
}

// arrayLen reads a compact array length; a null array counts as empty.
func (r *reader) arrayLen() int { return max(r.length(), 0) }

// skipTags skips a tagged-field section.
func (r *reader) skipTags() {
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		r.uvarint()
		size := r.uvarint()
		if size > uint64(len(r.b)) {
			r.fail("tagged field")
			return
		}
		r.take(int(size), "tagged field")
	}
}

// assignment reads a []TopicPartitions array and the AssignmentEpochs tags
// of its topics (nil when no topic carries them).
func (r *reader) assignment() (Assignment, map[TopicID]map[int32]int32) {
	n := r.arrayLen()
	a := Assignment{}
	var at map[TopicID]map[int32]int32
	for i := 0; i < n && r.err == nil; i++ {
		var id TopicID
		r.uuid(&id)
		np := r.arrayLen()
		ps := make([]int32, 0, min(np, len(r.b)/4))
		for j := 0; j < np && r.err == nil; j++ {
			ps = append(ps, r.int32())
		}
		tags := r.uvarint()
		for k := uint64(0); k < tags && r.err == nil; k++ {
			tag := r.uvarint()
			size := r.uvarint()
			if size > uint64(len(r.b)) {
				r.fail("tagged field")
				break
			}
			field := reader{b: r.take(int(size), "tagged field")}
			if tag != 0 || r.err != nil {
				continue
			}
			ne := field.length()
			if ne != len(ps) || field.err != nil {
				continue // not aligned with the partitions: ignore the epochs
			}
			if at == nil {
				at = map[TopicID]map[int32]int32{}
			}
			if at[id] == nil {
				at[id] = map[int32]int32{}
			}
			for _, p := range ps {
				at[id][p] = field.int32()
			}
		}
		if r.err == nil {
			for _, p := range ps {
				addPartition(a, id, p)
			}
		}
	}
	return a, at
}

// done reports the first decode error, or trailing bytes.
func (r *reader) done(what string) error {
	if r.err != nil {
		return fmt.Errorf("%s: %w", what, r.err)
	}
	if len(r.b) > 0 {
		return fmt.Errorf("%s: %w: %d trailing bytes", what, ErrBadRecord, len(r.b))
	}
	return nil
}
