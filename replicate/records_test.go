package replicate

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDestRecordAndOrigin(t *testing.T) {
	s := &session{r: &runner{src: &cluster{id: "SRC"}, dst: &cluster{id: "DST"}}}
	ti := &topicInfo{src: "orders", dst: "dc1.orders"}
	ts := time.UnixMilli(1234)
	off := func(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }
	tests := []struct {
		name     string
		in       []kgo.RecordHeader
		want     []kgo.RecordHeader
		fromDest bool
	}{
		{"plain record gets origin and offset", []kgo.RecordHeader{{Key: "a", Value: []byte("1")}},
			[]kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: OriginHeader, Value: []byte("SRC")}, {Key: OffsetHeader, Value: off(7)}}, false},
		{"first origin of a chain is kept, offset replaced", []kgo.RecordHeader{{Key: OriginHeader, Value: []byte("FIRST")}, {Key: OffsetHeader, Value: off(99)}},
			[]kgo.RecordHeader{{Key: OriginHeader, Value: []byte("FIRST")}, {Key: OffsetHeader, Value: off(7)}}, false},
		{"record from the destination", []kgo.RecordHeader{{Key: OriginHeader, Value: []byte("DST")}},
			[]kgo.RecordHeader{{Key: OriginHeader, Value: []byte("DST")}, {Key: OffsetHeader, Value: off(7)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &kgo.Record{Topic: "orders", Partition: 3, Offset: 7, Key: nil, Value: []byte("v"), Timestamp: ts, Headers: tt.in}
			if got := s.fromDestination(in); got != tt.fromDest {
				t.Fatalf("fromDestination = %v, want %v", got, tt.fromDest)
			}
			out := s.destRecord(ti, in)
			if out.Topic != "dc1.orders" || out.Partition != 3 || out.Key != nil || string(out.Value) != "v" || !out.Timestamp.Equal(ts) {
				t.Fatalf("copy %+v does not keep topic mapping, partition, key, value, timestamp", out)
			}
			if !reflect.DeepEqual(out.Headers, tt.want) {
				t.Fatalf("headers = %v, want %v", out.Headers, tt.want)
			}
		})
	}
}
