package replicate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/replicate/offsetmap"
)

var t0 = time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)

// snap2 is a snapshot of two topics, one caught up and one copying.
func snap2(final bool) progressSnapshot {
	topics := []TopicProgress{
		{Topic: "orders", PartitionsDone: 3, Partitions: 8, Records: 123456, Bytes: 126418944,
			RecordsRate: 20000, BytesRate: 20480000, Lag: 60000, ETASeconds: eta(60000, 20000)},
		{Topic: "x", PartitionsDone: 1, Partitions: 1, Records: 7, Bytes: 70, ETASeconds: eta(0, 0)},
	}
	return progressSnapshot{Time: t0, Elapsed: 83*time.Second + 400*time.Millisecond, Final: final, Session: 1,
		Topics: topics, Total: total(topics)}
}

func TestRenderTable(t *testing.T) {
	tests := []struct {
		name string
		snap progressSnapshot
		want []string
	}{
		{"copying", snap2(false), []string{
			"strom mirror: copying, 1m23s elapsed, session 1",
			"TOPIC   PARTS  RECORDS  REC/S  MB/S    LAG  ETA",
			"orders    3/8   123456  20000  20.5  60000   3s",
			"x         1/1        7      0   0.0      0   0s",
			"TOTAL     4/9   123463  20000  20.5  60000   3s",
		}},
		{"final", snap2(true), []string{
			"strom mirror: done, 1m23s elapsed, session 1",
			"TOPIC   PARTS  RECORDS  REC/S  MB/S    LAG  ETA",
			"orders    3/8   123456  20000  20.5  60000   3s",
			"x         1/1        7      0   0.0      0   0s",
			"TOTAL     4/9   123463  20000  20.5  60000   3s",
		}},
		{"no topics yet", progressSnapshot{Session: 2, Total: total(nil)}, []string{
			"strom mirror: copying, 0s elapsed, session 2",
			"TOPIC  PARTS  RECORDS  REC/S  MB/S  LAG  ETA",
			"TOTAL    0/0        0      0   0.0    0   0s",
		}},
		{"stalled", progressSnapshot{Topics: []TopicProgress{{Topic: "t", Partitions: 2, Lag: 5, ETASeconds: eta(5, 0)}},
			Total: total([]TopicProgress{{Topic: "t", Partitions: 2, Lag: 5}})}, []string{
			"strom mirror: copying, 0s elapsed, session 0",
			"TOPIC  PARTS  RECORDS  REC/S  MB/S  LAG  ETA",
			"t        0/2        0      0   0.0    5    -",
			"TOTAL    0/2        0      0   0.0    5    -",
		}},
	}
	for _, tt := range tests {
		got := renderTable(tt.snap)
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestRedraw(t *testing.T) {
	tests := []struct {
		prev  int
		lines []string
		want  string
	}{
		{0, []string{"a", "b"}, "\r\x1b[Ja\x1b[K\nb\x1b[K\n"},
		{2, []string{"a", "b", "c"}, "\r\x1b[2A\x1b[Ja\x1b[K\nb\x1b[K\nc\x1b[K\n"},
		{3, []string{"z"}, "\r\x1b[3A\x1b[Jz\x1b[K\n"},
	}
	for _, tt := range tests {
		if got := redraw(tt.prev, tt.lines); got != tt.want {
			t.Errorf("redraw(%d, %q) = %q, want %q", tt.prev, tt.lines, got, tt.want)
		}
	}
}

func TestRenderLog(t *testing.T) {
	tests := []struct {
		name string
		snap progressSnapshot
		want string
	}{
		{"copying", snap2(false), "" +
			"2026-11-26T05:00:00Z progress topic=orders partitions=3/8 records=123456 bytes=126418944 records_per_sec=20000 mb_per_sec=20.5 lag=60000 eta=3s\n" +
			"2026-11-26T05:00:00Z progress topic=x partitions=1/1 records=7 bytes=70 records_per_sec=0 mb_per_sec=0.0 lag=0 eta=0s\n" +
			"2026-11-26T05:00:00Z progress topic=TOTAL partitions=4/9 records=123463 bytes=126419014 records_per_sec=20000 mb_per_sec=20.5 lag=60000 eta=3s\n"},
		{"final", progressSnapshot{Time: t0, Final: true, Total: total(nil)},
			"2026-11-26T05:00:00Z progress topic=TOTAL partitions=0/0 records=0 bytes=0 records_per_sec=0 mb_per_sec=0.0 lag=0 eta=0s final=true\n"},
		// A topic that happens to be named TOTAL is not the totals line.
		{"topic named TOTAL", progressSnapshot{Time: t0, Final: true, Topics: []TopicProgress{{Topic: "TOTAL", Partitions: 1}},
			Total: total([]TopicProgress{{Topic: "TOTAL", Partitions: 1}})}, "" +
			"2026-11-26T05:00:00Z progress topic=TOTAL partitions=0/1 records=0 bytes=0 records_per_sec=0 mb_per_sec=0.0 lag=0 eta=0s\n" +
			"2026-11-26T05:00:00Z progress topic=TOTAL partitions=0/1 records=0 bytes=0 records_per_sec=0 mb_per_sec=0.0 lag=0 eta=0s final=true\n"},
	}
	for _, tt := range tests {
		if got := renderLog(tt.snap); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}

func TestRenderJSON(t *testing.T) {
	b := renderJSON(snap2(false))
	if !strings.HasSuffix(string(b), "}\n") || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("not one JSON object and a newline: %q", b)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"records": 123463.0, "lag": 60000.0, "eta_seconds": 3.0, "partitions": 9.0,
		"partitions_done": 4.0, "records_per_sec": 20000.0, "final": false, "session": 1.0, "elapsed_seconds": 83.4} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	topics, _ := got["topics"].([]any)
	if len(topics) != 2 {
		t.Fatalf("topics = %v, want 2", got["topics"])
	}
	o, _ := topics[0].(map[string]any)
	for k, want := range map[string]any{"topic": "orders", "partitions_done": 3.0, "partitions": 8.0, "records": 123456.0,
		"bytes": 126418944.0, "records_per_sec": 20000.0, "bytes_per_sec": 20480000.0, "lag": 60000.0, "eta_seconds": 3.0} {
		if o[k] != want {
			t.Errorf("topics[0].%s = %v, want %v", k, o[k], want)
		}
	}
	// No topics: an empty list, not null, so consumers can iterate without a check.
	if s := string(renderJSON(progressSnapshot{Total: total(nil)})); !strings.Contains(s, `"topics":[]`) {
		t.Errorf("empty snapshot: %s", s)
	}
}

func TestETA(t *testing.T) {
	tests := []struct {
		lag  int64
		rate float64
		want string
	}{
		{0, 0, "0s"},
		{10, 0, "-"},
		{10, 100, "1s"}, // rounded up: never shows 0s while records remain
		{59000, 1000, "59s"},
		{187000, 1000, "3m07s"},
		{7500, 1, "2h05m"},
		{1 << 40, 1, ">99h"},
	}
	for _, tt := range tests {
		if got := formatETA(eta(tt.lag, tt.rate)); got != tt.want {
			t.Errorf("eta(%d, %v) = %q, want %q", tt.lag, tt.rate, got, tt.want)
		}
	}
}

func TestRateWindow(t *testing.T) {
	type sample struct {
		sec            float64
		records, bytes int64
	}
	tests := []struct {
		name         string
		samples      []sample
		wantRecs     float64
		wantBytes    float64
		wantRetained int
	}{
		{"none", nil, 0, 0, 0},
		{"one sample", []sample{{0, 100, 1000}}, 0, 0, 1},
		{"steady", []sample{{0, 0, 0}, {1, 100, 1000}, {2, 200, 2000}}, 100, 1000, 3},
		// Samples older than the window are dropped, except the newest of them, which anchors the window.
		{"window slides", []sample{{0, 0, 0}, {5, 5000, 5000}, {11, 5000, 5000}, {15, 5400, 5400}}, 40, 40, 3},
		{"stalled copy reads 0", []sample{{0, 0, 0}, {1, 1000, 1000}, {20, 1000, 1000}, {21, 1000, 1000}}, 0, 0, 3},
		{"same instant", []sample{{3, 0, 0}, {3, 10, 10}}, 0, 0, 2},
	}
	for _, tt := range tests {
		w := &rateWindow{window: 10 * time.Second}
		for _, s := range tt.samples {
			w.add(t0.Add(time.Duration(s.sec*float64(time.Second))), s.records, s.bytes)
		}
		r, b := w.rates()
		if r != tt.wantRecs || b != tt.wantBytes || len(w.samples) != tt.wantRetained {
			t.Errorf("%s: rates %v rec/s %v B/s with %d samples kept, want %v, %v, %d", tt.name, r, b,
				len(w.samples), tt.wantRecs, tt.wantBytes, tt.wantRetained)
		}
	}
}

// TestSnapshot checks per-partition lag and "done" in mirror and migrate mode, and the per-topic sums.
func TestSnapshot(t *testing.T) {
	pos := func(p int64) *offsetmap.Partition {
		m := offsetmap.New()
		m.Advance(p)
		return m
	}
	k := func(topic string, p int32) tp { return tp{Topic: topic, Partition: p} }
	topics := map[string]*topicInfo{"a": {src: "a", dst: "a", partitions: 3}, "b": {src: "b", dst: "b", partitions: 1}}
	tests := []struct {
		name            string
		maps            map[tp]*offsetmap.Partition
		hw              map[tp]int64
		targets, starts map[tp]int64
		want            []TopicProgress // records, rates and ETA left out
	}{
		{
			name: "mirror: lag to the high watermarks seen; an unfetched partition is not done",
			maps: map[tp]*offsetmap.Partition{k("a", 0): pos(10), k("a", 1): pos(4)},
			hw:   map[tp]int64{k("a", 0): 10, k("a", 1): 9, k("b", 0): 3},
			want: []TopicProgress{{Topic: "a", Partitions: 3, PartitionsDone: 1, Lag: 5}, {Topic: "b", Partitions: 1, Lag: 3}},
		},
		{
			name:    "migrate: lag to the end offsets, from the log start at the earliest",
			maps:    map[tp]*offsetmap.Partition{k("a", 0): pos(10), k("a", 1): pos(4)},
			hw:      map[tp]int64{k("a", 0): 50},
			targets: map[tp]int64{k("a", 0): 10, k("a", 1): 9, k("a", 2): 0, k("b", 0): 30},
			starts:  map[tp]int64{k("a", 0): 0, k("a", 1): 0, k("a", 2): 0, k("b", 0): 20},
			want:    []TopicProgress{{Topic: "a", Partitions: 3, PartitionsDone: 2, Lag: 5}, {Topic: "b", Partitions: 1, Lag: 10}},
		},
	}
	for _, tt := range tests {
		r := &runner{m: newMetrics(), started: t0, targets: tt.targets, starts: tt.starts,
			copied: map[string]*topicCount{"a": {records: 7, bytes: 70}}, rates: map[string]*rateWindow{}}
		s := &session{r: r, topics: topics, maps: tt.maps, hw: tt.hw}
		snap := s.snapshot(t0.Add(time.Second), false)
		if len(snap.Topics) != len(tt.want) {
			t.Fatalf("%s: %d topics, want %d", tt.name, len(snap.Topics), len(tt.want))
		}
		var lag int64
		for i, w := range tt.want {
			g := snap.Topics[i]
			lag += w.Lag
			if g.Topic != w.Topic || g.Partitions != w.Partitions || g.PartitionsDone != w.PartitionsDone || g.Lag != w.Lag {
				t.Errorf("%s: topic %d = %+v, want %+v", tt.name, i, g, w)
			}
			if g.ETASeconds != -1 {
				t.Errorf("%s: %s ETA %v with no rate, want -1", tt.name, g.Topic, g.ETASeconds)
			}
		}
		if snap.Topics[0].Records != 7 || snap.Topics[1].Records != 0 || snap.Total.Lag != lag || snap.Total.Records != 7 {
			t.Errorf("%s: records %d/%d, totals %+v", tt.name, snap.Topics[0].Records, snap.Topics[1].Records, snap.Total)
		}
	}
}

// TestSampleStartsAtZero checks that a selected topic is sampled before anything of it was copied, so the
// first batch already shows a rate instead of waiting for a second sample.
func TestSampleStartsAtZero(t *testing.T) {
	cfg := DefaultConfig()
	r := &runner{cfg: cfg, copied: map[string]*topicCount{}, rates: map[string]*rateWindow{}}
	topics := map[string]*topicInfo{"a": {src: "a", partitions: 1}}
	r.sample(t0, topics)
	r.copied["a"] = &topicCount{records: 500, bytes: 5000}
	r.sample(t0.Add(2*time.Second), topics)
	if recs, b := r.rates["a"].rates(); recs != 250 || b != 2500 {
		t.Errorf("rates after the first batch = %v rec/s, %v B/s; want 250, 2500", recs, b)
	}
}
