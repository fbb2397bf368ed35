package broker

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/stromhq/strom/storage"
)

// parseRecordsPlain is parseRecords written the plain way, one takeVarint
// call per field: the reference FuzzParseRecords holds the in-loop decoding to.
func parseRecordsPlain(src []byte) ([]recordView, error) {
	var out []recordView
	for n := 0; len(src) > 0; n++ {
		start := src
		l, after, ok := takeVarint(src)
		if !ok || l < 0 || l > int64(len(after)) {
			return out, fmt.Errorf("%w: record %d length", errBadRecord, n)
		}
		k := len(src) - len(after)
		body := after[:l]
		src = after[l:]
		if len(body) < 1 {
			return out, fmt.Errorf("%w: record %d empty", errBadRecord, n)
		}
		r := recordView{raw: start[:k+int(l)], attributes: int8(body[0])}
		body = body[1:]
		if r.timestampDelta, body, ok = takeVarlong(body); !ok {
			return out, fmt.Errorf("%w: record %d timestamp", errBadRecord, n)
		}
		var od int64
		if od, body, ok = takeVarint(body); !ok {
			return out, fmt.Errorf("%w: record %d offset delta", errBadRecord, n)
		}
		r.offsetDelta = int32(od)
		if r.key, body, ok = takeVarBytes(body); !ok {
			return out, fmt.Errorf("%w: record %d key", errBadRecord, n)
		}
		if r.value, body, ok = takeVarBytes(body); !ok {
			return out, fmt.Errorf("%w: record %d value", errBadRecord, n)
		}
		r.headers = body
		nh, rest, ok := takeVarint(body)
		if !ok || nh < 0 {
			return out, fmt.Errorf("%w: record %d header count", errBadRecord, n)
		}
		for h := int64(0); h < nh; h++ {
			var hk []byte
			if hk, rest, ok = takeVarBytes(rest); !ok || hk == nil {
				return out, fmt.Errorf("%w: record %d header key", errBadRecord, n)
			}
			if _, rest, ok = takeVarBytes(rest); !ok {
				return out, fmt.Errorf("%w: record %d header value", errBadRecord, n)
			}
		}
		if len(rest) != 0 {
			return out, fmt.Errorf("%w: record %d has %d trailing bytes", errBadRecord, n, len(rest))
		}
		out = append(out, r)
	}
	return out, nil
}

// FuzzParseRecords holds parseRecords to parseRecordsPlain on arbitrary
// bytes: the same records (every field; reflect.DeepEqual keeps null keys
// and values apart from empty ones) and the same error.
func FuzzParseRecords(f *testing.F) {
	recs := []storage.Record{
		{OffsetDelta: 0, TimestampDelta: 5, Key: []byte("k"), Value: bytes.Repeat([]byte{'v'}, 100)},
		{OffsetDelta: 1, TimestampDelta: -70000, Value: nil,
			Headers: []storage.RecordHeader{{Key: "h", Value: []byte("x")}, {Key: "n"}}},
		{OffsetDelta: 300, Key: []byte{}, Value: bytes.Repeat([]byte{'w'}, 9000)},
	}
	batch := storage.BuildBatch(storage.BatchHeader{LastOffsetDelta: 2}, recs)
	f.Add(batch[batchHeaderSize:])
	f.Add(batch[batchHeaderSize : len(batch)-1])
	f.Add([]byte{0x00})
	f.Add([]byte{0x02, 0x00})
	f.Fuzz(func(t *testing.T, src []byte) {
		var got []recordView
		_, err := parseRecords(src, func(_ int, r recordView) error { got = append(got, r); return nil })
		want, wantErr := parseRecordsPlain(src)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("parseRecords(%x): error %v, plain: %v", src, err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("parseRecords(%x): %d records, plain: %d", src, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("parseRecords(%x): record %d = %+v, plain %+v", src, i, g, w)
			}
		}
	})
}
