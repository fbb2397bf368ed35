package replicate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/replicate/offsetmap"
)

// Summary describes what a Run did; Migrate prints it.
type Summary struct {
	Mode       string           `json:"mode"`
	Topics     []string         `json:"topics"`
	Partitions int              `json:"partitions"`
	Records    int64            `json:"records"`
	Bytes      int64            `json:"bytes"`
	Sessions   int              `json:"sessions"`
	Groups     int              `json:"group_offsets_synced"`
	Duration   time.Duration    `json:"duration_ns"`
	Positions  map[string]int64 `json:"positions,omitempty"` // "topic/partition" -> source position
	PerTopic   []TopicSummary   `json:"per_topic"`
}

// TopicSummary is what a Run copied of one source topic.
type TopicSummary struct {
	Topic       string `json:"topic"`
	Destination string `json:"destination"`
	Partitions  int    `json:"partitions"`
	Records     int64  `json:"records"`
	Bytes       int64  `json:"bytes"`
}

// topicCount is what was copied of one source topic, across sessions.
type topicCount struct{ records, bytes int64 }

// tp is a source topic partition.
type tp = offsetmap.Key

// runner is the state of one Run that outlives sessions. Owned by the goroutine calling Run.
type runner struct {
	cfg     Config
	sel     *selector
	src     *cluster
	dst     *cluster
	m       *metrics
	summary Summary
	// targets are the migrate end offsets (source last stable offsets at the first session) and starts
	// (source log start offsets); nil when not migrating.
	targets, starts map[tp]int64
	started         time.Time
	// copying is set once a session passed the up-front checks and began copying. From then on the
	// offset-map topic exists on the destination, and an error in a later session's setup (a source or
	// destination unreachable for longer than Config.RetryTimeout) is an outage to wait out, not a
	// mistake to report: see endsRun.
	copying bool

	// copied and rates are per source topic and outlive sessions (the view must not reset on a retry).
	copied     map[string]*topicCount
	rates      map[string]*rateWindow
	lastSample time.Time
	// tableLines is the number of lines of the ViewTable table on screen, which the next redraw replaces.
	tableLines int
}

// Run mirrors until ctx ends (mirror) or until every selected partition caught up with the end offsets
// taken at start (Migrate). Errors found before anything was copied (unreachable cluster, bad auth, no
// topic, too few destination partitions) end Run at once; later errors restart the session, including
// errors while a later session sets itself up, unless endsRun says they cannot heal.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	r := &runner{cfg: cfg, m: newMetrics(), started: time.Now(), copied: map[string]*topicCount{},
		rates: map[string]*rateWindow{}}
	r.summary.Mode = cfg.Mode.String()
	var err error
	if r.sel, err = cfg.selector(); err != nil {
		return r.summary, err
	}
	if r.src, err = connect(ctx, cfg.Source, cfg.RetryTimeout); err != nil {
		return r.summary, err
	}
	defer r.src.close()
	if r.dst, err = connect(ctx, cfg.Dest, cfg.RetryTimeout); err != nil {
		return r.summary, err
	}
	defer r.dst.close()
	if cfg.MetricsAddr != "" {
		stop, err := r.m.serve(ctx, cfg.MetricsAddr)
		if err != nil {
			return r.summary, err
		}
		defer stop()
	}
	for {
		r.summary.Sessions++
		s := &session{r: r, maps: map[tp]*offsetmap.Partition{}, hw: map[tp]int64{}}
		err := s.run(ctx)
		s.close()
		r.summary.Duration = time.Since(r.started)
		if s.topics != nil {
			r.summary.PerTopic = r.perTopic(s.topics)
		}
		if err == nil {
			return r.summary, nil
		}
		if ctx.Err() != nil {
			return r.summary, nil
		}
		if endsRun(err, r.copying) {
			return r.summary, err
		}
		r.m.errors.WithLabelValues(s.stage).Inc()
		cfg.Logger.Warn("mirror session failed; restarting from the last durable position", "stage", s.stage, "err", err)
		select {
		case <-ctx.Done():
			return r.summary, nil
		case <-time.After(cfg.RetryBackoff):
		}
	}
}

// endsRun reports whether a failed session's err ends Run rather than restarting the session. Before any
// session began copying (copying false) every error does: the user is there to read it, and a wrong
// address or credential must not look like a hang. After that only errors no retry can heal do: this
// process was fenced by another with the same name, or the configuration or the destination's layout
// is wrong. A cluster that stays unreachable past Config.RetryTimeout (a source maintenance window, a
// network partition) fails the session that meets it and every new one until it is back; each is
// restarted after Config.RetryBackoff, so a long-running mirror waits the outage out.
func endsRun(err error, copying bool) bool {
	return !copying || errors.Is(err, ErrFenced) || errors.Is(err, ErrBadConfig) || errors.Is(err, ErrFewerPartitions)
}

// session is one attempt: clients, the offset map loaded from the destination, the copy loop. Owned by
// the goroutine in Run; nothing here is shared.
type session struct {
	r       *runner
	topics  map[string]*topicInfo
	maps    map[tp]*offsetmap.Partition
	hw      map[tp]int64 // source high watermarks seen in fetches, for lag
	prod    *kgo.Client  // destination producer (transactional in exactly-once mode)
	cons    *kgo.Client  // source consumer
	stage   string       // what the session was doing, for errors and metrics
	copying bool         // set once the up-front checks passed
	// reload is set by the group's assignment callback (at-least-once): partitions another process copied
	// until now have map entries this session has not seen, so the map is read again between batches.
	reload   atomic.Bool
	inTxn    bool      // a destination transaction is open (exactly-once)
	txnBegan time.Time // when the open (or last) destination transaction began
	lastCopy time.Time

	lastProgress  time.Time
	lastDiscover  time.Time
	lastGroupSync time.Time
}

func (s *session) close() {
	if s.cons != nil {
		// A poll may have left a rebalance blocked (BlockRebalanceOnPoll); leaving the group waits for it.
		s.cons.AllowRebalance()
		s.cons.Close()
	}
	if s.prod != nil {
		s.prod.Close()
	}
}

func (s *session) part(k tp) *offsetmap.Partition {
	p := s.maps[k]
	if p == nil {
		p = offsetmap.New()
		s.maps[k] = p
	}
	return p
}

func (s *session) run(ctx context.Context) error {
	r, cfg := s.r, s.r.cfg
	s.stage = "list topics"
	var err error
	if s.topics, err = listTopics(ctx, r.src, r.dst, r.sel); err != nil {
		return err
	}
	if len(s.topics) == 0 {
		return fmt.Errorf("source cluster %s: %q: %w", cfg.Source.Bootstrap, cfg.Topics, ErrNoTopics)
	}
	if err := s.newProducer(ctx); err != nil {
		return err
	}
	// Exactly-once: the producer above fenced every earlier incarnation, so the map read now is final.
	s.stage = "load offset map"
	if err := s.loadMap(ctx); err != nil {
		return err
	}
	if err := checkTopics(s.topics, func(t string) bool {
		for k := range s.maps {
			if k.Topic == t {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	// Only before the first copy: a later session may see destination metadata lag behind a topic the
	// first one created, and must not end a long-running mirror for it.
	if r.summary.Sessions == 1 {
		if err := s.checkMapDestinations(); err != nil {
			return err
		}
	}
	if cfg.Migrate && r.targets == nil {
		s.stage = "list source offsets"
		if err := s.loadTargets(ctx); err != nil {
			return err
		}
	}
	s.stage = "create destination topics"
	if err := ensureTopics(ctx, r.dst, s.topics); err != nil {
		return err
	}
	if err := ensureOffsetsTopic(ctx, r.dst, cfg.Name); err != nil {
		return err
	}
	if err := s.newConsumer(ctx); err != nil {
		return err
	}
	s.copying = true
	r.copying = true
	s.lastDiscover, s.lastProgress, s.lastCopy = time.Now(), time.Now(), time.Now()
	r.summary.Topics = slices.Sorted(maps.Keys(s.topics))
	r.summary.Partitions = 0
	for _, ti := range s.topics {
		r.summary.Partitions += int(ti.partitions)
	}
	cfg.Logger.Info("mirror session started", "mode", cfg.Mode, "name", cfg.Name, "topics", len(s.topics),
		"partitions", r.summary.Partitions, "source", r.src.id, "destination", r.dst.id)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cfg.Migrate && s.migrated() {
			s.stage = "final group sync"
			if err := s.finalGroupSync(ctx); err != nil {
				return err
			}
			s.progress(true)
			r.summary.Positions = map[string]int64{}
			for k, p := range s.maps {
				r.summary.Positions[fmt.Sprintf("%s/%d", k.Topic, k.Partition)] = p.Pos()
			}
			return nil
		}
		if s.reload.Swap(false) {
			s.stage = "reload offset map"
			r.cfg.Logger.Debug("partitions assigned: reloading the offset map")
			// Entries are merged into the in-memory map (applying an entry twice is harmless), so this
			// session's own progress survives even if the destination's metadata lags behind.
			if err := s.loadMap(ctx); err != nil {
				return err
			}
		}
		if err := s.periodic(ctx); err != nil {
			return err
		}
		s.stage = "poll source"
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := s.cons.PollRecords(pctx, cfg.MaxPollRecords)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("source cluster: fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			s.hw[tp{Topic: fp.Topic, Partition: fp.Partition}] = fp.HighWatermark
		})
		if fetches.NumRecords() == 0 {
			if cfg.Mode == AtLeastOnce {
				s.cons.AllowRebalance()
			}
			if cfg.Migrate {
				if err := s.probeTails(ctx); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.copyBatch(ctx, fetches.Records()); err != nil {
			return err
		}
		if cfg.Mode == AtLeastOnce {
			s.cons.AllowRebalance()
		}
	}
}

// newProducer creates the destination producer; in exactly-once mode it also initializes the
// transactional id, which fences (and aborts the open transaction of) any earlier incarnation.
func (s *session) newProducer(ctx context.Context) error {
	r, cfg := s.r, s.r.cfg
	s.stage = "destination producer"
	opts := append(slices.Clone(r.dst.opts),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(maxMessageBytes(ctx, r.dst, s.topics)),
		kgo.MaxBufferedRecords(2*cfg.MaxPollRecords+1000),
		kgo.ProducerLinger(0),
		// Destination topics are often created a moment before the first produce, and Apache Kafka lists a
		// new partition's leader only after a short delay. With the default 5 s minimum between metadata
		// refreshes, one partition without a leader stalled the first batch for 5 s (seen on every Kafka
		// destination); the producer may now ask again after 250 ms.
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if cfg.Mode == ExactlyOnce {
		opts = append(opts, kgo.TransactionalID("strom-mirror-"+cfg.Name), kgo.TransactionTimeout(cfg.TransactionTimeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("destination cluster: producer: %w", err)
	}
	s.prod = cl
	if cfg.Mode == ExactlyOnce {
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, _, err := cl.ProducerID(ictx); err != nil {
			return fmt.Errorf("destination cluster: init transactional id strom-mirror-%s: %w", cfg.Name, err)
		}
	}
	return nil
}

// loadMap reads the offset-map topic from the destination (read_committed) up to its last stable offset.
func (s *session) loadMap(ctx context.Context) error {
	r := s.r
	name := offsetsTopic(r.cfg.Name)
	var d kadm.TopicDetail
	ok := false
	// Once a session copied, the topic exists: right after this process created it, or from a
	// destination broker whose metadata lags, it may be missing for a moment, and taking that for a new
	// mirror would copy everything again. Only before any session copied does missing mean new.
	fresh := !r.copying
	for attempt := 0; ; attempt++ {
		td, err := r.dst.adm.ListTopics(ctx, name)
		if err != nil {
			return fmt.Errorf("destination cluster: list topics: %w", err)
		}
		d, ok = td[name]
		if fresh || (ok && d.Err == nil) || attempt == 20 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	switch {
	case (!ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition)) && fresh:
		return nil // a new mirror
	case !ok:
		return fmt.Errorf("destination cluster: offset-map topic %s not found: %w", name, kerr.UnknownTopicOrPartition)
	case d.Err != nil:
		return fmt.Errorf("destination cluster: offset-map topic %s: %w", name, d.Err)
	case len(d.Partitions) == 0:
		return fmt.Errorf("destination cluster: offset-map topic %s has no partitions", name)
	}
	ends, err := r.dst.adm.ListCommittedOffsets(ctx, name)
	if err != nil {
		return fmt.Errorf("destination cluster: end offset of %s: %w", name, err)
	}
	end, ok := ends.Lookup(name, 0)
	if !ok || end.Err != nil {
		return fmt.Errorf("destination cluster: end offset of %s: %v", name, end.Err)
	}
	rd := partitionReader{cl: r.dst.cl, topic: name, topicID: d.ID, partition: 0, leader: d.Partitions[0].Leader}
	var bad int
	_, err = rd.read(ctx, 0, end.Offset, func(rec *kgo.Record) error {
		e, err := offsetmap.Decode(rec.Key, rec.Value)
		if err != nil {
			bad++
			return nil
		}
		s.part(e.Key).Load(e.Run, e.Pos)
		return nil
	})
	if err != nil {
		return fmt.Errorf("destination cluster: read offset map %s: %w", name, err)
	}
	if bad > 0 {
		r.cfg.Logger.Warn("offset map: skipped undecodable entries", "topic", name, "count", bad)
	}
	if r.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		pos := map[string]int64{}
		for k, p := range s.maps {
			pos[fmt.Sprintf("%s/%d", k.Topic, k.Partition)] = p.Pos()
		}
		r.cfg.Logger.Debug("offset map loaded", "topic", name, "end", end.Offset, "positions", pos)
	}
	return nil
}

// checkMapDestinations fails when the offset map holds a position for a source topic whose destination
// topic does not exist. The map is keyed by source partition only, so such positions belong to another
// destination topic (the topic was deleted, or --rename changed under the same --name): resuming from them
// would skip records, and a migrate would report success having copied nothing.
func (s *session) checkMapDestinations() error {
	for _, k := range slices.SortedFunc(maps.Keys(s.maps), func(a, b tp) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	}) {
		ti := s.topics[k.Topic]
		if ti == nil || ti.dstPartitions > 0 || s.maps[k].Pos() <= 0 {
			continue
		}
		return fmt.Errorf("offset map %s holds source position %d of %s/%d, but destination topic %s does not exist "+
			"(deleted, or --rename changed under the same --name); use a new --name to copy again: %w",
			offsetsTopic(s.r.cfg.Name), s.maps[k].Pos(), k.Topic, k.Partition, ti.dst, ErrBadConfig)
	}
	return nil
}

// loadTargets records the migrate end offsets: the source's last stable offsets now.
func (s *session) loadTargets(ctx context.Context) error {
	r := s.r
	names := slices.Sorted(maps.Keys(s.topics))
	ends, err := r.src.adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("source cluster: end offsets: %w", err)
	}
	starts, err := r.src.adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("source cluster: start offsets: %w", err)
	}
	r.targets, r.starts = map[tp]int64{}, map[tp]int64{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("source cluster: end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		r.targets[tp{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	starts.Each(func(o kadm.ListedOffset) {
		r.starts[tp{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	r.cfg.Logger.Debug("migrate targets", "ends", r.targets, "starts", r.starts)
	return ferr
}

// migrated reports whether every target partition reached its end offset.
func (s *session) migrated() bool {
	for k, end := range s.r.targets {
		if end <= s.r.starts[k] {
			continue
		}
		if p := s.maps[k]; p == nil || p.Pos() < end {
			return false
		}
	}
	return true
}

// newConsumer creates the source consumer: a group member (at-least-once) or a reader of every selected
// partition from the positions in the offset map (exactly-once).
func (s *session) newConsumer(ctx context.Context) error {
	r, cfg := s.r, s.r.cfg
	s.stage = "source consumer"
	opts := append(slices.Clone(r.src.opts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(400*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if cfg.Mode == AtLeastOnce {
		opts = append(opts,
			kgo.ConsumerGroup(cfg.Name),
			kgo.ConsumeTopics(slices.Sorted(maps.Keys(s.topics))...),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.SessionTimeout(cfg.SessionTimeout),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { s.reload.Store(true) }),
		)
		if cfg.InstanceID != "" {
			opts = append(opts, kgo.InstanceID(cfg.InstanceID))
		}
	} else {
		opts = append(opts, kgo.ConsumePartitions(s.startOffsets(s.topics)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("source cluster: consumer: %w", err)
	}
	s.cons = cl
	return nil
}

// startOffsets returns where exactly-once reading resumes for the partitions of topics.
func (s *session) startOffsets(topics map[string]*topicInfo) map[string]map[int32]kgo.Offset {
	out := map[string]map[int32]kgo.Offset{}
	for name, ti := range topics {
		out[name] = map[int32]kgo.Offset{}
		for p := int32(0); p < ti.partitions; p++ {
			o := kgo.NewOffset().AtStart()
			if m := s.maps[tp{Topic: name, Partition: p}]; m != nil && m.Pos() >= 0 {
				o = kgo.NewOffset().At(m.Pos())
			}
			out[name][p] = o
		}
	}
	return out
}

// copyBatch copies one poll's records and makes the new positions durable: records acknowledged, then
// offset-map entries, then (at-least-once) the source commit; in exactly-once mode all in one
// destination transaction.
func (s *session) copyBatch(ctx context.Context, recs []*kgo.Record) error {
	r, cfg := s.r, s.r.cfg
	out := make([]*kgo.Record, 0, len(recs))
	copied := make([]bool, len(recs))
	var nbytes int64
	batchCount := map[string]topicCount{}
	for i, rec := range recs {
		if rec.Attrs.IsControl() || s.fromDestination(rec) {
			continue
		}
		ti := s.topics[rec.Topic]
		if ti == nil {
			continue // a topic dropped from the selection meanwhile: not ours to copy
		}
		copied[i] = true
		n := int64(len(rec.Key) + len(rec.Value))
		nbytes += n
		out = append(out, s.destRecord(ti, rec))
		c := batchCount[rec.Topic]
		c.records++
		c.bytes += n
		batchCount[rec.Topic] = c
	}
	if cfg.Mode == ExactlyOnce {
		s.stage = "begin transaction"
		if err := s.prod.BeginTransaction(); err != nil {
			return fmt.Errorf("destination cluster: begin transaction: %w", err)
		}
		s.inTxn, s.txnBegan = true, time.Now()
	}
	s.stage = "produce"
	if len(out) > 0 {
		if err := s.prod.ProduceSync(ctx, out...).FirstErr(); err != nil {
			return s.txnErr(fmt.Errorf("destination cluster: produce: %w", err))
		}
	}
	ackAt := time.Now()
	j := 0
	touched := map[tp]bool{}
	for i, rec := range recs {
		k := tp{Topic: rec.Topic, Partition: rec.Partition}
		if s.topics[rec.Topic] == nil {
			continue
		}
		touched[k] = true
		if copied[i] {
			s.part(k).Add(rec.Offset, out[j].Offset)
			j++
		} else {
			s.part(k).Advance(rec.Offset + 1)
		}
	}
	if err := s.persist(ctx, touched); err != nil {
		return err
	}
	r.summary.Records += int64(len(out))
	r.summary.Bytes += nbytes
	r.m.records.Add(float64(len(out)))
	r.m.bytes.Add(float64(nbytes))
	// Counted only now that the batch is durable, so the view never shows records a retry copies again.
	for t, c := range batchCount {
		tc := r.copied[t]
		if tc == nil {
			tc = &topicCount{}
			r.copied[t] = tc
		}
		tc.records += c.records
		tc.bytes += c.bytes
		r.m.topicRecords.WithLabelValues(t).Add(float64(c.records))
		r.m.topicBytes.WithLabelValues(t).Add(float64(c.bytes))
	}
	if len(out) > 0 {
		r.m.latency.Observe(ackAt.Sub(out[len(out)-1].Timestamp).Seconds())
		s.lastCopy = ackAt
	}
	return nil
}

// persist writes the offset-map changes of the touched partitions and commits: the transaction in
// exactly-once mode (opened by the caller, or here when none is open), the source group offsets in
// at-least-once mode.
func (s *session) persist(ctx context.Context, touched map[tp]bool) error {
	cfg := s.r.cfg
	var entries []*kgo.Record
	for k := range touched {
		p := s.maps[k]
		for _, run := range p.Drain() {
			e := offsetmap.Entry{Key: k, Run: run, Pos: p.Pos()}
			entries = append(entries, &kgo.Record{Topic: offsetsTopic(cfg.Name), Partition: 0,
				Key: e.EncodeKey(), Value: e.EncodeValue()})
		}
	}
	if cfg.Mode == ExactlyOnce && !s.inTxn {
		s.txnBegan = time.Now()
		if err := s.prod.BeginTransaction(); err != nil {
			return fmt.Errorf("destination cluster: begin transaction: %w", err)
		}
		s.inTxn = true
	}
	s.stage = "write offset map"
	if len(entries) > 0 {
		if err := s.prod.ProduceSync(ctx, entries...).FirstErr(); err != nil {
			return s.txnErr(fmt.Errorf("destination cluster: write offset map: %w", err))
		}
	}
	if cfg.Mode == ExactlyOnce {
		s.stage = "commit transaction"
		s.inTxn = false
		if err := s.prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return s.txnErr(fmt.Errorf("destination cluster: commit transaction: %w", err))
		}
		return nil
	}
	s.stage = "commit source offsets"
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for k := range touched {
		if offsets[k.Topic] == nil {
			offsets[k.Topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[k.Topic][k.Partition] = kgo.EpochOffset{Epoch: -1, Offset: s.maps[k].Pos()}
	}
	var cerr error
	s.cons.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("source cluster: commit offsets of group %s: %w", cfg.Name, cerr)
	}
	return nil
}

// txnErr maps fencing errors to ErrFenced, except where the transaction's own timeout explains them.
func (s *session) txnErr(err error) error {
	return fenceCause(err, time.Since(s.txnBegan), s.r.cfg.TransactionTimeout)
}

// fenceCause classifies err, met by a transaction open for openFor under timeout. A coordinator fences a
// producer in two cases: another producer initialized the same transactional id (a second mirror with
// this name: ErrFenced, which ends Run, since two mirrors would take turns), or the transaction
// outlived its timeout and the coordinator aborted it, bumping the epoch (the destination was slow or
// unreachable for longer than the timeout). The second is reported as a plain error, so Run starts a
// new session from the last committed batch: nothing of the aborted transaction is visible, and the
// new session's producer takes the id back. A denied transactional id is ErrFenced as well: retrying
// cannot help.
func fenceCause(err error, openFor, timeout time.Duration) error {
	fenced := errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
	switch {
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("%w: %w", ErrFenced, err)
	case fenced && openFor >= timeout:
		return fmt.Errorf("destination transaction open for %v, past its %v timeout, was aborted by its coordinator: %w",
			openFor.Round(time.Millisecond), timeout, err)
	case fenced:
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// fromDestination reports whether rec was copied from the destination cluster (active-active).
func (s *session) fromDestination(rec *kgo.Record) bool {
	for _, h := range rec.Headers {
		if h.Key == OriginHeader {
			return string(h.Value) == s.r.dst.id
		}
	}
	return false
}

// destRecord builds the destination copy of rec: same partition, key, value, timestamp and headers, plus
// strom.origin (unless present) and strom.offset (replaced).
func (s *session) destRecord(ti *topicInfo, rec *kgo.Record) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+2)
	hasOrigin := false
	for _, h := range rec.Headers {
		switch h.Key {
		case OffsetHeader:
			continue
		case OriginHeader:
			hasOrigin = true
		}
		hs = append(hs, h)
	}
	if !hasOrigin {
		hs = append(hs, kgo.RecordHeader{Key: OriginHeader, Value: []byte(s.r.src.id)})
	}
	hs = append(hs, kgo.RecordHeader{Key: OffsetHeader, Value: binary.BigEndian.AppendUint64(nil, uint64(rec.Offset))})
	return &kgo.Record{Topic: ti.dst, Partition: rec.Partition, Key: rec.Key, Value: rec.Value,
		Timestamp: rec.Timestamp, Headers: hs}
}

// periodic runs the time-driven work between batches: progress, discovery, group sync.
func (s *session) periodic(ctx context.Context) error {
	cfg := s.r.cfg
	now := time.Now()
	interval := cfg.ProgressInterval
	if cfg.ProgressView == ViewTable {
		interval = tableInterval
	}
	if now.Sub(s.r.lastSample) >= time.Second {
		s.r.sample(now, s.topics)
	}
	if now.Sub(s.lastProgress) >= interval {
		s.progress(false)
	}
	if !cfg.Migrate && now.Sub(s.lastDiscover) >= cfg.DiscoverInterval {
		s.lastDiscover = now
		s.stage = "discover topics"
		if err := s.discover(ctx); err != nil {
			return err
		}
	}
	if cfg.Groups != "" && now.Sub(s.lastGroupSync) >= cfg.GroupSyncInterval {
		s.lastGroupSync = now
		s.stage = "group sync"
		s.syncGroups(ctx)
	}
	return nil
}

// discover picks up new matching topics and partition increases on the source.
func (s *session) discover(ctx context.Context) error {
	r := s.r
	topics, err := listTopics(ctx, r.src, r.dst, r.sel)
	if err != nil {
		return err
	}
	changed := map[string]*topicInfo{}
	for name, ti := range topics {
		old := s.topics[name]
		if old == nil || old.partitions < ti.partitions || ti.dstPartitions < ti.partitions {
			changed[name] = ti
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if err := ensureTopics(ctx, r.dst, changed); err != nil {
		return err
	}
	// The producer must see grown destination partitions before records for them arrive; a record that
	// still races ahead fails its batch, and the next session starts from the durable position.
	s.prod.ForceMetadataRefresh()
	var added []string
	newParts := map[string]map[int32]kgo.Offset{}
	for name, ti := range changed {
		old := s.topics[name]
		from := int32(0)
		if old == nil {
			added = append(added, name)
		} else {
			from = old.partitions
		}
		for p := from; p < ti.partitions; p++ {
			if newParts[name] == nil {
				newParts[name] = map[int32]kgo.Offset{}
			}
			newParts[name][p] = kgo.NewOffset().AtStart()
		}
		s.topics[name] = ti
	}
	r.cfg.Logger.Info("mirror discovered topics or partitions", "new_topics", added, "changed", len(changed))
	if r.cfg.Mode == AtLeastOnce {
		if len(added) > 0 {
			s.cons.AddConsumeTopics(added...)
		}
		// Partition increases of consumed topics reach the group through metadata refreshes.
		s.cons.ForceMetadataRefresh()
	} else if len(newParts) > 0 {
		s.cons.AddConsumePartitions(newParts)
	}
	return nil
}

// probeTails advances, for migrate, partitions whose remaining range up to the target holds no data
// record (a compacted-away tail, or a tail of transaction markers the consumer has not shown us).
func (s *session) probeTails(ctx context.Context) error {
	if time.Since(s.lastCopy) < time.Second {
		return nil
	}
	touched := map[tp]bool{}
	for k, end := range s.r.targets {
		p := s.part(k)
		from := max(p.Pos(), s.r.starts[k])
		if from >= end {
			continue
		}
		ti := s.topics[k.Topic]
		if ti == nil {
			continue
		}
		rd := partitionReader{cl: s.r.src.cl, topic: k.Topic, topicID: ti.srcID, partition: k.Partition, leader: ti.leaders[k.Partition]}
		data := errors.New("data record")
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		reached, err := rd.read(pctx, from, end, func(rec *kgo.Record) error {
			if s.fromDestination(rec) {
				return nil
			}
			return data
		})
		cancel()
		if err != nil || reached < end {
			continue // records to copy remain, or the probe failed: the consumer will get there
		}
		s.r.cfg.Logger.Debug("migrate: no data record left below the end offset", "topic", k.Topic,
			"partition", k.Partition, "from", from, "end", end)
		p.Advance(end)
		touched[k] = true
	}
	if len(touched) == 0 {
		return nil
	}
	return s.persist(ctx, touched)
}

// sample adds the current counters of topics to their rate windows. A topic nothing was copied of yet
// is sampled at zero, so its first copied batch already shows a rate.
func (r *runner) sample(now time.Time, topics map[string]*topicInfo) {
	r.lastSample = now
	for t := range topics {
		w := r.rates[t]
		if w == nil {
			w = &rateWindow{window: r.cfg.RateWindow}
			r.rates[t] = w
		}
		var c topicCount
		if tc := r.copied[t]; tc != nil {
			c = *tc
		}
		w.add(now, c.records, c.bytes)
	}
}

// perTopic returns the per-topic copy totals of topics, sorted by name.
func (r *runner) perTopic(topics map[string]*topicInfo) []TopicSummary {
	out := make([]TopicSummary, 0, len(topics))
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		ti := topics[name]
		ts := TopicSummary{Topic: name, Destination: ti.dst, Partitions: int(ti.partitions)}
		if c := r.copied[name]; c != nil {
			ts.Records, ts.Bytes = c.records, c.bytes
		}
		out = append(out, ts)
	}
	return out
}

// partitionLag returns the records left to copy in partition k and whether it is caught up (see
// TopicProgress.Lag and PartitionsDone).
func (s *session) partitionLag(k tp) (lag int64, done bool) {
	pos := int64(0)
	if p := s.maps[k]; p != nil && p.Pos() > 0 {
		pos = p.Pos()
	}
	if s.r.targets != nil {
		end, ok := s.r.targets[k]
		if !ok {
			return 0, true // not there when migrate started: migrate does not wait for it
		}
		pos = max(pos, s.r.starts[k])
		if end <= pos {
			return 0, true
		}
		return end - pos, false
	}
	hw, ok := s.hw[k]
	if !ok {
		return 0, false
	}
	if hw <= pos {
		return 0, true
	}
	return hw - pos, false
}

// snapshot gathers the progress of every selected topic at now.
func (s *session) snapshot(now time.Time, final bool) progressSnapshot {
	r := s.r
	snap := progressSnapshot{Time: now, Elapsed: now.Sub(r.started), Final: final, Session: r.summary.Sessions}
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		ti := s.topics[name]
		t := TopicProgress{Topic: name, Partitions: int(ti.partitions)}
		for p := int32(0); p < ti.partitions; p++ {
			lag, done := s.partitionLag(tp{Topic: name, Partition: p})
			t.Lag += lag
			if done {
				t.PartitionsDone++
			}
		}
		if c := r.copied[name]; c != nil {
			t.Records, t.Bytes = c.records, c.bytes
		}
		if w := r.rates[name]; w != nil {
			t.RecordsRate, t.BytesRate = w.rates()
		}
		t.ETASeconds = eta(t.Lag, t.RecordsRate)
		r.m.topicLag.WithLabelValues(name).Set(float64(t.Lag))
		snap.Topics = append(snap.Topics, t)
	}
	snap.Total = total(snap.Topics)
	return snap
}

// progress logs the copy's progress and shows it on Config.Progress in the configured view.
func (s *session) progress(final bool) {
	r := s.r
	now := time.Now()
	s.lastProgress = now
	r.sample(now, s.topics)
	snap := s.snapshot(now, final)
	t := snap.Total
	r.m.lag.Set(float64(t.Lag))
	level := slog.LevelInfo
	if r.cfg.ProgressView == ViewTable && r.cfg.Progress != nil {
		level = slog.LevelDebug // the table shows it; log lines on the same terminal would break the redraw
	}
	r.cfg.Logger.Log(context.Background(), level, "mirror progress", "records", t.Records, "bytes", t.Bytes,
		"records_per_sec", int64(t.RecordsRate), "lag", t.Lag)
	if r.cfg.Progress == nil {
		return
	}
	var out string
	switch r.cfg.ProgressView {
	case ViewJSON:
		out = string(renderJSON(snap))
	case ViewTable:
		lines := renderTable(snap)
		out = redraw(r.tableLines, lines)
		r.tableLines = len(lines)
	default:
		out = renderLog(snap)
	}
	_, _ = io.WriteString(r.cfg.Progress, out)
}
