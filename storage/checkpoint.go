package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Files in a partition directory besides the segments.
const (
	checkpointFile  = "strom-checkpoint"        // log start offset, high watermark, recovery point
	cleanMarkerFile = ".strom-clean-shutdown"   // present only between a clean Close and the next write
	epochFile       = "leader-epoch-checkpoint" // Kafka's text format
	tmpSuffix       = ".tmp"
)

// checkpoint is the persisted position state of a Log.
// Invariant (on disk): logStart <= recoveryPoint and every byte below recoveryPoint was fsynced
// before the checkpoint naming it was written.
type checkpoint struct {
	logStart      int64
	highWatermark int64
	recoveryPoint int64
}

// writeFileAtomic replaces name in dir with data: write a temp file, fsync it, rename over, fsync the
// directory. A crash leaves either the old or the new file, never a mix.
func writeFileAtomic(dir, name string, data []byte) error {
	p := filepath.Join(dir, name)
	tmp := p + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename %s: %w", p, err)
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that creations, renames and removals in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func encodeCheckpoint(c checkpoint) []byte {
	return fmt.Appendf(nil, "version 1\nlog-start-offset %d\nhigh-watermark %d\nrecovery-point %d\n",
		c.logStart, c.highWatermark, c.recoveryPoint)
}

// readCheckpoint parses the checkpoint file; ok is false when it does not exist.
func readCheckpoint(dir string) (checkpoint, bool, error) {
	p := filepath.Join(dir, checkpointFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("read %s: %w", p, err)
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return c, false, fmt.Errorf("parse %s: %w", p, err)
	}
	return c, true, nil
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	c := checkpoint{}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return c, fmt.Errorf("%w: line %q", ErrCorrupt, sc.Text())
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("%w: line %q", ErrCorrupt, sc.Text())
		}
		switch k {
		case "version":
			if n != 1 {
				return c, fmt.Errorf("%w: version %d", ErrCorrupt, n)
			}
		case "log-start-offset":
			c.logStart = n
			seen++
		case "high-watermark":
			c.highWatermark = n
			seen++
		case "recovery-point":
			c.recoveryPoint = n
			seen++
		}
	}
	if seen != 3 || c.logStart < 0 || c.recoveryPoint < 0 {
		return c, fmt.Errorf("%w: incomplete checkpoint", ErrCorrupt)
	}
	return c, nil
}

// epochEntry says that leader epoch epoch started at startOffset.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// encodeEpochs writes Kafka's leader-epoch-checkpoint format: version 0, count, "epoch offset" lines.
func encodeEpochs(es []epochEntry) []byte {
	b := fmt.Appendf(nil, "0\n%d\n", len(es))
	for _, e := range es {
		b = fmt.Appendf(b, "%d %d\n", e.epoch, e.startOffset)
	}
	return b
}

// decodeEpochs parses Kafka's leader-epoch-checkpoint format, requiring increasing epochs and offsets.
func decodeEpochs(b []byte) ([]epochEntry, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "0" {
		return nil, fmt.Errorf("%w: bad epoch checkpoint header", ErrCorrupt)
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: bad epoch checkpoint count", ErrCorrupt)
	}
	es := make([]epochEntry, 0, n)
	for _, ln := range lines[2:] {
		f := strings.Fields(ln)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: epoch line %q", ErrCorrupt, ln)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("%w: epoch line %q", ErrCorrupt, ln)
		}
		if k := len(es); k > 0 && (int32(e) <= es[k-1].epoch || o < es[k-1].startOffset) {
			return nil, fmt.Errorf("%w: epoch line %q not increasing", ErrCorrupt, ln)
		}
		es = append(es, epochEntry{epoch: int32(e), startOffset: o})
	}
	return es, nil
}
