package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/stromhq/strom/storage"
)

// The lean producer (--client lean) measures what a cluster can take rather than what a client can give.
// franz-go spends about 1.3 s of CPU per GB produced on encoding records, promises and bookkeeping; on a
// machine whose cores the client and the broker share, that decides the rate for any broker efficient
// enough. The lean producer does what a producer must and nothing per record: it asks for a producer id,
// sends one batch per partition per request (full batches of batchMaxBytes, as franz-go sends at max rate)
// with the sequence numbers idempotence needs, a fresh timestamp and CRC-32C, keeps leanInflight requests
// in flight per connection, and counts what the acknowledgements cover. The record bytes of each batch
// are encoded once; every request re-stamps the 61-byte header and recomputes the CRC.
const (
	// batchMaxBytes is franz-go's default ProducerBatchMaxBytes (and the Java client's batch.size
	// maximum a broker accepts by default).
	batchMaxBytes = 1_000_012
	// leanInflight is the most produce requests in flight per connection; 5 is the most Kafka keeps
	// ordered for an idempotent producer, and franz-go's default.
	leanInflight = 5
	// leanProduceVersion is the newest Produce version that names topics (v13 carries topic ids).
	leanProduceVersion = 12
	// leanTimeout bounds dialing, the setup requests and waiting for any one response.
	leanTimeout = 30 * time.Second
)

// Batch header positions (Kafka's v2 record batch), the fields a lean request re-stamps.
const (
	batchLengthAt     = 8
	batchCRCAt        = 17
	batchAttributesAt = 21
	lastOffsetDeltaAt = 23
	baseTimestampAt   = 27
	maxTimestampAt    = 35
	producerIDAt      = 43
	producerEpochAt   = 51
	baseSequenceAt    = 53
	recordCountAt     = 57
	batchHeaderBytes  = 61
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// leanTemplate is an encoded batch of records records with value size bytes each; a prefix of its record
// section is a valid section for fewer records (offset deltas count from 0).
type leanTemplate struct {
	batch   []byte
	records int
	ends    []int // ends[i]: end of record i in batch
	size    int   // value bytes per record
}

func newLeanTemplate(valueSize int) *leanTemplate {
	value := make([]byte, valueSize)
	// Random bytes, as for franz-go runs: nothing downstream can compress them away.
	_, _ = rand.Read(value)
	one := storage.BuildBatch(storage.BatchHeader{}, []storage.Record{{Value: value}})
	perRecord := len(one) - batchHeaderBytes + 2 // offset deltas above 63 take a second varint byte
	n := max(1, (batchMaxBytes-batchHeaderBytes)/perRecord)
	recs := make([]storage.Record, n)
	for i := range recs {
		recs[i] = storage.Record{OffsetDelta: int32(i), Value: value}
	}
	batch := storage.BuildBatch(storage.BatchHeader{LastOffsetDelta: int32(n - 1)}, recs)
	t := &leanTemplate{batch: batch, size: valueSize}
	// Walk the record lengths to find where each record ends; the estimate above may be a byte or two
	// short for the last records (longer varints), so stop at the batch limit.
	at := batchHeaderBytes
	for range n {
		l, k := kbin.Varint(batch[at:])
		at += k + int(l)
		if at > batchMaxBytes && len(t.ends) > 0 {
			break
		}
		t.ends = append(t.ends, at)
	}
	t.records = len(t.ends)
	return t
}

// nextSequence is the sequence after n records from s: Kafka's sequences wrap from MaxInt32 to 0.
func nextSequence(s int32, n int) int32 {
	v := int64(s) + int64(n)
	if v > math.MaxInt32 {
		v -= math.MaxInt32 + 1
	}
	return int32(v)
}

// stamp turns buf (a copy of the template) into a batch of its first n records for producer pid/epoch
// starting at sequence seq (-1 without a producer id), timestamped now, and returns the batch's bytes.
func (t *leanTemplate) stamp(buf []byte, n int, pid int64, epoch int16, seq int32, now int64) []byte {
	if pid < 0 {
		seq = -1 // no producer id, no sequence: a plain acks=1 batch
	}
	b := buf[:t.ends[n-1]]
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(len(b)-12))
	binary.BigEndian.PutUint16(b[batchAttributesAt:], 0)
	binary.BigEndian.PutUint32(b[lastOffsetDeltaAt:], uint32(n-1))
	binary.BigEndian.PutUint64(b[baseTimestampAt:], uint64(now))
	binary.BigEndian.PutUint64(b[maxTimestampAt:], uint64(now))
	binary.BigEndian.PutUint64(b[producerIDAt:], uint64(pid))
	binary.BigEndian.PutUint16(b[producerEpochAt:], uint16(epoch))
	binary.BigEndian.PutUint32(b[baseSequenceAt:], uint32(seq))
	binary.BigEndian.PutUint32(b[recordCountAt:], uint32(n))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], castagnoli))
	return b
}

// leanConn is one lean client's connection to one partition leader. A producer's writer goroutine (send)
// issues requests in sequence order; its reader goroutine (receive) takes their answers in the same order,
// as Kafka answers a connection's requests in order. A consumer's one goroutine (fetchLoop) does both.
type leanConn struct {
	nc      net.Conn
	rd      *bufio.Reader
	fmt     *kmsg.RequestFormatter
	corr    int32
	version int16 // Produce or Fetch version
	parts   []int32
	seq     []int32 // next sequence per parts[i]; only the writer touches it
	rbuf    []byte  // answer frames; only the reader touches it once the pipeline runs
}

// leanSlot is one request's buffers, reused once its answer is in.
type leanSlot struct {
	bufs    [][]byte // per partition of the connection, a copy of the template
	req     kmsg.ProduceRequest
	frame   []byte
	corr    int32
	sent    time.Time
	records int64
}

// leanProducer is one lean client: its own producer id and one connection per leader.
type leanProducer struct {
	r     *runner
	tmpl  *leanTemplate
	conns []*leanConn
	pid   int64
	epoch int16
	quota atomic.Int64 // records left to send; only meaningful when limited
	limit bool
}

// produceLean runs cfg.Producers lean producers until the deadline or the record budget. It returns when
// every request sent was answered or failed.
func (r *runner) produceLean(ctx context.Context, deadline time.Time) error {
	leaders, addrs, err := r.leaders(ctx)
	if err != nil {
		return err
	}
	tmpl := newLeanTemplate(r.cfg.RecordSize)
	n := r.cfg.Producers
	var producers []*leanProducer
	defer func() {
		for _, p := range producers {
			p.close()
		}
	}()
	for i := range n {
		p := &leanProducer{r: r, tmpl: tmpl, pid: -1, epoch: -1}
		if r.cfg.Records > 0 {
			quota := r.cfg.Records / int64(n)
			if int64(i) < r.cfg.Records%int64(n) {
				quota++
			}
			p.limit = true
			p.quota.Store(quota)
		}
		producers = append(producers, p)
		if err := p.connect(ctx, leaders, addrs); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, p := range producers {
		for _, c := range p.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.run(ctx, c, deadline); err != nil {
					r.c.fail(err)
				}
			}()
		}
	}
	wg.Wait()
	return nil
}

// leaders maps the topic's partitions to their leaders and the leaders to their addresses. In a cluster
// of several brokers the one asked may not know of a topic another just created, or of its leaders: such
// answers are asked again until setupTimeout.
func (r *runner) leaders(ctx context.Context) (map[int32][]int32, map[int32]string, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cl, err := r.adminClient()
	if err != nil {
		return nil, nil, fmt.Errorf("metadata client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var leaders map[int32][]int32
	var addrs map[int32]string
	err = untilSetup(ctx, func() (bool, error) {
		var err error
		leaders, addrs, err = r.leadersOnce(ctx, adm)
		return true, err
	})
	if err != nil {
		return nil, nil, err
	}
	return leaders, addrs, nil
}

func (r *runner) leadersOnce(ctx context.Context, adm *kadm.Client) (map[int32][]int32, map[int32]string, error) {
	md, err := adm.Metadata(ctx, r.cfg.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata of %q: %w", r.cfg.Topic, err)
	}
	td, ok := md.Topics[r.cfg.Topic]
	if !ok || td.Err != nil {
		return nil, nil, fmt.Errorf("metadata of %q: %v", r.cfg.Topic, td.Err)
	}
	addrs := map[int32]string{}
	for _, b := range md.Brokers {
		addrs[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	leaders := map[int32][]int32{}
	for _, p := range r.partitions {
		pd, ok := td.Partitions[p]
		if !ok || pd.Leader < 0 {
			return nil, nil, fmt.Errorf("partition %s/%d has no leader", r.cfg.Topic, p)
		}
		if _, ok := addrs[pd.Leader]; !ok {
			return nil, nil, fmt.Errorf("partition %s/%d: leader %d is not in the metadata", r.cfg.Topic, p, pd.Leader)
		}
		leaders[pd.Leader] = append(leaders[pd.Leader], p)
	}
	return leaders, addrs, nil
}

// connect dials every leader, negotiates versions, and with acks=all obtains a producer id.
func (p *leanProducer) connect(ctx context.Context, leaders map[int32][]int32, addrs map[int32]string) error {
	for leader, parts := range leaders {
		c, versions, err := p.r.dialLean(ctx, "lean producer", leader, addrs[leader])
		if err != nil {
			return err
		}
		c.parts, c.seq = parts, make([]int32, len(parts))
		p.conns = append(p.conns, c)
		v, ok := versions[0]
		if !ok || v < 3 {
			return fmt.Errorf("lean producer: broker %d at %s does not take Produce v3 or later (v2 record batches)", leader, addrs[leader])
		}
		c.version = min(v, leanProduceVersion)
		if p.r.acks == -1 && p.pid < 0 {
			if err := p.initProducerID(ctx, c, versions[22]); err != nil {
				return err
			}
		}
	}
	return nil
}

// dialLean connects to broker id at addr with the run's dialer (TLS when configured), asks its API
// versions and authenticates when the run uses SASL. who names the client in errors. On an error after the
// dial the connection is closed.
func (r *runner) dialLean(ctx context.Context, who string, id int32, addr string) (*leanConn, map[int16]int16, error) {
	dial, err := r.conn.Dialer()
	if err != nil {
		return nil, nil, err
	}
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	mech, err := r.conn.Mechanism()
	if err != nil {
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, leanTimeout)
	nc, err := dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: dial broker %d at %s: %w", who, id, addr, err)
	}
	c := &leanConn{nc: nc, rd: bufio.NewReaderSize(nc, 64<<10),
		fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("strom-bench-lean"))}
	versions, err := c.apiVersions()
	if err == nil && mech != nil {
		err = c.authenticate(ctx, mech, versions)
	}
	if err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("%s: broker %d at %s: %w", who, id, addr, err)
	}
	return c, versions, nil
}

// initProducerID obtains the idempotent producer id and epoch over c, waiting out retriable errors
// (a cluster that has just started answers COORDINATOR_LOAD_IN_PROGRESS for a moment).
func (p *leanProducer) initProducerID(ctx context.Context, c *leanConn, maxVersion int16) error {
	giveUp := time.Now().Add(setupTimeout)
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = min(maxVersion, req.MaxVersion())
		req.TransactionTimeoutMillis = 60000
		resp := kmsg.NewPtrInitProducerIDResponse()
		if err := c.roundTrip(req, resp); err != nil {
			return fmt.Errorf("lean producer: init producer id: %w", err)
		}
		err := kerr.ErrorForCode(resp.ErrorCode)
		if err == nil {
			p.pid, p.epoch = resp.ProducerID, resp.ProducerEpoch
			return nil
		}
		if !kerr.IsRetriable(err) || time.Now().After(giveUp) {
			return fmt.Errorf("lean producer: init producer id: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(primeBackoff):
		}
	}
}

func (p *leanProducer) close() {
	for _, c := range p.conns {
		_ = c.nc.Close()
	}
}

// apiVersions returns the newest version of every API key the broker takes.
func (c *leanConn) apiVersions() (map[int16]int16, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "strom-bench"
	req.ClientSoftwareVersion = "1"
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.roundTrip(req, resp); err != nil {
		return nil, fmt.Errorf("api versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("api versions: %w", err)
	}
	out := map[int16]int16{}
	for _, k := range resp.ApiKeys {
		out[k.ApiKey] = k.MaxVersion
	}
	return out, nil
}

// authenticate runs SASL with mech: SaslHandshake v1 names the mechanism, then SaslAuthenticate
// carries the mechanism's messages until it is done (KIP-152).
func (c *leanConn) authenticate(ctx context.Context, mech sasl.Mechanism, versions map[int16]int16) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = mech.Name()
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.roundTrip(hs, hsResp); err != nil {
		return fmt.Errorf("sasl handshake: %w", err)
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return fmt.Errorf("sasl handshake %s (broker offers %v): %w", mech.Name(), hsResp.SupportedMechanisms, err)
	}
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	sess, msg, err := mech.Authenticate(ctx, host)
	if err != nil {
		return fmt.Errorf("sasl %s: %w", mech.Name(), err)
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = min(versions[36], 2)
		req.SASLAuthBytes = msg
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.roundTrip(req, resp); err != nil {
			return fmt.Errorf("sasl authenticate: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			detail := ""
			if resp.ErrorMessage != nil {
				detail = ": " + *resp.ErrorMessage
			}
			return fmt.Errorf("sasl authenticate%s: %w", detail, err)
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("sasl %s: %w", mech.Name(), err)
		}
		if done {
			return nil
		}
		msg = next
	}
}

// roundTrip sends req and decodes its answer into resp; only for setup, before the pipeline starts.
func (c *leanConn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	_ = c.nc.SetDeadline(time.Now().Add(leanTimeout))
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	c.corr++
	if _, err := c.nc.Write(c.fmt.AppendRequest(nil, req, c.corr)); err != nil {
		return err
	}
	resp.SetVersion(req.GetVersion())
	return c.readInto(c.corr, resp)
}

// readInto reads the answer to request corr and decodes it into resp, whose version must be set. Only
// ApiVersions (key 18) keeps a v0 response header at flexible versions.
func (c *leanConn) readInto(corr int32, resp kmsg.Response) error {
	body, err := c.readResponse(corr, resp.IsFlexible() && resp.Key() != 18)
	if err != nil {
		return err
	}
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decode %s response: %w", kmsg.NameForKey(resp.Key()), err)
	}
	return nil
}

// readResponse reads one answer frame into c.rbuf and returns its body after the response header, checking
// the correlation id. Flexible headers (all but ApiVersions') end in tagged fields, which are skipped.
func (c *leanConn) readResponse(corr int32, flexible bool) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.rd, size[:]); err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("read response: frame of %d bytes", n)
	}
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	buf := c.rbuf[:n]
	if _, err := io.ReadFull(c.rd, buf); err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	rd := kbin.Reader{Src: buf}
	if got := rd.Int32(); got != corr {
		return nil, fmt.Errorf("read response: correlation id %d, want %d", got, corr)
	}
	if flexible {
		for range rd.Uvarint() {
			rd.Uvarint()
			rd.Span(int(rd.Uvarint()))
		}
	}
	if err := rd.Complete(); err != nil {
		return nil, fmt.Errorf("read response header: %w", err)
	}
	return rd.Src, nil
}

// run pipelines produce requests on c until the deadline, the quota or ctx ends, then waits for the
// answers to what it sent. The first error (a failed request or a partition error) ends it.
func (p *leanProducer) run(ctx context.Context, c *leanConn, deadline time.Time) error {
	free := make(chan *leanSlot, leanInflight)
	for range leanInflight {
		s := &leanSlot{bufs: make([][]byte, len(c.parts))}
		for i := range s.bufs {
			s.bufs[i] = append([]byte(nil), p.tmpl.batch...)
		}
		s.req = *kmsg.NewPtrProduceRequest()
		s.req.Version = c.version
		s.req.Acks = p.r.acks
		s.req.TimeoutMillis = int32(deliveryTimeout / time.Millisecond)
		t := kmsg.NewProduceRequestTopic()
		t.Topic = p.r.cfg.Topic
		for _, part := range c.parts {
			tp := kmsg.NewProduceRequestTopicPartition()
			tp.Partition = part
			t.Partitions = append(t.Partitions, tp)
		}
		s.req.Topics = []kmsg.ProduceRequestTopic{t}
		free <- s
	}
	t := newProduceTally(&p.r.c)
	// Every return below comes after the reader ended (or before it began).
	defer t.finish(p.r.produceLat, true)
	if err := p.prime(ctx, c, t); err != nil {
		return err
	}
	inflight := make(chan *leanSlot, leanInflight)
	recvErr := make(chan error, 1)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		err := p.receive(c, inflight, free, t)
		if err != nil {
			// Unblock a writer stuck on a connection nobody reads any more.
			_ = c.nc.Close()
		}
		recvErr <- err
	}()

	sendErr := p.send(ctx, c, deadline, free, inflight, recvDone)
	close(inflight)
	if sendErr != nil {
		// The reader may wait on an answer that will not come; end it.
		_ = c.nc.Close()
		if err := <-recvErr; err != nil {
			return err // the cause; the writer's error is its consequence
		}
		return sendErr
	}
	return <-recvErr
}

// prime writes one record to every partition of c with a synchronous request, repeated every
// primeBackoff for the partitions that answered a retriable error, until all took theirs: a cluster can
// list a leader for a partition it has just created before that leader takes writes (Kafka answers
// NOT_LEADER_OR_FOLLOWER for a moment), and the pipeline that follows treats every error as fatal. The
// primed records count as produced.
func (p *leanProducer) prime(ctx context.Context, c *leanConn, t *produceTally) error {
	var pending []int
	for i := range c.parts {
		if p.limit && p.quota.Add(-1) < 0 {
			p.quota.Add(1)
			break
		}
		pending = append(pending, i)
	}
	buf := append([]byte(nil), p.tmpl.batch[:p.tmpl.ends[0]]...)
	giveUp := time.Now().Add(setupTimeout)
	for len(pending) > 0 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks = c.version, p.r.acks
		req.TimeoutMillis = int32(leanTimeout / time.Millisecond)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = p.r.cfg.Topic
		for _, i := range pending {
			tp := kmsg.NewProduceRequestTopicPartition()
			tp.Partition = c.parts[i]
			// Each partition's batch is its own copy: kmsg encodes them all before the request goes.
			tp.Records = append([]byte(nil), p.tmpl.stamp(buf, 1, p.pid, p.epoch, c.seq[i], time.Now().UnixMilli())...)
			rt.Partitions = append(rt.Partitions, tp)
		}
		req.Topics = []kmsg.ProduceRequestTopic{rt}
		sent := time.Now()
		resp := kmsg.NewPtrProduceResponse()
		if err := c.roundTrip(req, resp); err != nil {
			return fmt.Errorf("lean producer: first produce: %w", err)
		}
		errs := map[int32]error{}
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				errs[rp.Partition] = kerr.ErrorForCode(rp.ErrorCode)
			}
		}
		var again []int
		var lastErr error
		for _, i := range pending {
			err, ok := errs[c.parts[i]]
			switch {
			case !ok:
				return fmt.Errorf("lean producer: first produce: no answer for %s/%d", p.r.cfg.Topic, c.parts[i])
			case err == nil:
				if p.pid >= 0 {
					c.seq[i] = nextSequence(c.seq[i], 1)
				}
				t.ackedN(time.Since(sent), 1, int64(p.tmpl.size))
			case kerr.IsRetriable(err):
				again, lastErr = append(again, i), err
			default:
				return fmt.Errorf("lean producer: first produce to %s/%d: %w", p.r.cfg.Topic, c.parts[i], err)
			}
		}
		pending = again
		if len(pending) > 0 {
			if time.Now().After(giveUp) {
				return fmt.Errorf("lean producer: %s/%d takes no writes after %v: %w", p.r.cfg.Topic, c.parts[pending[0]], setupTimeout, lastErr)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(primeBackoff):
			}
		}
	}
	return nil
}

// primeBackoff is the pause between prime's attempts.
const primeBackoff = 100 * time.Millisecond

// send is run's writer: it stamps and writes requests while slots are free.
func (p *leanProducer) send(ctx context.Context, c *leanConn, deadline time.Time, free <-chan *leanSlot,
	inflight chan<- *leanSlot, recvDone <-chan struct{}) error {
	per := p.tmpl.records
	for {
		var s *leanSlot
		select {
		case <-ctx.Done():
			return nil
		case <-recvDone:
			return nil // the reader failed; run reports why
		case s = <-free:
		case <-time.After(time.Until(deadline)):
			return nil
		}
		now := time.Now()
		if !now.Before(deadline) || ctx.Err() != nil {
			return nil
		}
		want := int64(per * len(c.parts))
		if p.limit {
			left := p.quota.Add(-want)
			if left < 0 {
				want += left // what was left before this reservation
				if want <= 0 {
					return nil
				}
			}
		}
		ms := now.UnixMilli()
		s.records = 0
		all := s.req.Topics[0].Partitions
		k := 0
		for ; k < len(all) && s.records < want; k++ {
			n := int(min(int64(per), want-s.records))
			all[k].Records = p.tmpl.stamp(s.bufs[k], n, p.pid, p.epoch, c.seq[k], ms)
			if p.pid >= 0 {
				c.seq[k] = nextSequence(c.seq[k], n)
			}
			s.records += int64(n)
		}
		req := s.req
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: s.req.Topics[0].Topic, Partitions: all[:k]}}
		c.corr++
		s.corr = c.corr
		s.frame = c.fmt.AppendRequest(s.frame[:0], &req, c.corr)
		s.sent = now
		inflight <- s
		if _, err := c.nc.Write(s.frame); err != nil {
			return fmt.Errorf("lean producer: write produce request: %w", err)
		}
	}
}

// receive is run's reader: it takes the answers in order, accounts for them, and frees their slots.
func (p *leanProducer) receive(c *leanConn, inflight <-chan *leanSlot, free chan<- *leanSlot, t *produceTally) error {
	for s := range inflight {
		_ = c.nc.SetReadDeadline(time.Now().Add(leanTimeout + deliveryTimeout))
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = c.version
		if err := c.readInto(s.corr, resp); err != nil {
			return fmt.Errorf("lean producer: %w", err)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("lean producer: produce %s/%d: %w", rt.Topic, rp.Partition, err)
				}
			}
		}
		t.ackedN(time.Since(s.sent), s.records, s.records*int64(p.tmpl.size))
		free <- s
	}
	return nil
}
