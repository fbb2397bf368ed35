package offsetmap

import (
	"errors"
	"reflect"
	"testing"
)

// op is one step of a table test: add a copied record, or advance the position.
type op struct {
	src, dst int64
	advance  bool // advance the position to src instead of adding a record
}

func build(ops []op) *Partition {
	p := New()
	for _, o := range ops {
		if o.advance {
			p.Advance(o.src)
		} else {
			p.Add(o.src, o.dst)
		}
	}
	return p
}

func TestRuns(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want []Run
		pos  int64
	}{
		{"empty", nil, nil, -1},
		{"one run", []op{{0, 10, false}, {1, 11, false}, {2, 12, false}}, []Run{{0, 10, 3}}, 3},
		{"source gap", []op{{0, 0, false}, {1, 1, false}, {5, 2, false}, {6, 3, false}},
			[]Run{{0, 0, 2}, {5, 2, 2}}, 7},
		{"destination gap (commit marker)", []op{{0, 0, false}, {1, 2, false}, {2, 3, false}},
			[]Run{{0, 0, 1}, {1, 2, 2}}, 3},
		{"control record advances", []op{{0, 0, false}, {2, 0, true}}, []Run{{0, 0, 1}}, 2},
		{"duplicate copy replaces tail", []op{{0, 0, false}, {1, 1, false}, {2, 2, false}, {1, 3, false}, {2, 4, false}},
			[]Run{{0, 0, 1}, {1, 3, 2}}, 3},
		{"duplicate from the start", []op{{0, 0, false}, {1, 1, false}, {0, 2, false}},
			[]Run{{0, 2, 1}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(tt.ops)
			if got := p.Runs(); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("runs = %v, want %v", got, tt.want)
			}
			if p.Pos() != tt.pos {
				t.Fatalf("pos = %d, want %d", p.Pos(), tt.pos)
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	// Source 0..2 -> 100..102, source 3,4 are a transaction marker and an aborted record, source 5..6 ->
	// 104..105 (103 is the destination's own commit marker), position 9 (7, 8 compacted away).
	p := build([]op{{0, 100, false}, {1, 101, false}, {2, 102, false}, {5, 104, false}, {6, 105, false}, {9, 0, true}})
	tests := []struct {
		src  int64
		want int64
		err  error
	}{
		{0, 100, nil},
		{1, 101, nil},
		{3, 104, nil}, // consumed through the aborted record: the next record is source 5
		{4, 104, nil},
		{5, 104, nil},
		{6, 105, nil},
		{7, 106, nil},
		{9, 106, nil},
		{10, 0, ErrNotCopied},
	}
	for _, tt := range tests {
		got, err := p.Translate(tt.src)
		if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
			t.Errorf("Translate(%d) = %d, %v; want %d, %v", tt.src, got, err, tt.want, tt.err)
		}
	}
	if _, err := New().Translate(0); !errors.Is(err, ErrNotCopied) {
		t.Errorf("empty map: err %v, want ErrNotCopied", err)
	}
	if d, ok := p.Lookup(6); !ok || d != 105 {
		t.Errorf("Lookup(6) = %d, %v", d, ok)
	}
	if _, ok := p.Lookup(3); ok {
		t.Errorf("Lookup(3) found an uncopied offset")
	}
}

// TestPersistRoundTrip drains changes after every step, encodes and decodes them, and loads them into a
// second map: both must agree after every step, duplicates and truncations included.
func TestPersistRoundTrip(t *testing.T) {
	steps := [][]op{
		{{0, 0, false}, {1, 1, false}},
		{{2, 2, false}, {5, 4, false}},
		{{1, 7, false}, {2, 8, false}}, // at-least-once re-copy truncates runs and removes one
		{{3, 9, false}, {20, 0, true}},
	}
	src, dst := New(), New()
	for i, s := range steps {
		for _, o := range s {
			if o.advance {
				src.Advance(o.src)
			} else {
				src.Add(o.src, o.dst)
			}
		}
		for _, r := range src.Drain() {
			e := Entry{Key: Key{"orders", 3}, Run: r, Pos: src.Pos()}
			got, err := Decode(e.EncodeKey(), e.EncodeValue())
			if err != nil {
				t.Fatalf("step %d: decode: %v", i, err)
			}
			if got != e {
				t.Fatalf("step %d: decoded %+v, want %+v", i, got, e)
			}
			dst.Load(got.Run, got.Pos)
		}
		if !reflect.DeepEqual(src.Runs(), dst.Runs()) || src.Pos() != dst.Pos() {
			t.Fatalf("step %d: loaded %v pos %d, want %v pos %d", i, dst.Runs(), dst.Pos(), src.Runs(), src.Pos())
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Entry{Key: Key{"t", 1}, Run: Run{1, 2, 3}, Pos: 4}
	k, v := good.EncodeKey(), good.EncodeValue()
	tests := []struct {
		name       string
		key, value []byte
	}{
		{"empty", nil, nil},
		{"short key", k[:5], v},
		{"long key", append(append([]byte(nil), k...), 0), v},
		{"bad version", append([]byte{9}, k[1:]...), v},
		{"short value", k, v[:10]},
		{"bad value version", k, append([]byte{2}, v[1:]...)},
		{"negative run", k, Entry{Run: Run{0, -5, 1}}.EncodeValue()},
	}
	for _, tt := range tests {
		if _, err := Decode(tt.key, tt.value); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", tt.name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	e := Entry{Key: Key{"orders", 7}, Run: Run{10, 20, 30}, Pos: 40}
	f.Add(e.EncodeKey(), e.EncodeValue())
	f.Add([]byte{1, 'r', 0, 0}, []byte{1})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		got, err := Decode(key, value)
		if err != nil {
			return
		}
		k2, v2 := got.EncodeKey(), got.EncodeValue()
		again, err := Decode(k2, v2)
		if err != nil || again != got {
			t.Fatalf("re-encoded entry %+v decodes to %+v, %v", got, again, err)
		}
		New().Load(got.Run, got.Pos)
	})
}

func TestDrainPositionOnly(t *testing.T) {
	p := New()
	p.Advance(5) // only control records seen so far
	got := p.Drain()
	if len(got) != 1 || got[0] != (Run{Src: 5}) {
		t.Fatalf("drain = %v, want one empty run at 5", got)
	}
	if got := p.Drain(); len(got) != 0 {
		t.Fatalf("second drain = %v, want nothing", got)
	}
	p.Add(5, 0)
	p.Drain()
	p.Advance(9)
	if got := p.Drain(); len(got) != 1 || got[0] != (Run{Src: 5, Dst: 0, Len: 1}) {
		t.Fatalf("drain after advance = %v, want the last run", got)
	}
	q := New()
	q.Load(Run{Src: 5}, 5)
	q.Load(Run{Src: 5, Len: 1}, 9)
	if q.Pos() != 9 || len(q.Runs()) != 1 {
		t.Fatalf("loaded pos %d runs %v", q.Pos(), q.Runs())
	}
}

// BenchmarkAdd measures recording one copied record (the per-record cost on the copy path).
func BenchmarkAdd(b *testing.B) {
	p := New()
	for i := 0; i < b.N; i++ {
		// A gap every 1000 records keeps many runs, as a compacted source would.
		src := int64(i) + int64(i/1000)
		p.Add(src, int64(i))
		if i%5000 == 0 {
			p.Drain()
		}
	}
}

// BenchmarkTranslate measures translating a group offset in a map of 10,000 runs.
func BenchmarkTranslate(b *testing.B) {
	p := New()
	for i := 0; i < 10_000_000; i++ {
		p.Add(int64(i)+int64(i/1000), int64(i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Translate(int64(i*7919) % 10_000_000); err != nil {
			b.Fatal(err)
		}
	}
}
