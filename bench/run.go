package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/clientcfg"
	"github.com/stromhq/strom/internal/cputime"
)

// Client settings shared by every run, so two clusters are always measured with the same client.
const (
	// bufferedBytes bounds what one producer holds unacknowledged, like the Java client's buffer.memory.
	bufferedBytes = 32 << 20
	// deliveryTimeout fails a record the cluster has not acknowledged in this long (delivery.timeout.ms
	// is 2 minutes in Java; a benchmark should give up sooner).
	deliveryTimeout = 60 * time.Second
	// flushTimeout bounds the wait for in-flight records once producers stop.
	flushTimeout = 60 * time.Second
	// setupTimeout bounds topic creation and offset listing.
	setupTimeout = 30 * time.Second
)

// counters are the live totals of a run; the progress printer reads them while workers add to them.
type counters struct {
	produced, producedBytes atomic.Int64
	consumed, consumedBytes atomic.Int64
	errors                  atomic.Int64

	mu       sync.Mutex // guards firstErr
	firstErr error
}

func (c *counters) fail(err error) {
	c.errors.Add(1)
	c.mu.Lock()
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.mu.Unlock()
}

// Run measures mode against the cluster described by cfg and returns the result. It creates cfg.Topic if
// missing, bounds itself by cfg.Duration and cfg.Records, and stops early when ctx ends (returning what
// was measured until then together with ctx's error). Every client and goroutine it starts has ended
// when it returns.
func Run(ctx context.Context, mode Mode, cfg Config) (*Result, error) {
	conn, err := resolveConn(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Brokers = strings.Split(conn.Bootstrap, ",")
	if conn.Bootstrap == "" {
		cfg.Brokers = nil
	}
	if err := cfg.Validate(mode); err != nil {
		return nil, err
	}
	if _, err := conn.Dialer(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if _, err := conn.Mechanism(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	acks, _ := ParseAcks(cfg.Acks)
	codec, _ := compressionCodec(cfg.Compression)
	r := &runner{mode: mode, cfg: cfg, conn: conn, acks: acks, codec: codec,
		produceLat: NewRecorder(), e2eLat: NewRecorder()}
	parts, err := r.ensureTopic(ctx)
	if err != nil {
		return nil, err
	}
	r.partitions = parts

	stopProgress := r.startProgress()
	cpu0 := cputime.Process()
	var runErr error
	switch mode {
	case ModeProduce:
		runErr = r.runProduce(ctx)
	case ModeConsume:
		runErr = r.runConsume(ctx)
	case ModeE2E:
		runErr = r.runE2E(ctx)
	}
	stopProgress()
	r.clientCPU = cputime.Process() - cpu0
	if runErr == nil {
		runErr = ctx.Err()
	}
	return r.result(), runErr
}

// runner holds one Run's state. Its fields are set before workers start and read-only afterwards,
// except the counters and recorders, which are safe for concurrent use.
type runner struct {
	mode       Mode
	cfg        Config
	conn       clientcfg.Config // resolved: Bootstrap is cfg.Brokers
	acks       int16
	codec      kgo.CompressionCodec
	partitions []int32

	c          counters
	produceLat *Recorder
	e2eLat     *Recorder
	started    time.Time
	elapsed    time.Duration
	clientCPU  float64 // seconds of this process' CPU during the workload
}

// resolveConn fills cfg.Conn's properties file in and sets its bootstrap servers: cfg.Brokers if given,
// else the file's.
func resolveConn(cfg Config) (clientcfg.Config, error) {
	conn := cfg.Conn
	conn.Name = "cluster"
	if len(cfg.Brokers) > 0 {
		conn.Bootstrap = strings.Join(cfg.Brokers, ",")
	}
	conn, err := conn.Resolve()
	if err != nil {
		return conn, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return conn, nil
}

// client returns a franz-go client of the cluster with opts added to the connection's.
func (r *runner) client(opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := r.conn.KgoOpts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(base, opts...)...)
}

// setupMetadataAge is how old cached metadata may be for the set-up clients (adminClient). kadm reads
// metadata through franz-go's cache, which keeps an answer for MetadataMinAge (5 s by default): a poll
// for leaders of a topic just created, or of a cluster just started, would see the first incomplete
// answer again and again for those 5 s.
const setupMetadataAge = 20 * time.Millisecond

// adminClient is client for the set-up steps that poll cluster metadata (topic leaders, offsets).
func (r *runner) adminClient() (*kgo.Client, error) {
	return r.client(kgo.MetadataMinAge(setupMetadataAge))
}

// ensureTopic creates the topic if it does not exist and returns its partitions once every one of them
// has a leader.
func (r *runner) ensureTopic(ctx context.Context) ([]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cl, err := r.adminClient()
	if err != nil {
		return nil, fmt.Errorf("admin client for %v: %w", r.cfg.Brokers, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rf := r.cfg.ReplicationFactor
	if rf == 0 {
		rf = -1 // the cluster's default.replication.factor
	}
	var configs map[string]*string
	for k, v := range r.cfg.TopicConfigs {
		if configs == nil {
			configs = map[string]*string{}
		}
		configs[k] = &v
	}
	resp, err := adm.CreateTopic(ctx, r.cfg.Partitions, rf, configs, r.cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create topic %q: %w", r.cfg.Topic, err)
	}
	for {
		tds, err := adm.ListTopics(ctx, r.cfg.Topic)
		if err == nil {
			td := tds[r.cfg.Topic]
			if td.Err == nil && len(td.Partitions) > 0 {
				var parts []int32
				ready := true
				for p, pd := range td.Partitions {
					parts = append(parts, p)
					ready = ready && pd.Leader >= 0 && pd.Err == nil
				}
				if ready {
					slices.Sort(parts)
					return parts, nil
				}
			}
			err = td.Err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("topic %q has no leader for every partition: %w (last: %v)", r.cfg.Topic, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// untilSetup calls try until it succeeds or fails with retry false, pausing primeBackoff between
// attempts; when ctx (bounded by setupTimeout by the caller) ends first, it returns try's last error.
func untilSetup(ctx context.Context, try func() (retry bool, err error)) error {
	for {
		retry, err := try()
		if err == nil || !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waited %v)", err, setupTimeout)
		case <-time.After(primeBackoff):
		}
	}
}

// offsets lists the start and end offsets of every partition of the topic.
func (r *runner) offsets(ctx context.Context) (start, end map[int32]int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cl, err := r.adminClient()
	if err != nil {
		return nil, nil, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// In a cluster of several brokers the one asked may not know yet of a topic another just created
	// (UNKNOWN_TOPIC_OR_PARTITION) or of its leaders; such answers are asked again until setupTimeout.
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error), what string) (map[int32]int64, error) {
		m := map[int32]int64{}
		err := untilSetup(ctx, func() (bool, error) {
			lo, err := f(ctx, r.cfg.Topic)
			if err == nil {
				err = lo.Error()
			}
			if err != nil {
				err = fmt.Errorf("list %s offsets of %q: %w", what, r.cfg.Topic, err)
				return kerr.IsRetriable(err), err
			}
			lo.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
			return false, nil
		})
		return m, err
	}
	if start, err = list(adm.ListStartOffsets, "start"); err != nil {
		return nil, nil, err
	}
	if end, err = list(adm.ListEndOffsets, "end"); err != nil {
		return nil, nil, err
	}
	return start, end, nil
}

// producerClient builds one producer with the run's acks, idempotence and compression.
func (r *runner) producerClient() (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(r.cfg.Topic),
		kgo.ProducerBatchCompression(r.codec),
		kgo.ProducerLinger(r.cfg.Linger),
		kgo.MaxBufferedBytes(bufferedBytes),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	}
	switch r.acks {
	case -1:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	cl, err := r.client(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer client: %w", err)
	}
	return cl, nil
}

// produce runs cfg.Producers producers until the deadline or the record budget, then flushes them.
// It returns when every produced record was acknowledged or failed.
func (r *runner) produce(ctx context.Context, deadline time.Time) error {
	n := r.cfg.Producers
	clients := make([]*kgo.Client, 0, n)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for range n {
		cl, err := r.producerClient()
		if err != nil {
			return err
		}
		clients = append(clients, cl)
	}
	payload := make([]byte, r.cfg.RecordSize)
	// Random bytes: compression then measures the codec's cost without flattering the throughput.
	_, _ = rand.Read(payload)

	var wg sync.WaitGroup
	for i, cl := range clients {
		quota := int64(0)
		if r.cfg.Records > 0 {
			quota = r.cfg.Records / int64(n)
			if int64(i) < r.cfg.Records%int64(n) {
				quota++
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.produceLoop(ctx, cl, payload, quota, r.cfg.Rate/float64(n), deadline)
		}()
	}
	wg.Wait()
	return nil
}

// produceLoop sends records from one client. With rate > 0 record i is due at start + i/rate; the loop
// sends every due record, then sleeps until the next one is due, and measures latency from the due time,
// so time spent blocked (full buffer, slow broker) counts against the cluster rather than being omitted.
func (r *runner) produceLoop(ctx context.Context, cl *kgo.Client, payload []byte, quota int64, rate float64,
	deadline time.Time) {
	start := time.Now()
	stamp := r.mode == ModeE2E
	t := newProduceTally(&r.c)
	var recs recordRecycler
	// One promise serves every record, so no closure is built per record:
	// the intended send time is the record's timestamp, its size its value's.
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			r.c.fail(fmt.Errorf("produce: %w", err))
		} else {
			// kgo truncates the timestamp to the millisecond, which drops
			// its monotonic reading, so time.Since(rec.Timestamp) would
			// read the wall and the monotonic clock both; against start's
			// monotonic reading one clock read serves. Truncation makes a
			// latency at most 1 ms longer, never shorter.
			t.acked(time.Since(start)-rec.Timestamp.Sub(start), int64(len(rec.Value)))
		}
		recs.put(rec)
	}
	var now time.Time
	for i := int64(0); quota == 0 || i < quota; i++ {
		// At max rate a record is due when the loop gets to it. Reading the
		// clock for every one of them was a tenth of the generator's CPU
		// with 100-byte records; a reading is reused for clockReuse records,
		// which are enqueued within microseconds, so latencies are measured
		// from at most that much earlier (never shorter than they were).
		if rate > 0 || stamp || i%clockReuse == 0 {
			now = time.Now()
		}
		if ctx.Err() != nil || !now.Before(deadline) {
			break
		}
		intended := now
		if rate > 0 {
			intended = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if wait := intended.Sub(now); wait > 0 {
				if wait > time.Until(deadline) {
					break
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				}
				if ctx.Err() != nil {
					break
				}
			}
		}
		rec := recs.get()
		value := payload
		if stamp {
			// A recycled record's value is a stamped copy of its own, which
			// kgo no longer reads once the promise has run.
			value = rec.Value[:0]
			value = append(value, payload...)
			binary.BigEndian.PutUint64(value, uint64(intended.UnixNano()))
		}
		// The record's timestamp is its intended send time: the clock was
		// read for it already, and franz-go reads it again for every record
		// that has none.
		*rec = kgo.Record{Value: value, Timestamp: intended}
		cl.Produce(ctx, rec, promise)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	err := cl.Flush(fctx)
	if err != nil {
		r.c.fail(fmt.Errorf("flush: %w", err))
	}
	// A flush that returned nil saw every promise run (kgo calls it before
	// it counts the record out); a failed flush leaves records whose
	// promises may still come, and those are failures.
	t.finish(r.produceLat, err == nil)
}

// recordRecycler hands the records whose promise has run back to the loop that produces them. A new
// kgo.Record per record was an eighth of the generator's CPU with 100-byte records (allocation and the
// collections it causes), which both clusters pay alike and which hides the brokers' difference. kgo
// touches a record for the last time when it calls its promise.
//
// put is called by the client's promise goroutine only (kgo runs one client's promises one at a time) and
// get by the producing loop only; they meet under mu once per recycleBatch records.
type recordRecycler struct {
	freed []*kgo.Record // the promise goroutine's, not yet handed over
	local []*kgo.Record // the producing loop's
	slab  []kgo.Record  // the producing loop's: new records, allocated recycleBatch at a time

	mu    sync.Mutex
	spare []*kgo.Record // handed over, guarded by mu
}

// recycleBatch is how many records move between a recordRecycler's two sides at once.
const recycleBatch = 256

// put takes back a record kgo is done with.
func (c *recordRecycler) put(rec *kgo.Record) {
	c.freed = append(c.freed, rec)
	if len(c.freed) < recycleBatch {
		return
	}
	c.mu.Lock()
	c.spare = append(c.spare, c.freed...)
	c.mu.Unlock()
	clear(c.freed)
	c.freed = c.freed[:0]
}

// get returns a record to fill, recycled when one is spare.
func (c *recordRecycler) get() *kgo.Record {
	if len(c.local) == 0 {
		c.mu.Lock()
		c.local, c.spare = c.spare, c.local[:0]
		c.mu.Unlock()
	}
	if n := len(c.local); n > 0 {
		rec := c.local[n-1]
		c.local[n-1] = nil
		c.local = c.local[:n-1]
		return rec
	}
	if len(c.slab) == 0 {
		c.slab = make([]kgo.Record, recycleBatch)
	}
	rec := &c.slab[0]
	c.slab = c.slab[1:]
	return rec
}

// clockReuse is how many records at max rate share one clock reading in produceLoop.
const clockReuse = 16

// tallyPublish is how many acknowledged records a produceTally gathers before it adds them to the run's
// shared counters, which the progress line and the e2e drain read.
const tallyPublish = 256

// produceTally counts one producer's acknowledgements. They come from one goroutine (kgo calls a
// client's promises one at a time; the lean producer has one reader per connection), which gathers them
// without a lock and adds them to the histogram and the run's shared counters once per tallyPublish
// records: a lock and shared atomic counters per record were a measurable part of the generator's CPU
// with 100-byte records, which both clusters pay alike and which hides the brokers' difference.
type produceTally struct {
	shared *counters

	// Owned by the acknowledging goroutine; finish reads them only once that goroutine has drained.
	pending    [tallyPublish]pendingAcks
	npending   int
	recs, size int64 // acknowledged, not yet added to shared

	mu   sync.Mutex // guards hist
	hist *hdrhistogram.Histogram
}

// pendingAcks is n records acknowledged after latency, not yet in a produceTally's histogram.
type pendingAcks struct {
	latency time.Duration
	n       int64
}

func newProduceTally(shared *counters) *produceTally {
	return &produceTally{shared: shared, hist: newHistogram()}
}

// acked records one acknowledged record of size bytes.
func (t *produceTally) acked(latency time.Duration, size int64) { t.ackedN(latency, 1, size) }

// ackedN records n records of size bytes in all, acknowledged after latency.
func (t *produceTally) ackedN(latency time.Duration, n, size int64) {
	t.pending[t.npending] = pendingAcks{latency, n}
	t.npending++
	t.recs += n
	t.size += size
	if t.recs >= tallyPublish || t.npending == len(t.pending) {
		t.publish()
	}
}

// publish moves what is pending into the histogram and the shared counters; the acknowledging goroutine
// calls it, or finish once that goroutine has drained.
func (t *produceTally) publish() {
	t.mu.Lock()
	for _, p := range t.pending[:t.npending] {
		recordLatencies(t.hist, p.latency, p.n)
	}
	t.mu.Unlock()
	t.npending = 0
	t.shared.produced.Add(t.recs)
	t.shared.producedBytes.Add(t.size)
	t.recs, t.size = 0, 0
}

// finish merges the latencies into into. drained says every acknowledgement has been made and happens
// before this call (kgo's Flush returned; the lean reader ended), so what is still pending is published
// too; otherwise (a failed flush, whose promises may still run) up to tallyPublish-1 late
// acknowledgements of the failed run are left out.
func (t *produceTally) finish(into *Recorder, drained bool) {
	if drained {
		t.publish()
	}
	t.mu.Lock()
	into.mergeHistogram(t.hist)
	t.hist.Reset()
	t.mu.Unlock()
}

// runProduce measures producing only.
func (r *runner) runProduce(ctx context.Context) error {
	r.started = time.Now()
	var err error
	if r.cfg.Client == ClientLean {
		err = r.produceLean(ctx, r.deadline())
	} else {
		err = r.produce(ctx, r.deadline())
	}
	r.elapsed = time.Since(r.started)
	return err
}

// deadline is when producers stop issuing records; far in the future when only --records bounds the run.
func (r *runner) deadline() time.Time {
	if r.cfg.Duration > 0 {
		return r.started.Add(r.cfg.Duration)
	}
	return r.started.Add(24 * time.Hour)
}
