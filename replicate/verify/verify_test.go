package verify

import "testing"

func rec(off int64, v string, srcOff int64) Digest {
	var hs []Header
	if srcOff >= 0 {
		hs = append(hs, Header{offsetHeader, []byte{0, 0, 0, 0, 0, 0, 0, byte(srcOff)}}, Header{originHeader, []byte("src")})
	}
	return Record(off, []byte("k"), []byte(v), hs, 1000)
}

func TestRecordDigest(t *testing.T) {
	base := Record(0, []byte("k"), []byte("v"), []Header{{"h", []byte("1")}}, 5)
	tests := []struct {
		name string
		d    Digest
		same bool
	}{
		{"same", Record(9, []byte("k"), []byte("v"), []Header{{"h", []byte("1")}}, 5), true},
		{"replicator headers ignored", Record(9, []byte("k"), []byte("v"),
			[]Header{{"h", []byte("1")}, {originHeader, []byte("x")}, {offsetHeader, make([]byte, 8)}}, 5), true},
		{"nil key", Record(0, nil, []byte("v"), []Header{{"h", []byte("1")}}, 5), false},
		{"empty value", Record(0, []byte("k"), []byte{}, []Header{{"h", []byte("1")}}, 5), false},
		{"header value", Record(0, []byte("k"), []byte("v"), []Header{{"h", []byte("2")}}, 5), false},
		{"no header", Record(0, []byte("k"), []byte("v"), nil, 5), false},
		{"field boundary", Record(0, []byte("kv"), []byte(""), []Header{{"h", []byte("1")}}, 5), false},
		{"timestamp", Record(0, []byte("k"), []byte("v"), []Header{{"h", []byte("1")}}, 6), false},
	}
	for _, tt := range tests {
		if (tt.d.Sum == base.Sum) != tt.same {
			t.Errorf("%s: equal=%v, want %v", tt.name, tt.d.Sum == base.Sum, tt.same)
		}
	}
}

func TestCompare(t *testing.T) {
	src := []Digest{rec(0, "a", -1), rec(1, "b", -1), rec(3, "c", -1)} // offset 2 compacted away
	tests := []struct {
		name    string
		dst     []Digest
		allow   bool
		diff    *Diff
		dupes   int
		dstSize int
	}{
		{"exact", []Digest{rec(10, "a", 0), rec(11, "b", 1), rec(12, "c", 3)}, false, nil, 0, 3},
		{"missing last", []Digest{rec(10, "a", 0), rec(11, "b", 1)}, false, &Diff{3, -1, "destination has fewer records"}, 0, 2},
		{"extra", []Digest{rec(10, "a", 0), rec(11, "b", 1), rec(12, "c", 3), rec(13, "d", 4)}, false,
			&Diff{-1, 13, "destination has more records"}, 0, 4},
		{"changed value", []Digest{rec(10, "a", 0), rec(11, "x", 1), rec(12, "c", 3)}, false,
			&Diff{1, 11, "records differ (key, value, headers or timestamp)"}, 0, 3},
		{"duplicate rejected", []Digest{rec(10, "a", 0), rec(11, "b", 1), rec(12, "b", 1), rec(13, "c", 3)}, false,
			&Diff{3, 12, "records differ (key, value, headers or timestamp)"}, 0, 4},
		{"duplicate allowed", []Digest{rec(10, "a", 0), rec(11, "b", 1), rec(12, "a", 0), rec(13, "b", 1), rec(14, "c", 3)}, true,
			nil, 2, 3},
		{"loss not hidden by allow", []Digest{rec(10, "a", 0), rec(11, "a", 0), rec(12, "c", 3)}, true,
			&Diff{1, 12, "records differ (key, value, headers or timestamp)"}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Compare(src, tt.dst, tt.allow)
			switch {
			case tt.diff == nil && res.First != nil:
				t.Fatalf("unexpected diff %v", res.First)
			case tt.diff != nil && (res.First == nil || *res.First != *tt.diff):
				t.Fatalf("diff = %v, want %v", res.First, tt.diff)
			}
			if res.Duplicates != tt.dupes || res.DstCount != tt.dstSize {
				t.Fatalf("duplicates %d dst %d, want %d %d", res.Duplicates, res.DstCount, tt.dupes, tt.dstSize)
			}
			if tt.diff == nil && res.SrcHash != res.DstHash {
				t.Fatalf("hashes differ on a match")
			}
		})
	}
}
