package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// epochCache is the in-memory leader-epoch lineage of a partition (KIP-101/279), mirrored to
// leader-epoch-checkpoint on every change.
// Invariant: entries are strictly increasing in epoch and non-decreasing in startOffset.
type epochCache struct {
	mu      sync.RWMutex // guards entries; writers also hold Log.mu
	entries []epochEntry
}

// assign records that epoch starts at start, following Kafka's LeaderEpochFileCache.assign: a no-op when
// the latest entry already says so; otherwise entries with epoch >= epoch or start >= start are dropped
// first so the lineage stays monotonic. It reports whether anything changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if last.epoch == epoch && last.startOffset <= start {
			return false
		}
	}
	kept := c.entries[:0:0]
	for _, e := range c.entries {
		if e.epoch < epoch && e.startOffset < start {
			kept = append(kept, e)
		}
	}
	c.entries = append(kept, epochEntry{epoch: epoch, startOffset: start})
	return true
}

// truncateFromEnd drops entries starting at or after end (the log was truncated to end).
func (c *epochCache) truncateFromEnd(end int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.entries)
	for n > 0 && c.entries[n-1].startOffset >= end {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n:n]
	return changed
}

// truncateFromStart drops entries wholly below start; the last one at or below start is kept, moved to
// start, because its epoch still covers the first remaining offsets.
func (c *epochCache) truncateFromStart(start int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.entries) && c.entries[i].startOffset <= start {
		i++
	}
	if i == 0 {
		return false
	}
	last := c.entries[i-1]
	if i == 1 && last.startOffset == start {
		return false
	}
	rest := append([]epochEntry{{epoch: last.epoch, startOffset: start}}, c.entries[i:]...)
	c.entries = rest
	return true
}

func (c *epochCache) latest() int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].epoch
}

// endOffsetFor implements OffsetForLeaderEpoch: for the latest epoch the log end offset; otherwise the
// start offset of the first epoch above the requested one, paired with the largest known epoch <= the
// requested one (or the requested one if none is known); (-1, -1) when the requested epoch is above the
// latest or undefined.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if epoch < 0 || len(c.entries) == 0 {
		return -1, -1
	}
	if c.entries[len(c.entries)-1].epoch == epoch {
		return epoch, leo
	}
	hi := -1
	for i, e := range c.entries {
		if e.epoch > epoch {
			hi = i
			break
		}
	}
	if hi < 0 {
		return -1, -1
	}
	if hi == 0 {
		return epoch, c.entries[0].startOffset
	}
	return c.entries[hi-1].epoch, c.entries[hi].startOffset
}

func (c *epochCache) snapshot() []epochEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]epochEntry(nil), c.entries...)
}

// persist writes the cache to leader-epoch-checkpoint atomically. Log.mu held.
func (c *epochCache) persist(dir string) error {
	if err := writeFileAtomic(dir, epochFile, encodeEpochs(c.snapshot())); err != nil {
		return fmt.Errorf("persist leader epochs: %w", err)
	}
	return nil
}

// loadEpochs reads leader-epoch-checkpoint; a missing file is an empty lineage. A corrupt file is
// reported, not silently dropped: the broker should not guess epochs.
func loadEpochs(dir string) ([]epochEntry, error) {
	p := filepath.Join(dir, epochFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	es, err := decodeEpochs(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	return es, nil
}
