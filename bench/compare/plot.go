package main

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var clusterColors = [2]color.Color{
	color.RGBA{R: 0x33, G: 0x66, B: 0xcc, A: 0xff}, // kafka
	color.RGBA{R: 0xdd, G: 0x55, B: 0x11, A: 0xff}, // strom
}

var clusterNames = [2]string{"Apache Kafka", "Strom"}

// nines maps a percentile to -log10(1 - p/100), so 90, 99, 99.9 are evenly spaced.
func nines(p float64) float64 { return -math.Log10(1 - p/100) }

// plotLatency draws the e2e latency distribution of both clusters: per percentile the median over the
// rounds, on a log latency axis.
func plotLatency(rep *report, path string) error {
	p := plot.New()
	p.Title.Text = "End-to-end latency at a fixed rate (median over rounds)"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(ticks125)
	p.Legend.Top = true
	p.Legend.Left = true
	var ticks []plot.Tick
	for c := range 2 {
		byPct := map[float64][]float64{}
		var order []float64
		for _, pair := range rep.rounds {
			m := pair[c]
			if m.e2e == nil || m.e2e.E2E == nil {
				continue
			}
			for _, q := range m.e2e.E2E.Ladder {
				if _, seen := byPct[q.Percentile]; !seen {
					order = append(order, q.Percentile)
				}
				byPct[q.Percentile] = append(byPct[q.Percentile], q.Millis)
			}
		}
		var xys plotter.XYs
		for _, pct := range order {
			if st, ok := summarize(byPct[pct]); ok && st.median > 0 {
				xys = append(xys, plotter.XY{X: nines(pct), Y: st.median})
			}
		}
		if len(xys) == 0 {
			continue
		}
		if len(ticks) == 0 {
			for _, pct := range order {
				ticks = append(ticks, plot.Tick{Value: nines(pct), Label: fmt.Sprintf("p%g", pct)})
			}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("latency plot: %w", err)
		}
		line.Color, points.Color = clusterColors[c], clusterColors[c]
		line.Width = vg.Points(2)
		p.Add(line, points)
		p.Legend.Add(clusterNames[c], line, points)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())
	if err := p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// plotThroughput draws grouped bars of the median throughputs, each normalised to Kafka = 100 so 1 KiB
// MB/s and 100-byte records/s share one axis; the labels carry the absolute medians.
func plotThroughput(rep *report, path string) error {
	p := plot.New()
	p.Title.Text = "Max throughput, median over rounds (Kafka = 100)"
	p.Y.Label.Text = "relative throughput"
	var names []string
	vals := [2]plotter.Values{}
	for _, m := range rep.metrics {
		if m.short == "" {
			continue
		}
		k, s, _, okK, okS, _ := rep.row(m)
		kv, sv := math.NaN(), math.NaN()
		if okK {
			kv = k.median
		}
		if okS {
			sv = s.median
		}
		names = append(names, fmt.Sprintf("%s\nK %s / S %s %s", m.short, fmtNum(kv), fmtNum(sv), m.unit))
		rel := func(v float64) float64 {
			if !okK || math.IsNaN(v) || kv == 0 {
				return 0
			}
			return 100 * v / kv
		}
		vals[0] = append(vals[0], rel(kv))
		vals[1] = append(vals[1], rel(sv))
	}
	w := vg.Points(22)
	for c := range 2 {
		bars, err := plotter.NewBarChart(vals[c], w)
		if err != nil {
			return fmt.Errorf("throughput plot: %w", err)
		}
		bars.Color = clusterColors[c]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(2*c-1) * w / 2
		p.Add(bars)
		p.Legend.Add(clusterNames[c], bars)
	}
	p.Legend.Top = true
	p.NominalX(names...)
	if err := p.Save(8*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// ticks125 labels a log axis at 1, 2 and 5 times each power of ten in [min, max], so a range within one
// decade still gets labels.
func ticks125(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= min && v <= max {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}
