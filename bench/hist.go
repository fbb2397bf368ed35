package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to 10 minutes with 3 significant
// digits (relative error <= 0.1%). Larger values are clamped to the maximum, so a pathological stall is
// still counted, at the ceiling.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

// Recorder is a latency histogram safe for concurrent use: kgo runs produce promises on its own
// goroutines, and several clients may share one Recorder.
type Recorder struct {
	mu sync.Mutex // guards h
	h  *hdrhistogram.Histogram
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{h: newHistogram()}
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// recordLatency adds d to h, clamped into the trackable range (negative values, from clock steps,
// count as the minimum), so RecordValue cannot fail.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) { recordLatencies(h, d, 1) }

// recordLatencies adds d to h n times.
func recordLatencies(h *hdrhistogram.Histogram, d time.Duration, n int64) {
	us := int64(d / time.Microsecond)
	_ = h.RecordValues(min(max(us, histMinMicros), histMaxMicros), n)
}

// Record adds one latency.
func (r *Recorder) Record(d time.Duration) {
	r.mu.Lock()
	recordLatency(r.h, d)
	r.mu.Unlock()
}

// mergeHistogram adds every value of h, which the caller owns, into r.
func (r *Recorder) mergeHistogram(h *hdrhistogram.Histogram) {
	r.mu.Lock()
	r.h.Merge(h)
	r.mu.Unlock()
}

// Count returns the number of recorded latencies.
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.TotalCount()
}

// quantileLadder are the percentiles a Summary lists for plotting a latency distribution.
var quantileLadder = []float64{50, 75, 90, 95, 99, 99.5, 99.9, 99.99}

// Quantile is one point of a latency distribution.
type Quantile struct {
	Percentile float64 `json:"percentile"`
	Millis     float64 `json:"ms"`
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count  int64      `json:"count"`
	Min    float64    `json:"min_ms"`
	Mean   float64    `json:"mean_ms"`
	P50    float64    `json:"p50_ms"`
	P99    float64    `json:"p99_ms"`
	P999   float64    `json:"p99_9_ms"`
	Max    float64    `json:"max_ms"`
	Ladder []Quantile `json:"percentiles"`
}

// Summary returns the distribution recorded so far; nil if nothing was recorded.
func (r *Recorder) Summary() *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s := &Summary{
		Count: r.h.TotalCount(),
		Min:   ms(r.h.Min()),
		Mean:  r.h.Mean() / 1000,
		P50:   ms(r.h.ValueAtQuantile(50)),
		P99:   ms(r.h.ValueAtQuantile(99)),
		P999:  ms(r.h.ValueAtQuantile(99.9)),
		Max:   ms(r.h.Max()),
	}
	for _, q := range quantileLadder {
		s.Ladder = append(s.Ladder, Quantile{Percentile: q, Millis: ms(r.h.ValueAtQuantile(q))})
	}
	return s
}

// Merge adds every value of other into r.
func (r *Recorder) Merge(other *Recorder) {
	other.mu.Lock()
	snap := hdrhistogram.Import(other.h.Export())
	other.mu.Unlock()
	r.mu.Lock()
	r.h.Merge(snap)
	r.mu.Unlock()
}
