package replicate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one Run, on a registry of their own (no global state).
type metrics struct {
	reg     *prometheus.Registry
	records prometheus.Counter
	bytes   prometheus.Counter
	lag     prometheus.Gauge
	latency prometheus.Histogram
	errors  *prometheus.CounterVec
	groups  prometheus.Counter
	// Per source topic; the unlabelled series above are their sums.
	topicRecords, topicBytes *prometheus.CounterVec
	topicLag                 *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_mirror_records_total",
			Help: "Records copied to the destination (acknowledged, and committed in exactly-once mode)."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_mirror_bytes_total",
			Help: "Key and value bytes copied to the destination."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strom_mirror_lag_records",
			Help: "Records left to copy, summed over the selected partitions: to the migrate end offsets when migrating, else to the source high watermarks this process last fetched."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strom_mirror_replication_latency_seconds",
			Help:    "Time from a source record's timestamp to its acknowledgement on the destination (last record of each batch).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strom_mirror_errors_total",
			Help: "Sessions ended by an error, by stage."}, []string{"stage"}),
		groups: prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_mirror_group_offsets_synced_total",
			Help: "Destination group partition offsets moved forward by group sync."}),
		topicRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strom_mirror_topic_records_total",
			Help: "Records copied to the destination, by source topic."}, []string{"topic"}),
		topicBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strom_mirror_topic_bytes_total",
			Help: "Key and value bytes copied to the destination, by source topic."}, []string{"topic"}),
		topicLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strom_mirror_topic_lag_records",
			Help: "Records left to copy, by source topic (to the migrate end offsets when migrating)."}, []string{"topic"}),
	}
	m.reg.MustRegister(m.records, m.bytes, m.lag, m.latency, m.errors, m.groups, m.topicRecords, m.topicBytes, m.topicLag)
	return m
}

// serve listens on addr and serves /metrics until ctx ends; the returned func waits for the server to stop.
func (m *metrics) serve(ctx context.Context, addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener is ours; Serve fails only when it is closed
		}
	}()
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return func() { close(stop); <-done }, nil
}
