package replicate

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// ProgressView is how progress is shown on Config.Progress.
type ProgressView int

// Progress views. cmd/strom picks ViewTable when stdout is a terminal, ViewLog otherwise, ViewJSON with
// --json.
const (
	// ViewLog prints plain lines every ProgressInterval: one per topic and one with the totals.
	ViewLog ProgressView = iota
	// ViewTable redraws a per-topic table in place every second with ANSI cursor movement (a terminal).
	ViewTable
	// ViewJSON prints one JSON object (TopicProgress per topic plus totals) every ProgressInterval.
	ViewJSON
)

// String returns the view's name: log, table or json.
func (v ProgressView) String() string {
	switch v {
	case ViewTable:
		return "table"
	case ViewJSON:
		return "json"
	}
	return "log"
}

// tableInterval is the redraw period of ViewTable, whatever ProgressInterval says: the table is for a
// person watching, the interval is for logs that should not flood.
const tableInterval = time.Second

// TopicProgress is the progress of one source topic (or of all of them, in the totals).
type TopicProgress struct {
	Topic string `json:"topic"`
	// PartitionsDone counts partitions caught up: at the migrate end offset in migrate mode, at the source
	// high watermark last seen by this process in mirror mode (a partition this process has not fetched
	// yet, or that another process sharing the name reads, is not done).
	PartitionsDone int `json:"partitions_done"`
	Partitions     int `json:"partitions"`
	// Records and Bytes (key and value) were copied by this process since it started.
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
	// RecordsRate and BytesRate are per second over the last RateWindow.
	RecordsRate float64 `json:"records_per_sec"`
	BytesRate   float64 `json:"bytes_per_sec"`
	// Lag is the records left to copy: to the migrate end offsets in migrate mode, to the last seen source
	// high watermarks in mirror mode.
	Lag int64 `json:"lag"`
	// ETASeconds is Lag / RecordsRate; -1 when the rate is 0 and records remain.
	ETASeconds float64 `json:"eta_seconds"`
}

// progressSnapshot is everything a progress view shows at one instant. Renderers are pure functions of it.
type progressSnapshot struct {
	Time    time.Time
	Elapsed time.Duration   // since Run started
	Final   bool            // the last snapshot of a migrate
	Session int             // sessions so far, this one included
	Topics  []TopicProgress // sorted by topic
	Total   TopicProgress   // the sums of Topics, named TOTAL
}

// eta returns lag/rate in seconds, 0 when nothing is left and -1 when the rate is 0.
func eta(lag int64, rate float64) float64 {
	switch {
	case lag <= 0:
		return 0
	case rate <= 0:
		return -1
	}
	return float64(lag) / rate
}

// total sums topics into one row; rates add up because the topics are copied concurrently.
func total(topics []TopicProgress) TopicProgress {
	t := TopicProgress{Topic: "TOTAL"}
	for _, tp := range topics {
		t.PartitionsDone += tp.PartitionsDone
		t.Partitions += tp.Partitions
		t.Records += tp.Records
		t.Bytes += tp.Bytes
		t.RecordsRate += tp.RecordsRate
		t.BytesRate += tp.BytesRate
		t.Lag += tp.Lag
	}
	t.ETASeconds = eta(t.Lag, t.RecordsRate)
	return t
}

// formatETA renders seconds as 45s, 3m07s or 2h05m; "-" for unknown (negative).
func formatETA(s float64) string {
	switch {
	case s < 0 || math.IsNaN(s):
		return "-"
	case s >= 100*3600: // also keeps the conversion below from overflowing
		return ">99h"
	}
	sec := int64(math.Ceil(s))
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds", sec/60, sec%60)
	}
	return fmt.Sprintf("%dh%02dm", sec/3600, sec/60%60)
}

// mbps renders a bytes-per-second rate as decimal MB/s.
func mbps(b float64) string { return fmt.Sprintf("%.1f", b/1e6) }

// renderTable lays the snapshot out as a table: a heading line, a column header, one row per topic and
// the totals. Columns are as wide as their widest cell. No trailing newlines; no terminal escapes.
func renderTable(s progressSnapshot) []string {
	head := []string{"TOPIC", "PARTS", "RECORDS", "REC/S", "MB/S", "LAG", "ETA"}
	rows := [][]string{head}
	row := func(t TopicProgress) []string {
		return []string{t.Topic, fmt.Sprintf("%d/%d", t.PartitionsDone, t.Partitions), fmt.Sprint(t.Records),
			fmt.Sprintf("%.0f", t.RecordsRate), mbps(t.BytesRate), fmt.Sprint(t.Lag), formatETA(t.ETASeconds)}
	}
	for _, t := range s.Topics {
		rows = append(rows, row(t))
	}
	rows = append(rows, row(s.Total))
	width := make([]int, len(head))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	state := "copying"
	if s.Final {
		state = "done"
	}
	lines := []string{fmt.Sprintf("strom mirror: %s, %s elapsed, session %d", state, s.Elapsed.Round(time.Second), s.Session)}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", width[i], c) // names left-aligned, numbers right-aligned
			} else {
				fmt.Fprintf(&b, "%*s", width[i], c)
			}
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	return lines
}

// redraw returns the bytes that replace the prevLines lines drawn last time (the cursor sits on the line
// below them) with lines: cursor up, clear to the end of the screen, draw, each line ending in a newline so
// the cursor again ends below the table. Clearing to the end handles a table that shrank.
func redraw(prevLines int, lines []string) string {
	var b strings.Builder
	b.WriteString("\r")
	if prevLines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", prevLines)
	}
	b.WriteString("\x1b[J")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\x1b[K\n")
	}
	return b.String()
}

// renderLog returns the plain progress lines of s: one per topic and one for the totals, each starting
// with the time, as key=value pairs a log search can filter on.
func renderLog(s progressSnapshot) string {
	var b strings.Builder
	ts := s.Time.UTC().Format(time.RFC3339)
	line := func(t TopicProgress, totals bool) {
		fmt.Fprintf(&b, "%s progress topic=%s partitions=%d/%d records=%d bytes=%d records_per_sec=%.0f mb_per_sec=%s lag=%d eta=%s",
			ts, t.Topic, t.PartitionsDone, t.Partitions, t.Records, t.Bytes, t.RecordsRate, mbps(t.BytesRate),
			t.Lag, formatETA(t.ETASeconds))
		if s.Final && totals {
			b.WriteString(" final=true")
		}
		b.WriteByte('\n')
	}
	for _, t := range s.Topics {
		line(t, false)
	}
	line(s.Total, true)
	return b.String()
}

// progressJSON is one --json progress object: the totals at the top level (the fields of the earlier
// single-line format keep their names) and the topics under "topics".
type progressJSON struct {
	Time        time.Time       `json:"time"`
	Final       bool            `json:"final"`
	ElapsedSec  float64         `json:"elapsed_seconds"`
	Session     int             `json:"session"`
	Records     int64           `json:"records"`
	Bytes       int64           `json:"bytes"`
	RecordsRate float64         `json:"records_per_sec"`
	BytesRate   float64         `json:"bytes_per_sec"`
	Lag         int64           `json:"lag"`
	ETASeconds  float64         `json:"eta_seconds"`
	Partitions  int             `json:"partitions"`
	Done        int             `json:"partitions_done"`
	Topics      []TopicProgress `json:"topics"`
}

// renderJSON returns s as one JSON object and a newline.
func renderJSON(s progressSnapshot) []byte {
	t := s.Total
	topics := s.Topics
	if topics == nil {
		topics = []TopicProgress{}
	}
	b, err := json.Marshal(progressJSON{Time: s.Time.UTC(), Final: s.Final, ElapsedSec: s.Elapsed.Seconds(),
		Session: s.Session, Records: t.Records, Bytes: t.Bytes, RecordsRate: t.RecordsRate, BytesRate: t.BytesRate,
		Lag: t.Lag, ETASeconds: t.ETASeconds, Partitions: t.Partitions, Done: t.PartitionsDone, Topics: topics})
	if err != nil {
		// Only NaN/Inf floats could fail; rates and ETAs are finite by construction.
		return []byte(fmt.Sprintf("{\"error\":%q}\n", err.Error()))
	}
	return append(b, '\n')
}

// rateSample is one topic's cumulative counters at one instant.
type rateSample struct {
	at             time.Time
	records, bytes int64
}

// rateWindow computes rates over a sliding window of samples of cumulative counters.
// Invariant: samples are in time order, and all but the first are within window of the newest (the first
// may be older, so the rate spans the whole window rather than less of it).
type rateWindow struct {
	window  time.Duration
	samples []rateSample
}

// add records the counters at time at and drops samples no longer needed.
func (w *rateWindow) add(at time.Time, records, bytes int64) {
	w.samples = append(w.samples, rateSample{at: at, records: records, bytes: bytes})
	cut := at.Add(-w.window)
	i := 0
	for i+1 < len(w.samples) && !w.samples[i+1].at.After(cut) {
		i++
	}
	w.samples = w.samples[i:]
}

// rates returns records and bytes per second between the oldest and newest sample; 0 with fewer than two
// samples or no time between them.
func (w *rateWindow) rates() (records, bytes float64) {
	if len(w.samples) < 2 {
		return 0, 0
	}
	a, b := w.samples[0], w.samples[len(w.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return 0, 0
	}
	return float64(b.records-a.records) / dt, float64(b.bytes-a.bytes) / dt
}
