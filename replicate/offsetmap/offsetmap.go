// Package offsetmap maps source offsets of mirrored records to their destination offsets.
//
// For every record the replicator copies it learns the destination offset from the produce result. Records
// copied back to back form a run: source offsets s, s+1, ... land at destination offsets d, d+1, ... A new
// run starts at every gap on either side (source compaction, transaction markers, aborted records, the
// replicator's own commit markers on the destination, a duplicate after an at-least-once restart). A
// committed source group offset O translates to the destination offset of the first copied record whose
// source offset is >= O: the exact place where a consumer that had read everything below O resumes.
//
// The package has no I/O: [Partition] is the in-memory state of one partition, [Entry] its persisted form
// (one compacted-topic record per run, keyed by the run's first source offset, so compaction keeps the
// newest, longest version of every run).
package offsetmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Errors of this package; match with errors.Is.
var (
	// ErrCorrupt reports an encoded key or value that cannot be decoded.
	ErrCorrupt = errors.New("offsetmap: corrupt entry")
	// ErrNotCopied reports a source offset at or beyond the replicator's position: the records below it
	// are not all copied yet, so no exact destination offset exists.
	ErrNotCopied = errors.New("offsetmap: source offset not copied yet")
)

// Run maps source offsets Src..Src+Len-1 to destination offsets Dst..Dst+Len-1.
type Run struct {
	Src, Dst, Len int64
}

// SrcEnd returns the source offset after the run's last record.
func (r Run) SrcEnd() int64 { return r.Src + r.Len }

// DstEnd returns the destination offset after the run's last record.
func (r Run) DstEnd() int64 { return r.Dst + r.Len }

// Partition is the offset map of one source partition. Not safe for concurrent use; its owner (one
// replicator session) serialises access.
//
// Invariant: runs are sorted by Src, do not overlap on the source side, and every Run.Len > 0;
// every run ends at or below Pos.
type Partition struct {
	runs []Run
	// Pos is the source position: every source offset below it is accounted for (copied, or known to
	// hold no data record to copy: a control record, an aborted or compacted-away record, a record that
	// came from the destination). -1 when nothing is known.
	pos int64
	// dirty holds the source starts of runs changed since the last Drain.
	dirty map[int64]struct{}
	// drainedPos is the position the last Drain reported.
	drainedPos int64
}

// New returns an empty partition map.
func New() *Partition { return &Partition{pos: -1, drainedPos: -1, dirty: map[int64]struct{}{}} }

// Pos returns the source position (see Partition), -1 when unknown.
func (p *Partition) Pos() int64 { return p.pos }

// Runs returns a copy of the runs, sorted by source offset.
func (p *Partition) Runs() []Run { return append([]Run(nil), p.runs...) }

// Advance moves the source position forward to pos; it never moves backwards.
func (p *Partition) Advance(pos int64) {
	if pos > p.pos {
		p.pos = pos
	}
}

// Add records that the source record at src was copied to dst, and advances the position past src.
// A record copied again (at-least-once after a restart) replaces the older mapping of that source
// offset and of every later one: the newest copy is the one consumers resume at.
func (p *Partition) Add(src, dst int64) {
	if n := len(p.runs); n > 0 {
		last := &p.runs[n-1]
		if src == last.SrcEnd() && dst == last.DstEnd() {
			last.Len++
			p.dirty[last.Src] = struct{}{}
			p.Advance(src + 1)
			return
		}
	}
	p.truncateFrom(src)
	p.runs = append(p.runs, Run{Src: src, Dst: dst, Len: 1})
	p.dirty[src] = struct{}{}
	p.Advance(src + 1)
}

// truncateFrom drops every mapping of source offsets >= src.
func (p *Partition) truncateFrom(src int64) {
	i := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].SrcEnd() > src })
	if i == len(p.runs) {
		return
	}
	if p.runs[i].Src < src {
		p.runs[i].Len = src - p.runs[i].Src
		p.dirty[p.runs[i].Src] = struct{}{}
		i++
	}
	for _, r := range p.runs[i:] {
		// A run that disappears is persisted with Len 0, which Load treats as a tombstone.
		p.dirty[r.Src] = struct{}{}
	}
	p.runs = p.runs[:i]
}

// Translate returns the destination offset at which a consumer resumes that has consumed every source
// record below src. It fails with ErrNotCopied when src is beyond the position (records below src are
// not all copied yet), and with found=false when nothing was copied at all.
func (p *Partition) Translate(src int64) (dst int64, err error) {
	if src > p.pos || p.pos < 0 {
		return 0, fmt.Errorf("translate %d (position %d): %w", src, p.pos, ErrNotCopied)
	}
	i := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].SrcEnd() > src })
	if i < len(p.runs) {
		r := p.runs[i]
		if src <= r.Src {
			return r.Dst, nil
		}
		return r.Dst + (src - r.Src), nil
	}
	if len(p.runs) == 0 {
		return 0, fmt.Errorf("translate %d: no record copied: %w", src, ErrNotCopied)
	}
	return p.runs[len(p.runs)-1].DstEnd(), nil
}

// Lookup returns the destination offset of the copied source record at src, if src was copied.
func (p *Partition) Lookup(src int64) (int64, bool) {
	i := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].SrcEnd() > src })
	if i < len(p.runs) && p.runs[i].Src <= src {
		return p.runs[i].Dst + (src - p.runs[i].Src), true
	}
	return 0, false
}

// Drain returns the persisted form of every run changed since the last Drain (removed runs as
// tombstones with Len 0), sorted by source offset; each is persisted with the current position. When only
// the position moved, it returns the last run (or, with no run, an empty run at the position) so that the
// position is persisted too.
func (p *Partition) Drain() []Run {
	if len(p.dirty) == 0 && p.pos != p.drainedPos {
		if n := len(p.runs); n > 0 {
			p.dirty[p.runs[n-1].Src] = struct{}{}
		} else {
			p.dirty[p.pos] = struct{}{}
		}
	}
	p.drainedPos = p.pos
	out := make([]Run, 0, len(p.dirty))
	for src := range p.dirty {
		r := Run{Src: src}
		i := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].Src >= src })
		if i < len(p.runs) && p.runs[i].Src == src {
			r = p.runs[i]
		}
		out = append(out, r)
	}
	clear(p.dirty)
	sort.Slice(out, func(i, j int) bool { return out[i].Src < out[j].Src })
	return out
}

// Load applies one persisted run (in log order): it replaces a run with the same source start, a run
// with Len 0 removes it, and pos advances the position. Runs loaded out of order are sorted in.
func (p *Partition) Load(r Run, pos int64) {
	i := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].Src >= r.Src })
	switch {
	case i < len(p.runs) && p.runs[i].Src == r.Src:
		if r.Len == 0 {
			p.runs = append(p.runs[:i], p.runs[i+1:]...)
		} else {
			p.runs[i] = r
		}
	case r.Len > 0:
		p.runs = append(p.runs, Run{})
		copy(p.runs[i+1:], p.runs[i:])
		p.runs[i] = r
	}
	p.Advance(pos)
	p.drainedPos = p.pos
}

// Key identifies a source partition in the persisted map.
type Key struct {
	Topic     string
	Partition int32
}

// Entry is one persisted record of the map: the run of Key starting at Run.Src, and the partition's
// position when it was written.
type Entry struct {
	Key
	Run Run
	Pos int64
}

const (
	version    = 1
	kindRun    = 'r'
	maxTopic   = 249 // Kafka's limit on topic names
	keyFixed   = 2 + 2 + 4 + 8
	valueBytes = 1 + 8 + 8 + 8
)

// EncodeKey returns the record key of e: version, kind, topic length (uint16), topic, partition, run
// start. Entries of the same run have the same key, so compaction keeps the newest.
func (e Entry) EncodeKey() []byte {
	b := make([]byte, 0, keyFixed+len(e.Topic))
	b = append(b, version, kindRun)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Topic)))
	b = append(b, e.Topic...)
	b = binary.BigEndian.AppendUint32(b, uint32(e.Partition))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Run.Src))
	return b
}

// EncodeValue returns the record value of e: version, destination start, length, position.
func (e Entry) EncodeValue() []byte {
	b := make([]byte, 0, valueBytes)
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Run.Dst))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Run.Len))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Pos))
	return b
}

// Decode parses a record key and value written by EncodeKey and EncodeValue. It never panics.
func Decode(key, value []byte) (Entry, error) {
	var e Entry
	if len(key) < keyFixed || key[0] != version || key[1] != kindRun {
		return e, fmt.Errorf("key of %d bytes: %w", len(key), ErrCorrupt)
	}
	n := int(binary.BigEndian.Uint16(key[2:4]))
	if n == 0 || n > maxTopic || len(key) != keyFixed+n {
		return e, fmt.Errorf("key topic length %d in %d bytes: %w", n, len(key), ErrCorrupt)
	}
	e.Topic = string(key[4 : 4+n])
	rest := key[4+n:]
	e.Partition = int32(binary.BigEndian.Uint32(rest[0:4]))
	e.Run.Src = int64(binary.BigEndian.Uint64(rest[4:12]))
	if len(value) != valueBytes || value[0] != version {
		return e, fmt.Errorf("value of %d bytes: %w", len(value), ErrCorrupt)
	}
	e.Run.Dst = int64(binary.BigEndian.Uint64(value[1:9]))
	e.Run.Len = int64(binary.BigEndian.Uint64(value[9:17]))
	e.Pos = int64(binary.BigEndian.Uint64(value[17:25]))
	if e.Partition < 0 || e.Run.Src < 0 || e.Run.Dst < 0 || e.Run.Len < 0 || e.Run.Len > 1<<62 ||
		e.Run.Src > 1<<62 || e.Run.Dst > 1<<62 || e.Pos < -1 {
		return e, fmt.Errorf("negative or huge field in %s/%d run %+v pos %d: %w", e.Topic, e.Partition, e.Run, e.Pos, ErrCorrupt)
	}
	return e, nil
}
