package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyDir copies a partition directory (flat) for a destructive experiment.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// verifyAllBatches reads the whole log and checks every batch's CRC; it returns the batches.
func verifyAllBatches(t *testing.T, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	raw := readAll(t, l, l.LogStartOffset())
	if err := SplitBatches(raw, func(h BatchHeader, b []byte) bool {
		if err := VerifyCRC(b); err != nil {
			t.Fatalf("recovered log returns a corrupt batch at %d: %v", h.BaseOffset, err)
		}
		out = append(out, b)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// buildCrashLog writes n batches with a small segment size and crashes, returning the batches.
func buildCrashLog(t *testing.T, dir string, n int) [][]byte {
	l := mustOpen(t, dir, smallConfig())
	bs := fill(t, l, n, func(i int) batchSpec {
		return batchSpec{base: int64(3 * i), n: 3, ts: int64(i), valSize: 20 + i%7}
	})
	crash(l)
	return bs
}

func lastSegmentPath(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(m) == 0 {
		t.Fatal("no segments")
	}
	return m[len(m)-1]
}

// TestCrashCutEveryByte cuts the last segment at every byte position within its last two batches
// and checks that recovery keeps exactly the complete batches before the cut.
func TestCrashCutEveryByte(t *testing.T) {
	src := t.TempDir()
	bs := buildCrashLog(t, src, 30)
	seg := lastSegmentPath(t, src)
	st, _ := os.Stat(seg)
	size := st.Size()
	tail := int64(len(bs[28]) + len(bs[29]))
	work := t.TempDir()
	for cut := size - tail; cut <= size; cut++ {
		dir := filepath.Join(work, strconv.FormatInt(cut, 10))
		copyDir(t, src, dir)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(seg)), cut); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, dir, smallConfig())
		got := verifyAllBatches(t, l)
		// Complete batches: everything whose end lies at or before the cut.
		keep := 28
		end := size - tail
		for i := 28; i < 30 && end+int64(len(bs[i])) <= cut; i++ {
			end += int64(len(bs[i]))
			keep = i + 1
		}
		if len(got) != keep || !bytes.Equal(bytes.Join(got, nil), bytes.Join(bs[:keep], nil)) {
			t.Fatalf("cut %d: recovered %d batches, want %d", cut, len(got), keep)
		}
		if l.EndOffset() != int64(3*keep) {
			t.Fatalf("cut %d: leo %d", cut, l.EndOffset())
		}
		// The recovered log accepts appends at its end.
		mustAppend(t, l, buildTestBatch(batchSpec{base: l.EndOffset(), n: 1}))
		l.Close()
		_ = os.RemoveAll(dir)
	}
}

// TestCrashBitFlips flips single bits in the bytes of the last batches that the CRC or the frame
// checks cover (the base offset and leader epoch lie outside the CRC by Kafka's design) and checks
// that recovery drops the damaged batch and everything after it, and never returns a corrupt batch.
func TestCrashBitFlips(t *testing.T) {
	src := t.TempDir()
	bs := buildCrashLog(t, src, 30)
	seg := lastSegmentPath(t, src)
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	start := len(orig) - len(bs[28]) - len(bs[29])
	rng := rand.New(rand.NewPCG(1, 2))
	work := t.TempDir()
	for trial := 0; trial < 150; trial++ {
		pos := start + rng.IntN(len(orig)-start)
		batchIdx, rel := 28, pos-start
		if rel >= len(bs[28]) {
			batchIdx, rel = 29, rel-len(bs[28])
		}
		if rel < offLength || (rel >= offLeaderEpoch && rel < offMagic) {
			continue // base offset / leader epoch: not covered by any check
		}
		dir := filepath.Join(work, strconv.Itoa(trial))
		copyDir(t, src, dir)
		b := bytes.Clone(orig)
		b[pos] ^= 1 << rng.IntN(8)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, dir, smallConfig())
		got := verifyAllBatches(t, l)
		if len(got) != batchIdx || !bytes.Equal(bytes.Join(got, nil), bytes.Join(bs[:batchIdx], nil)) {
			t.Fatalf("flip at %d (batch %d byte %d): recovered %d batches", pos, batchIdx, rel, len(got))
		}
		l.Close()
		_ = os.RemoveAll(dir)
	}
}

// TestCorruptMiddleSegment damages a segment below the recovery point: Open does not scan it, reads of
// it report the file and position, and the rest of the log stays readable.
func TestCorruptMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, smallConfig())
	fill(t, l, 40, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(segs) < 3 {
		t.Fatalf("need 3 segments, have %d", len(segs))
	}
	victim := segs[1]
	b, _ := os.ReadFile(victim)
	b[offMagic] = 9 // first batch of the segment
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	base, _ := parseSegmentName(filepath.Base(victim), logSuffix)
	l = mustOpen(t, dir, smallConfig())
	defer l.Close()
	_, err := l.Read(base, 100, l.EndOffset())
	var ce *CorruptError
	if !errorsAs(err, &ce) || ce.File != victim || ce.Position != 0 {
		t.Fatalf("read of corrupt segment: %v", err)
	}
	for _, off := range []int64{0, l.EndOffset() - 1} {
		if sl, err := l.Read(off, 100, l.EndOffset()); err != nil || sl.Len() == 0 {
			t.Fatalf("read %d: %v", off, err)
		} else {
			sl.Release()
		}
	}
}

const crashChildEnv = "STROM_STORAGE_CRASH_CHILD_DIR"

// crashBatch is the deterministic batch number i written by the crash child.
func crashBatch(i int) []byte {
	return buildTestBatch(batchSpec{base: int64(4 * i), n: 4, ts: int64(i), valSize: 100 + (i*37)%900})
}

// TestCrashChildProcess is the child half of TestCrashKill9: it appends with fsync always and prints
// every acknowledged (synced) last offset. It does nothing unless started by the parent.
func TestCrashChildProcess(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return
	}
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 10
	l, err := Open(dir, cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(20 * time.Second)
	for i := int(l.EndOffset() / 4); i < 200000 && time.Now().Before(deadline); i++ {
		info, err := l.Append(crashBatch(i))
		if err == nil {
			err = l.Sync(t.Context(), info.LastOffset)
		}
		if err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			os.Exit(2)
		}
		fmt.Fprintln(w, "ack", info.LastOffset)
		w.Flush()
	}
	os.Exit(0)
}

// TestCrashKill9 runs a writer process, kills it with SIGKILL mid-append, and checks that the reopened
// log holds every acknowledged batch, intact and in order, and no corrupt one. It repeats on the same
// directory so recovery also runs over a previously recovered log.
func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	maxAcked := int64(-1)
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		killAfter := 200 + round*150
		n := 0
		killed := false
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "ack "); ok {
				off, _ := strconv.ParseInt(v, 10, 64)
				maxAcked = max(maxAcked, off)
				n++
				if n == killAfter && !killed {
					if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			} else if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("child finished before the kill (%d acks)", n)
		}
		l := mustOpen(t, dir, DefaultConfig())
		got := verifyAllBatches(t, l)
		if l.EndOffset() <= maxAcked {
			t.Fatalf("round %d: acknowledged offset %d lost (leo %d)", round, maxAcked, l.EndOffset())
		}
		for i, b := range got {
			if !bytes.Equal(b, crashBatch(i)) {
				t.Fatalf("round %d: batch %d differs", round, i)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %d acks, max acked %d, recovered leo %d", round, n, maxAcked, l.EndOffset())
	}
}
