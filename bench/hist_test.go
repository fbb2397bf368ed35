package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// within reports whether got is within the histogram's relative precision (0.1%, plus one bucket of
// slack) of want.
func within(got, want float64) bool { return math.Abs(got-want) <= want*0.002+0.001 }

func TestRecorderPercentiles(t *testing.T) {
	tests := []struct {
		name                      string
		values                    []time.Duration
		p50, p99, p999, max, mean float64 // ms
	}{
		{
			name:   "uniform 1..1000ms",
			values: seq(1000, func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }),
			p50:    500, p99: 990, p999: 999, max: 1000, mean: 500.5,
		},
		{
			// 99% fast, 1% one slow outlier class: p99 is still fast, p99.9 sees the outliers.
			name: "bimodal",
			values: seq(10000, func(i int) time.Duration {
				if i%100 == 0 {
					return 200 * time.Millisecond
				}
				return 2 * time.Millisecond
			}),
			p50: 2, p99: 2, p999: 200, max: 200, mean: 0.99*2 + 0.01*200,
		},
		{
			name:   "clamped below and above",
			values: []time.Duration{-time.Second, 0, time.Hour},
			p50:    0.001, p99: 600000, p999: 600000, max: 600000, mean: (0.001*2 + 600000) / 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder()
			for _, v := range tt.values {
				r.Record(v)
			}
			s := r.Summary()
			if s == nil || s.Count != int64(len(tt.values)) {
				t.Fatalf("summary %+v, want %d samples", s, len(tt.values))
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"p50", s.P50, tt.p50}, {"p99", s.P99, tt.p99}, {"p99.9", s.P999, tt.p999}, {"max", s.Max, tt.max}, {"mean", s.Mean, tt.mean}} {
				if !within(c.got, c.want) {
					t.Errorf("%s = %vms, want %vms", c.name, c.got, c.want)
				}
			}
			if len(s.Ladder) != len(quantileLadder) {
				t.Fatalf("ladder has %d points, want %d", len(s.Ladder), len(quantileLadder))
			}
			for i := 1; i < len(s.Ladder); i++ {
				if s.Ladder[i].Millis < s.Ladder[i-1].Millis || s.Ladder[i].Percentile <= s.Ladder[i-1].Percentile {
					t.Errorf("ladder not monotonic at %d: %+v", i, s.Ladder)
				}
			}
		})
	}
}

func seq(n int, f func(int) time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestRecorderEmptyAndMerge(t *testing.T) {
	r := NewRecorder()
	if s := r.Summary(); s != nil {
		t.Fatalf("empty recorder summary = %+v, want nil", s)
	}
	a, b := NewRecorder(), NewRecorder()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if g%2 == 0 {
					a.Record(time.Millisecond)
				} else {
					b.Record(time.Duration(i+1) * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	a.Merge(b)
	if got := a.Count(); got != 4000 {
		t.Fatalf("merged count %d, want 4000", got)
	}
	if s := a.Summary(); !within(s.Max, 1000) || !within(s.P50, 1) {
		t.Fatalf("merged summary p50 %v max %v, want 1 and 1000", s.P50, s.Max)
	}
}

func TestResultOutput(t *testing.T) {
	lat := &Summary{Count: 100, Min: 1, Mean: 50.5, P50: 50, P99: 99, P999: 100, Max: 100}
	res := &Result{Mode: ModeE2E, Topic: "t", Partitions: 8, RecordSize: 100, TargetRate: 1000, Acks: "all",
		Compression: "none", Producers: 1, Consumers: 1, Seconds: 2, Records: 2000, Bytes: 200000,
		RecordsPerSec: 1000, MBPerSec: 0.1, Consumed: 1999, Errors: 1, FirstError: "boom",
		Produce: lat, E2E: lat}

	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rate 1000 rec/s", "1000 records/s, 0.10 MB/s", "consumed 1999 of 2000",
		"produce latency: p50 50.00ms, p99 99.00ms", "end-to-end latency:", "1 errors; first: boom"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}

	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(js.Bytes(), []byte("\n")) != 1 {
		t.Errorf("JSON output is not one line: %q", js.String())
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON output does not parse: %v", err)
	}
	e2e, _ := back["e2e_latency"].(map[string]any)
	if back["records_per_sec"] != 1000.0 || e2e == nil || e2e["p99_ms"] != 99.0 {
		t.Errorf("JSON fields wrong: %v", back)
	}
}
