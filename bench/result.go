package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Result is what one Run measured. Throughput counts value (and key) bytes only, in MB of 10^6 bytes.
type Result struct {
	Mode       Mode   `json:"mode"`
	Brokers    string `json:"brokers"`
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	// RecordSize is the configured value size, except in consume mode: there the records read are
	// whatever the topic holds, and it is their average key and value bytes.
	RecordSize  int     `json:"record_size"`
	TargetRate  float64 `json:"target_rate"` // records/s over all producers; 0 = max
	Acks        string  `json:"acks"`
	Compression string  `json:"compression"`
	LingerMS    float64 `json:"linger_ms"`
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers"`
	Client      string  `json:"client"`
	// Passes is how many times a consume run set out to read the topic (Config.Passes).
	Passes  int     `json:"passes,omitempty"`
	Seconds float64 `json:"seconds"`
	// Records and Bytes are acknowledged records in produce and e2e mode, consumed ones in consume mode.
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	// Consumed counts records read back in e2e mode.
	Consumed int64 `json:"consumed,omitempty"`
	// ClientCPUSeconds is the CPU time (user + system) the load generator's process used during the
	// run: beside the throughput it shows whether the client, not the cluster, was the limit.
	ClientCPUSeconds float64  `json:"client_cpu_seconds"`
	Errors           int64    `json:"errors"`
	FirstError       string   `json:"first_error,omitempty"`
	Produce          *Summary `json:"produce_latency,omitempty"`
	E2E              *Summary `json:"e2e_latency,omitempty"`
}

// result assembles the Result once every worker has ended.
func (r *runner) result() *Result {
	res := &Result{
		Mode: r.mode, Brokers: strings.Join(r.cfg.Brokers, ","), Topic: r.cfg.Topic,
		Partitions: len(r.partitions), RecordSize: r.cfg.RecordSize, TargetRate: r.cfg.Rate,
		Acks: r.cfg.Acks, Compression: r.cfg.Compression, LingerMS: float64(r.cfg.Linger) / float64(time.Millisecond),
		Producers: r.cfg.Producers, Client: r.cfg.Client,
		Consumers: r.cfg.Consumers, Seconds: r.elapsed.Seconds(), Errors: r.c.errors.Load(),
		ClientCPUSeconds: r.clientCPU,
	}
	r.c.mu.Lock()
	if r.c.firstErr != nil {
		res.FirstError = r.c.firstErr.Error()
	}
	r.c.mu.Unlock()
	switch r.mode {
	case ModeProduce:
		res.Records, res.Bytes = r.c.produced.Load(), r.c.producedBytes.Load()
		res.Produce = r.produceLat.Summary()
	case ModeConsume:
		res.Records, res.Bytes = r.c.consumed.Load(), r.c.consumedBytes.Load()
		res.Passes = max(r.cfg.Passes, 1)
		res.RecordSize = 0
		if res.Records > 0 {
			res.RecordSize = int((res.Bytes + res.Records/2) / res.Records)
		}
	case ModeE2E:
		res.Records, res.Bytes = r.c.produced.Load(), r.c.producedBytes.Load()
		res.Consumed = r.c.consumed.Load()
		res.Produce = r.produceLat.Summary()
		res.E2E = r.e2eLat.Summary()
	}
	if res.Seconds > 0 {
		res.RecordsPerSec = float64(res.Records) / res.Seconds
		res.MBPerSec = float64(res.Bytes) / 1e6 / res.Seconds
	}
	return res
}

// WriteJSON writes res as one JSON object and a newline.
func (res *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// WriteText writes res for a person: the load, the throughput, and each latency distribution.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	rate := "max"
	if res.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f rec/s", res.TargetRate)
	}
	size := fmt.Sprintf("%d-byte records", res.RecordSize)
	if res.Mode == ModeConsume {
		size = fmt.Sprintf("records of %d bytes on average", res.RecordSize)
	}
	fmt.Fprintf(&b, "%s %s: %d partitions, %s, rate %s, acks=%s, compression=%s, linger %gms, %d producer(s), %d consumer(s), client %s\n",
		res.Mode, res.Topic, res.Partitions, size, rate, res.Acks, res.Compression, res.LingerMS, res.Producers, res.Consumers, res.Client)
	if res.Passes > 1 {
		fmt.Fprintf(&b, "read the topic %d times over\n", res.Passes)
	}
	fmt.Fprintf(&b, "%d records, %.1f MB in %.2fs: %.0f records/s, %.2f MB/s\n",
		res.Records, float64(res.Bytes)/1e6, res.Seconds, res.RecordsPerSec, res.MBPerSec)
	if res.Mode == ModeE2E {
		fmt.Fprintf(&b, "consumed %d of %d acknowledged records\n", res.Consumed, res.Records)
	}
	if res.Seconds > 0 {
		fmt.Fprintf(&b, "load generator CPU: %.2f s (%.2f cores)\n", res.ClientCPUSeconds, res.ClientCPUSeconds/res.Seconds)
	}
	for _, l := range []struct {
		name string
		s    *Summary
	}{{"produce latency", res.Produce}, {"end-to-end latency", res.E2E}} {
		if l.s != nil {
			fmt.Fprintf(&b, "%s: p50 %s, p99 %s, p99.9 %s, max %s (mean %s, %d samples)\n", l.name,
				fmtMillis(l.s.P50), fmtMillis(l.s.P99), fmtMillis(l.s.P999), fmtMillis(l.s.Max), fmtMillis(l.s.Mean), l.s.Count)
		}
	}
	if res.Errors > 0 {
		fmt.Fprintf(&b, "%d errors; first: %s\n", res.Errors, res.FirstError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtMillis prints a millisecond value with precision that suits its size.
func fmtMillis(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

// compressionCodec maps --compression to kgo's codec.
func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%w: --compression %q is not none, gzip, snappy, lz4 or zstd", ErrBadConfig, name)
}

// startProgress prints a status line every ProgressInterval until the returned stop is called; stop
// waits for the printer to end.
func (r *runner) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		begin := time.Now()
		last := time.Now()
		var lastRecs, lastBytes int64
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				recs, bytes := r.c.produced.Load(), r.c.producedBytes.Load()
				if r.mode == ModeConsume {
					recs, bytes = r.c.consumed.Load(), r.c.consumedBytes.Load()
				}
				secs := now.Sub(last).Seconds()
				line := fmt.Sprintf("%s %4.0fs: %9.0f rec/s %8.2f MB/s, total %d records",
					r.mode, now.Sub(begin).Seconds(), float64(recs-lastRecs)/secs, float64(bytes-lastBytes)/1e6/secs, recs)
				if r.mode == ModeE2E {
					line += fmt.Sprintf(", consumed %d", r.c.consumed.Load())
				}
				if e := r.c.errors.Load(); e > 0 {
					line += fmt.Sprintf(", %d errors", e)
				}
				fmt.Fprintln(r.cfg.Progress, line)
				last, lastRecs, lastBytes = now, recs, bytes
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
