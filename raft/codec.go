package raft

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
)

// encoder appends the compact binary form used by commands and snapshots:
// integers as (zig-zag) varints, strings and byte strings length-prefixed by
// an unsigned varint, maps with sorted keys so the encoding is deterministic.
type encoder struct {
	b []byte
}

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) i32(v int32)      { e.varint(int64(v)) }
func (e *encoder) id(v [16]byte)    { e.b = append(e.b, v[:]...) }

// f64 writes the IEEE 754 bits, 8 bytes big-endian, so every value
// (quota rates are doubles in Kafka) round-trips exactly.
func (e *encoder) f64(v float64) { e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v)) }

func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bytes(v []byte) {
	e.uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}

func (e *encoder) i32s(v []int32) {
	e.uvarint(uint64(len(v)))
	for _, x := range v {
		e.i32(x)
	}
}

func (e *encoder) strs(v []string) {
	e.uvarint(uint64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}

func (e *encoder) strMap(m map[string]string) { encodeSortedMap(e, m, strValues) }

// decoder reads what encoder wrote. The first error sticks: later reads
// return zero values, so decode functions read straight through and check
// d.err once. Every length is checked against the bytes that remain before
// anything is allocated, so corrupt input cannot cause a huge allocation.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrCorruptCommand, what, d.off)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) u8() uint8 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 1 {
		d.fail("truncated byte")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) boolean() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad bool")
		return false
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) i32() int32 {
	v := d.varint()
	if int64(int32(v)) != v {
		d.fail("int32 out of range")
		return 0
	}
	return int32(v)
}

func (d *decoder) f64() float64 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 8 {
		d.fail("truncated float64")
		return 0
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
	d.off += 8
	return v
}

func (d *decoder) id() [16]byte {
	var v [16]byte
	if d.err != nil {
		return v
	}
	if d.remaining() < 16 {
		d.fail("truncated id")
		return v
	}
	copy(v[:], d.b[d.off:])
	d.off += 16
	return v
}

// count reads a collection length; each element takes at least minSize
// bytes, which bounds the count by the remaining input.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(d.remaining()/minSize) {
		d.fail("length exceeds input")
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s
}

// bytes returns a copy (nil when empty): decoded values outlive the input.
func (d *decoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return nil
	}
	v := append([]byte(nil), d.b[d.off:d.off+n]...)
	d.off += n
	return v
}

func (d *decoder) i32s() []int32 {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]int32, n)
	for i := range v {
		v[i] = d.i32()
	}
	return v
}

func (d *decoder) strs() []string {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str()
	}
	return v
}

func (d *decoder) strMap() map[string]string { return decodeSortedMap(d, strValues) }

// done reports an error when bytes are left over: every encoding is exact.
func (d *decoder) done() error {
	if d.err == nil && d.remaining() != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// valueCodec writes and reads the values of a sorted map. minSize is the
// fewest bytes one encoded value takes; with the key's length byte it
// bounds the entry count by the remaining input before anything is
// allocated.
type valueCodec[V any] struct {
	enc     func(*encoder, V)
	dec     func(*decoder) V
	minSize int
}

// The value codecs of the maps in commands and snapshots: config strings
// and quota rates.
var (
	strValues = valueCodec[string]{enc: (*encoder).str, dec: (*decoder).str, minSize: 1}
	f64Values = valueCodec[float64]{enc: (*encoder).f64, dec: (*decoder).f64, minSize: 8}
)

// encodeSortedMap writes the entry count, then each key and its value in
// increasing key order, so equal maps encode to equal bytes.
func encodeSortedMap[V any](e *encoder, m map[string]V, vc valueCodec[V]) {
	keys := slices.Sorted(maps.Keys(m))
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		vc.enc(e, m[k])
	}
}

// decodeSortedMap reads what encodeSortedMap wrote. It returns nil for an
// empty map; keys must be strictly increasing, which also rejects
// duplicates, so only the encoder's own output decodes.
func decodeSortedMap[V any](d *decoder, vc valueCodec[V]) map[string]V {
	n := d.count(1 + vc.minSize)
	if d.err != nil || n == 0 {
		return nil
	}
	m := make(map[string]V, n)
	prev := ""
	for i := range n {
		k := d.str()
		v := vc.dec(d)
		if d.err != nil {
			return nil
		}
		if i > 0 && k <= prev {
			d.fail("map keys not sorted")
			return nil
		}
		prev = k
		m[k] = v
	}
	return m
}
