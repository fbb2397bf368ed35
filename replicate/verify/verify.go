// Package verify compares a source partition with its mirrored destination partition: record count and a
// hash of key, value, headers and timestamp in offset order, and the first difference. It has no I/O;
// the replicate package reads both sides and feeds the digests in.
package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
)

// Headers the replicator adds; they are left out of digests so a copy digests like its original.
const (
	originHeader = "strom.origin"
	offsetHeader = "strom.offset"
)

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Digest is one record as verify sees it.
type Digest struct {
	Offset int64 // offset in its own partition
	// SrcOffset is the source offset a destination copy carries in its strom.offset header, -1 if none.
	SrcOffset int64
	Sum       [sha256.Size]byte
}

// Record digests a record. Nil and empty keys and values digest differently.
func Record(offset int64, key, value []byte, headers []Header, timestampMillis int64) Digest {
	h := sha256.New()
	bytesField(h, key)
	bytesField(h, value)
	d := Digest{Offset: offset, SrcOffset: -1}
	var n [8]byte
	for _, hd := range headers {
		switch hd.Key {
		case originHeader:
			continue
		case offsetHeader:
			if len(hd.Value) == 8 {
				d.SrcOffset = int64(binary.BigEndian.Uint64(hd.Value))
			}
			continue
		}
		bytesField(h, []byte(hd.Key))
		bytesField(h, hd.Value)
	}
	binary.BigEndian.PutUint64(n[:], uint64(timestampMillis))
	h.Write(n[:])
	h.Sum(d.Sum[:0])
	return d
}

// bytesField writes a length-prefixed field (-1 for nil), so field boundaries are unambiguous.
func bytesField(h hash.Hash, b []byte) {
	var n [4]byte
	l := int32(len(b))
	if b == nil {
		l = -1
	}
	binary.BigEndian.PutUint32(n[:], uint32(l))
	h.Write(n[:])
	h.Write(b)
}

// Diff is the first difference between two partitions. An offset of -1 means that side ran out.
type Diff struct {
	SrcOffset, DstOffset int64
	Reason               string
}

func (d Diff) String() string {
	return fmt.Sprintf("source offset %d, destination offset %d: %s", d.SrcOffset, d.DstOffset, d.Reason)
}

// Result is the outcome of comparing one partition.
type Result struct {
	SrcCount, DstCount int
	// Duplicates counts destination records skipped as repeats of earlier source records (only with
	// allowDuplicates).
	Duplicates int
	// SrcHash and DstHash hash the ordered digests (duplicates left out), equal when the copy is exact.
	SrcHash, DstHash [sha256.Size]byte
	// First is the first difference, nil when the partitions match.
	First *Diff
}

// Compare compares source and destination digests in offset order. With allowDuplicates, a destination
// record whose strom.offset names a source offset at or below the last matched one is a duplicate of an
// at-least-once copy and is skipped (and counted); without it, every destination record must match.
func Compare(src, dst []Digest, allowDuplicates bool) Result {
	res := Result{SrcCount: len(src)}
	hs, hd := sha256.New(), sha256.New()
	i, j := 0, 0
	lastMatched := int64(-1)
	for i < len(src) || j < len(dst) {
		if j < len(dst) && allowDuplicates && i > 0 && dst[j].SrcOffset >= 0 && dst[j].SrcOffset <= lastMatched {
			res.Duplicates++
			j++
			continue
		}
		switch {
		case i == len(src):
			res.diff(-1, dst[j].Offset, "destination has more records")
		case j == len(dst):
			res.diff(src[i].Offset, -1, "destination has fewer records")
		case src[i].Sum != dst[j].Sum:
			res.diff(src[i].Offset, dst[j].Offset, "records differ (key, value, headers or timestamp)")
		case dst[j].SrcOffset >= 0 && dst[j].SrcOffset != src[i].Offset:
			res.diff(src[i].Offset, dst[j].Offset, fmt.Sprintf("destination record was copied from source offset %d", dst[j].SrcOffset))
		}
		if res.First != nil {
			break
		}
		hs.Write(src[i].Sum[:])
		hd.Write(dst[j].Sum[:])
		lastMatched = src[i].Offset
		i++
		j++
	}
	res.DstCount = len(dst) - res.Duplicates
	if res.First == nil {
		hs.Sum(res.SrcHash[:0])
		hd.Sum(res.DstHash[:0])
	}
	return res
}

func (r *Result) diff(src, dst int64, reason string) {
	r.First = &Diff{SrcOffset: src, DstOffset: dst, Reason: reason}
}
