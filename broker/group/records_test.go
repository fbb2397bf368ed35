package group

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func sp(s string) *string { return &s }

// TestRecordKeyEncoding pins the key layout against Kafka's schemas: int16
// type, int16-length group id, and the member id for per-member types.
func TestRecordKeyEncoding(t *testing.T) {
	tests := []struct {
		key  RecordKey
		want string
	}{
		{RecordKey{Type: RecordConsumerGroupMetadata, Group: "g"}, "0003" + "0001" + "67"},
		{RecordKey{Type: RecordConsumerGroupPartitionMetadata, Group: "g"}, "0004" + "0001" + "67"},
		{RecordKey{Type: RecordConsumerGroupMemberMetadata, Group: "g", Member: "m"}, "0005" + "0001" + "67" + "0001" + "6d"},
		{RecordKey{Type: RecordConsumerGroupTargetMetadata, Group: "gg"}, "0006" + "0002" + "6767"},
		{RecordKey{Type: RecordConsumerGroupTargetMember, Group: "g", Member: ""}, "0007" + "0001" + "67" + "0000"},
		{RecordKey{Type: RecordConsumerGroupCurrentAssignment, Group: "g", Member: "mm"}, "0008" + "0001" + "67" + "0002" + "6d6d"},
	}
	for _, tc := range tests {
		got := tc.key.AppendTo(nil)
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%+v encodes as %x, want %s", tc.key, got, tc.want)
		}
		back, err := ParseRecordKey(got)
		if err != nil || back != tc.key {
			t.Errorf("%x decodes as %+v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "00", "0002000167", "0003", "000300", "00030002" + "67", "0005000167", "0003000167" + "00"} {
		b, _ := hex.DecodeString(bad)
		if _, err := ParseRecordKey(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("key %s: err %v, want ErrBadRecord", bad, err)
		}
	}
}

// TestRecordValueEncoding pins value bytes for the fixed-size values
// (version 0, fields, empty tag section) and that flexible encodings
// (compact lengths, nulls) match Kafka's.
func TestRecordValueEncoding(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"group metadata", (&ConsumerGroupMetadataValue{Epoch: 5}).AppendTo(nil), "0000" + "00000005" + "00"},
		{"target metadata", (&ConsumerGroupTargetMetadataValue{AssignmentEpoch: -1}).AppendTo(nil), "0000" + "ffffffff" + "00"},
		{"member metadata, nulls", (&ConsumerGroupMemberMetadataValue{ClientID: "c", ClientHost: "/h", SubscribedTopics: []string{"t"}, RebalanceTimeoutMs: 1}).AppendTo(nil),
			"0000" + "00" + "00" + "0263" + "032f68" + "02" + "0274" + "00" + "00000001" + "00" + "00"},
		{"target member, empty", (&ConsumerGroupTargetMemberValue{Assignment: Assignment{}}).AppendTo(nil), "0000" + "01" + "00"},
		{"partition metadata", (&ConsumerGroupPartitionMetadataValue{Topics: []TopicInfo{{Name: "a", ID: TopicID{1}, Partitions: 2}}}).AppendTo(nil),
			"0000" + "02" + "01000000000000000000000000000000" + "0261" + "00000002" + "01" + "00" + "00"},
		{"current assignment with epochs", (&ConsumerGroupCurrentAssignmentValue{MemberEpoch: 3, PreviousMemberEpoch: 2, State: 0,
			Assigned: Assignment{TopicID{1}: {1}}, AssignedAt: map[TopicID]map[int32]int32{{1}: {1: 2}}, Revoking: Assignment{}}).AppendTo(nil),
			"0000" + "00000003" + "00000002" + "00" +
				"02" + "01000000000000000000000000000000" + "02" + "00000001" + "01" + "00" + "05" + "02" + "00000002" +
				"01" + "00"},
	}
	for _, tc := range tests {
		if h := hex.EncodeToString(tc.got); h != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, h, tc.want)
		}
	}
}

// TestRecordValueRoundTrip encodes and decodes every value type.
func TestRecordValueRoundTrip(t *testing.T) {
	a := Assignment{TopicID{1}: {0, 2}, TopicID{2}: {7}}
	at := map[TopicID]map[int32]int32{{1}: {0: 4, 2: 5}, {2}: {7: 5}}
	tests := []struct {
		name    string
		in, out interface {
			AppendTo([]byte) []byte
			ReadFrom([]byte) error
		}
	}{
		{"group", &ConsumerGroupMetadataValue{Epoch: 9}, &ConsumerGroupMetadataValue{}},
		{"partitions", &ConsumerGroupPartitionMetadataValue{Topics: []TopicInfo{{Name: "a", ID: TopicID{1}, Partitions: 3}, {Name: "b", ID: TopicID{2}, Partitions: 1}}}, &ConsumerGroupPartitionMetadataValue{}},
		{"member", &ConsumerGroupMemberMetadataValue{InstanceID: sp("i"), RackID: sp("r"), ClientID: "c", ClientHost: "/1.2.3.4",
			SubscribedTopics: []string{"a", "b"}, SubscribedRegex: sp("x.*"), RebalanceTimeoutMs: 30000, ServerAssignor: sp("range")}, &ConsumerGroupMemberMetadataValue{}},
		{"member, no topics", &ConsumerGroupMemberMetadataValue{ClientID: "c", SubscribedRegex: sp("^t"), RebalanceTimeoutMs: -1}, &ConsumerGroupMemberMetadataValue{}},
		{"target", &ConsumerGroupTargetMetadataValue{AssignmentEpoch: 9}, &ConsumerGroupTargetMetadataValue{}},
		{"target member", &ConsumerGroupTargetMemberValue{Assignment: a}, &ConsumerGroupTargetMemberValue{}},
		{"current", &ConsumerGroupCurrentAssignmentValue{MemberEpoch: 5, PreviousMemberEpoch: 4, State: int8(memberUnrevoked),
			Assigned: a, AssignedAt: at, Revoking: Assignment{TopicID{3}: {1}}}, &ConsumerGroupCurrentAssignmentValue{}},
	}
	for _, tc := range tests {
		b := tc.in.AppendTo(nil)
		if err := tc.out.ReadFrom(b); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if m, ok := tc.in.(*ConsumerGroupMemberMetadataValue); ok && m.SubscribedTopics == nil {
			m.SubscribedTopics = tc.out.(*ConsumerGroupMemberMetadataValue).SubscribedTopics // nil and empty encode alike
		}
		if !reflect.DeepEqual(tc.in, tc.out) {
			t.Errorf("%s: wrote %+v, read %+v", tc.name, tc.in, tc.out)
		}
		if !bytes.Equal(tc.out.AppendTo(nil), b) {
			t.Errorf("%s: re-encoding differs", tc.name)
		}
		for cut := range len(b) {
			if err := tc.out.ReadFrom(b[:cut]); !errors.Is(err, ErrBadRecord) {
				t.Errorf("%s cut at %d: err %v, want ErrBadRecord", tc.name, cut, err)
			}
		}
	}
}

// TestRecordValueSkipsUnknownTags reads values carrying tagged fields this
// version does not write (Kafka 4.1's MetadataHash, 4.3's
// AssignmentTimestamp) and refuses unknown versions.
func TestRecordValueSkipsUnknownTags(t *testing.T) {
	// Epoch 7, then one tagged field: tag 0, 8 bytes (MetadataHash).
	b, _ := hex.DecodeString("0000" + "00000007" + "01" + "00" + "08" + "0102030405060708")
	var v ConsumerGroupMetadataValue
	if err := v.ReadFrom(b); err != nil || v.Epoch != 7 {
		t.Errorf("tagged group metadata: %+v %v", v, err)
	}
	b, _ = hex.DecodeString("0001" + "00000007" + "00")
	if err := v.ReadFrom(b); !errors.Is(err, ErrBadRecord) {
		t.Errorf("version 1: %v", err)
	}
	// A topic whose AssignmentEpochs do not align with its partitions keeps
	// the partitions and drops the epochs.
	b, _ = hex.DecodeString("0000" + "00000003" + "00000002" + "00" +
		"02" + "01000000000000000000000000000000" + "02" + "00000001" + "01" + "00" + "09" + "03" + "00000002" + "00000002" +
		"01" + "00")
	var c ConsumerGroupCurrentAssignmentValue
	if err := c.ReadFrom(b); err != nil || !reflect.DeepEqual(c.Assigned, Assignment{TopicID{1}: {1}}) || c.AssignedAt != nil {
		t.Errorf("misaligned epochs: %+v %v", c, err)
	}
}

// decodeConsumerRecord decodes a key and its value by type; used by the
// fuzz target and the restore tests.
func decodeConsumerRecord(key, value []byte) (RecordKey, interface {
	AppendTo([]byte) []byte
	ReadFrom([]byte) error
}, error) {
	k, err := ParseRecordKey(key)
	if err != nil {
		return k, nil, err
	}
	var v interface {
		AppendTo([]byte) []byte
		ReadFrom([]byte) error
	}
	switch k.Type {
	case RecordConsumerGroupMetadata:
		v = &ConsumerGroupMetadataValue{}
	case RecordConsumerGroupPartitionMetadata:
		v = &ConsumerGroupPartitionMetadataValue{}
	case RecordConsumerGroupMemberMetadata:
		v = &ConsumerGroupMemberMetadataValue{}
	case RecordConsumerGroupTargetMetadata:
		v = &ConsumerGroupTargetMetadataValue{}
	case RecordConsumerGroupTargetMember:
		v = &ConsumerGroupTargetMemberValue{}
	default:
		v = &ConsumerGroupCurrentAssignmentValue{}
	}
	return k, v, v.ReadFrom(value)
}

// FuzzConsumerRecord feeds arbitrary bytes to the record decoders: they
// never panic, and whatever decodes re-encodes to bytes that decode to the
// same value (the encoding is canonical from the second round on). Input:
// a 2-byte key length, the key, then the value.
func FuzzConsumerRecord(f *testing.F) {
	add := func(k RecordKey, v interface{ AppendTo([]byte) []byte }) {
		key := k.AppendTo(nil)
		f.Add(append(append([]byte{byte(len(key) >> 8), byte(len(key))}, key...), v.AppendTo(nil)...))
	}
	add(RecordKey{Type: RecordConsumerGroupMetadata, Group: "g"}, &ConsumerGroupMetadataValue{Epoch: 3})
	add(RecordKey{Type: RecordConsumerGroupCurrentAssignment, Group: "g", Member: "m"},
		&ConsumerGroupCurrentAssignmentValue{MemberEpoch: 1, Assigned: Assignment{TopicID{1}: {0}}, AssignedAt: map[TopicID]map[int32]int32{{1}: {0: 1}}})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		n := int(data[0])<<8 | int(data[1])
		if n > len(data)-2 {
			return
		}
		k, v, err := decodeConsumerRecord(data[2:2+n], data[2+n:])
		if err != nil {
			return
		}
		once := v.AppendTo(nil)
		_, v2, err := decodeConsumerRecord(k.AppendTo(nil), once)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", v, err)
		}
		if twice := v2.AppendTo(nil); !bytes.Equal(once, twice) {
			t.Fatalf("encoding not stable:\n%x\n%x", once, twice)
		}
		// What decodes must restore into a usable group.
		g := New(k.Group, DefaultConfig(), testNow)
		g.RestoreConsumer(map[RecordKey][]byte{
			{Type: RecordConsumerGroupMetadata, Group: k.Group}:                         (&ConsumerGroupMetadataValue{Epoch: 1}).AppendTo(nil),
			{Type: RecordConsumerGroupMemberMetadata, Group: k.Group, Member: k.Member}: (&ConsumerGroupMemberMetadataValue{ClientID: "c"}).AppendTo(nil),
			k: once,
		}, testNow, ccfg.SessionTimeout)
		_ = g.ConsumerHeartbeat(testNow, ccfg, topicsAB(), ConsumerHeartbeat{MemberID: k.Member, MemberEpoch: 1, RebalanceTimeout: -1}, true)
		g.Tick(testNow.Add(ccfg.SessionTimeout))
		_ = g.ConsumerRecords()
	})
}
