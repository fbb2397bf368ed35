package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stromhq/strom/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The lean consumer (--client lean in consume mode) is the lean producer's counterpart: it measures what a
// cluster can serve rather than what a client can decode. franz-go builds a Record for every record it
// reads, which on a machine whose cores the client and the broker share decides the rate for both brokers
// alike. The lean consumer does what a consumer must and nothing per record that allocates: one Fetch in
// flight per connection (as franz-go keeps per broker), with franz-go's default byte limits, into a
// reused buffer; every batch's CRC-32C is checked; the records' key and value lengths are summed from
// their varints; the next offset comes from the last complete batch.
const (
	// leanFetchVersion is the newest Fetch version that names topics (v13 carries topic ids).
	leanFetchVersion = 12
	// leanFetchMaxBytes and leanFetchPartitionBytes are franz-go's FetchMaxBytes and
	// FetchMaxPartitionBytes defaults (and the Java consumer's fetch.max.bytes and
	// max.partition.fetch.bytes).
	leanFetchMaxBytes       = 50 << 20
	leanFetchPartitionBytes = 1 << 20
	// leanFetchWait is the longest a broker holds a fetch that found nothing (franz-go's FetchMaxWait).
	leanFetchWait = 5 * time.Second
)

// errBadBatch reports a fetched record batch the lean consumer cannot account for.
var errBadBatch = errors.New("bad record batch")

// consumeLean runs cfg.Consumers lean consumers over the topic's partitions, split round-robin as for
// franz-go, each with one connection per leader of its partitions, until target says stop or ctx ends.
func (r *runner) consumeLean(ctx context.Context, target *consumeTarget) error {
	leaders, addrs, err := r.leaders(ctx)
	if err != nil {
		return err
	}
	leaderOf := map[int32]int32{}
	for l, parts := range leaders {
		for _, p := range parts {
			leaderOf[p] = l
		}
	}
	n := min(r.cfg.Consumers, len(r.partitions))
	// assign[consumer][leader] lists the partitions that consumer reads from that leader.
	assign := make([]map[int32][]int32, n)
	for i, p := range r.partitions {
		if target.upTo != nil && target.from[p] >= target.upTo[p] {
			continue
		}
		if assign[i%n] == nil {
			assign[i%n] = map[int32][]int32{}
		}
		assign[i%n][leaderOf[p]] = append(assign[i%n][leaderOf[p]], p)
	}
	var conns []*leanConn
	defer func() {
		for _, c := range conns {
			_ = c.nc.Close()
		}
	}()
	for _, byLeader := range assign {
		for leader, parts := range byLeader {
			c, versions, err := r.dialLean(ctx, "lean consumer", leader, addrs[leader])
			if err != nil {
				return err
			}
			conns = append(conns, c)
			v, ok := versions[1]
			if !ok || v < 4 {
				return fmt.Errorf("lean consumer: broker %d at %s does not take Fetch v4 or later (v2 record batches)", leader, addrs[leader])
			}
			c.version, c.parts = min(v, leanFetchVersion), parts
		}
	}
	// A fetch blocked in a read ends when the run does.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.nc.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.fetchLoop(ctx, c, target); err != nil && ctx.Err() == nil {
				errs[i] = err
				target.stop() // the run's figure would be wrong without this connection's share
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fetchLoop reads c's partitions from target.from until each reached target.upTo (or without an end,
// until ctx ends), one fetch at a time.
func (r *runner) fetchLoop(ctx context.Context, c *leanConn, target *consumeTarget) error {
	next := make(map[int32]int64, len(c.parts))
	for _, p := range c.parts {
		next[p] = target.from[p]
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = c.version
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(leanFetchWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = leanFetchMaxBytes
	req.SessionEpoch = -1 // no fetch session: every request lists its partitions
	var frame []byte
	for len(next) > 0 && ctx.Err() == nil {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = r.cfg.Topic
		for _, p := range c.parts {
			off, ok := next[p]
			if !ok {
				continue
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset = p, off
			rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
			rp.PartitionMaxBytes = leanFetchPartitionBytes
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		c.corr++
		frame = c.fmt.AppendRequest(frame[:0], req, c.corr)
		if _, err := c.nc.Write(frame); err != nil {
			return fmt.Errorf("lean consumer: write fetch: %w", err)
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(leanFetchWait + leanTimeout))
		if ctx.Err() != nil {
			return nil // the run ended after the check above: its deadline may have been overwritten
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = c.version
		if err := c.readInto(c.corr, resp); err != nil {
			return fmt.Errorf("lean consumer: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("lean consumer: fetch: %w", err)
		}
		var records, bytes int64
		for _, t := range resp.Topics {
			for _, fp := range t.Partitions {
				from, ok := next[fp.Partition]
				if !ok {
					continue
				}
				if err := kerr.ErrorForCode(fp.ErrorCode); err != nil {
					return fmt.Errorf("lean consumer: fetch %s/%d at %d: %w", t.Topic, fp.Partition, from, err)
				}
				w, err := walkBatches(fp.RecordBatches, from)
				if err != nil {
					return fmt.Errorf("lean consumer: fetch %s/%d at %d: %w", t.Topic, fp.Partition, from, err)
				}
				records, bytes = records+w.records, bytes+w.bytes
				next[fp.Partition] = w.next
				if target.upTo != nil && w.next >= target.upTo[fp.Partition] {
					delete(next, fp.Partition)
				}
			}
		}
		if records > 0 {
			r.c.consumedBytes.Add(bytes)
			if total := r.c.consumed.Add(records); target.want.Load() > 0 && total >= target.want.Load() {
				target.stop()
			}
		}
	}
	return nil
}

// walked is what walkBatches found in one partition's records.
type walked struct {
	records int64 // data records at or after the fetch offset
	bytes   int64 // their key and value bytes
	next    int64 // offset after the last complete batch (the fetch offset when there was none)
}

// walkBatches accounts for the complete v2 batches in b, the records of one partition fetched at offset
// from. A broker may end the data with a cut batch, which is left for the next fetch; records before from
// (a batch that began earlier) and control batches are passed over.
func walkBatches(b []byte, from int64) (walked, error) {
	w := walked{next: from}
	for len(b) >= storage.BatchHeaderSize {
		h, err := storage.ParseBatchHeader(b)
		if err != nil {
			if h.Magic != 2 {
				return w, fmt.Errorf("%w: %w (the lean consumer reads v2 batches only)", errBadBatch, err)
			}
			return w, fmt.Errorf("%w: %w", errBadBatch, err)
		}
		if h.Size() > len(b) {
			break // cut at the fetch's byte limit
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		if err := storage.VerifyCRC(batch); err != nil {
			return w, fmt.Errorf("%w: CRC-32C of the batch at offset %d: %w", errBadBatch, h.BaseOffset, err)
		}
		if h.LastOffset() < from {
			continue
		}
		w.next = h.LastOffset() + 1
		if h.IsControl() {
			continue // transaction marker
		}
		if codec := h.Compression(); codec != storage.CompressionNone {
			return w, fmt.Errorf("%w: compression codec %d at offset %d (the lean consumer reads uncompressed batches only)", errBadBatch, codec, h.BaseOffset)
		}
		n, bytes, err := walkRecords(batch[storage.BatchHeaderSize:], int(h.NumRecords), h.BaseOffset, from)
		if err != nil {
			return w, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		w.records += n
		w.bytes += bytes
	}
	return w, nil
}

// walkRecords sums the records of one uncompressed batch at offsets from and later, and their key and
// value bytes, from each record's varints. At 20M records/s the walk is a fifth of the lean consumer's
// CPU. No varint decoder small enough to inline exists, so the one- and two-byte forms that nearly every
// record field takes are decoded in the loop itself, by the same three-way step for each field; longer,
// cut or bad varints go to varintLong.
func walkRecords(b []byte, count int, base, from int64) (n, bytes int64, err error) {
	var i int
	bad := func(what string) (int64, int64, error) {
		return n, bytes, fmt.Errorf("%w: record %d of %d: %s", errBadBatch, i, count, what)
	}
	p := 0 // read position in b
	for ; i < count; i++ {
		var length, delta, key, value int64
		if p+1 < len(b) && b[p] < 0x80 {
			length, p = zigzag(uint64(b[p])), p+1
		} else if p+1 < len(b) && b[p+1] < 0x80 {
			length, p = zigzag(uint64(b[p]&0x7f)|uint64(b[p+1])<<7), p+2
		} else if length, p = varintLong(b, p); p < 0 {
			return bad("length")
		}
		if length < 1 || int64(len(b)-p) < length {
			if length == 0 {
				return bad("empty")
			}
			return bad("length")
		}
		rec := b[:p+int(length)]
		p++ // attributes
		if p+1 < len(rec) && rec[p] < 0x80 {
			p++ // timestamp delta
		} else if p+1 < len(rec) && rec[p+1] < 0x80 {
			p += 2
		} else if _, p = varintLong(rec, p); p < 0 {
			return bad("timestamp delta")
		}
		if p+1 < len(rec) && rec[p] < 0x80 {
			delta, p = zigzag(uint64(rec[p])), p+1
		} else if p+1 < len(rec) && rec[p+1] < 0x80 {
			delta, p = zigzag(uint64(rec[p]&0x7f)|uint64(rec[p+1])<<7), p+2
		} else if delta, p = varintLong(rec, p); p < 0 {
			return bad("offset delta")
		}
		if p+1 < len(rec) && rec[p] < 0x80 {
			key, p = zigzag(uint64(rec[p])), p+1
		} else if p+1 < len(rec) && rec[p+1] < 0x80 {
			key, p = zigzag(uint64(rec[p]&0x7f)|uint64(rec[p+1])<<7), p+2
		} else if key, p = varintLong(rec, p); p < 0 {
			return bad("key")
		}
		if key < -1 || int64(len(rec)-p) < key {
			return bad("key")
		}
		p += int(max(key, 0))
		if p+1 < len(rec) && rec[p] < 0x80 {
			value, p = zigzag(uint64(rec[p])), p+1
		} else if p+1 < len(rec) && rec[p+1] < 0x80 {
			value, p = zigzag(uint64(rec[p]&0x7f)|uint64(rec[p+1])<<7), p+2
		} else if value, p = varintLong(rec, p); p < 0 {
			return bad("value")
		}
		if value < -1 || int64(len(rec)-p) < value {
			return bad("value")
		}
		if base+delta >= from {
			n++
			bytes += max(key, 0) + max(value, 0)
		}
		p = len(rec)
	}
	return n, bytes, nil
}

// zigzag turns a varint's unsigned form into the signed value it encodes.
func zigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// varintLong decodes the zigzag varint at b[i:] when it is longer than two bytes (or cut, or bad, or
// ends b) and returns it with the index after it, or -1 for that index when b holds no complete varint
// there.
func varintLong(b []byte, i int) (int64, int) {
	if i >= len(b) {
		return 0, -1
	}
	v, k := storage.Varint(b[i:])
	if k <= 0 {
		return 0, -1
	}
	return v, i + k
}
