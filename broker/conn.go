package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. It is owned by two goroutines started by
// serveConn: the read loop (decodes and handles requests in order) and the
// write loop (sends replies in the same order). The bounded queue between them
// is the connection's in-flight limit.
type conn struct {
	b   *Broker
	nc  net.Conn
	log *slog.Logger

	// queue carries replies from the read loop to the write loop; the read
	// loop is its only sender and closes it when it stops.
	queue chan pending

	// ctx is cancelled when the connection dies or the broker shuts down;
	// deferred replies (long polls) watch it.
	ctx    context.Context
	cancel context.CancelFunc

	// closing is set by shutdown; the read loop then stops at the next
	// frame boundary instead of logging a read error.
	closeOnce sync.Once
	closing   chan struct{}

	// clientSoftware is the KIP-511 name and version sent in ApiVersions v3+;
	// only the read loop touches it.
	clientSoftware string

	// principal is who the connection acts as, in Kafka's "Type:name" form
	// ("User:ANONYMOUS" until a listener authenticates it); host is the
	// client's IP address. ACL checks match on both. Only the read loop
	// writes principal, and handlers run on the read loop.
	principal string
	host      string
	// tokenID is the delegation token the connection logged in with
	// (tokens.go), "" for other logins; such a connection may not use the
	// token APIs and ends once the token expires or is removed. Read loop
	// only, like principal.
	tokenID string

	// listener is the listener the connection arrived on.
	listener *boundListener
	// sasl is the connection's SASL exchange (sasl.go); saslOff on
	// listeners without SASL. Only the read loop touches it.
	sasl saslConn

	// muteUntil (UnixNano, 0 never muted) is when the read loop may take
	// the next request again after a quota throttle (quota_enforce.go).
	// Raised by handlers and the writer; the read loop waits it out.
	muteUntil atomic.Int64
}

// anonymous is Kafka's principal for a connection that has not
// authenticated (PLAINTEXT listeners).
const anonymous = "User:ANONYMOUS"

// pending is a reply waiting in the write queue.
type pending struct {
	key     int16
	version int16
	corr    int32
	rep     reply
}

func newConn(b *Broker, nc net.Conn, l *boundListener) *conn {
	ctx, cancel := context.WithCancel(b.ctx)
	c := &conn{
		b:       b,
		nc:      nc,
		log:     b.log.With("remote", nc.RemoteAddr().String()),
		queue:   make(chan pending, b.cfg.MaxInflight),
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),

		principal: anonymous,
		host:      remoteHost(nc.RemoteAddr()),
		listener:  l,
	}
	if l != nil && l.Protocol.usesSASL() {
		c.sasl.state = saslStart
	}
	return c
}

// remoteHost is the IP address of a peer, the host field of Kafka's ACL
// bindings; an address without a port (a pipe in tests) is used whole.
func remoteHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// serve runs the connection until the client leaves, a protocol error closes
// it, or shutdown is called; it returns after both loops have stopped and the
// socket is closed.
func (c *conn) serve() {
	if d := c.b.quotas.admitConnection(c.b.node.State(), c.host); d > 0 {
		c.log.Info("closing connection: connection_creation_rate quota exceeded", "host", c.host, "delay", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.closing:
		case <-c.ctx.Done():
		}
		t.Stop()
		c.cancel()
		_ = c.nc.Close()
		return
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.tlsHandshake(tc); err != nil {
			c.log.Info("closing connection: TLS handshake failed", "host", c.host, "err", err)
			c.cancel()
			_ = c.nc.Close()
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	c.readLoop()
	// No more requests will come: parked long polls answer now instead of
	// holding the connection (and a graceful shutdown) until max wait.
	c.cancel()
	close(c.queue)
	<-done
	_ = c.nc.Close()
}

// shutdown makes the read loop stop taking new requests. Requests already read
// are still answered (their waits see a cancelled context and answer at once).
func (c *conn) shutdown() {
	c.closeOnce.Do(func() {
		close(c.closing)
		_ = c.nc.SetReadDeadline(time.Now())
	})
}

func (c *conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// readLoop reads frames until an error. Handlers run here, one at a time, so
// the order of their side effects is the request order.
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		// A quota throttle stops reading, so a throttled client's next
		// requests wait in its socket (KIP-219 channel muting).
		if !c.waitMuted() {
			return
		}
		// connections.max.idle.ms: a client silent this long is dropped. The
		// closing check after setting the deadline keeps a concurrent
		// shutdown's immediate deadline from being overridden.
		_ = c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.IdleTimeout))
		if c.isClosing() {
			return
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			c.logReadErr(err)
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		authed := c.sasl.state.authenticated()
		maxSize := c.b.cfg.MaxRequestBytes
		if !authed {
			maxSize = min(maxSize, saslMaxReceive)
		}
		if size < 0 || size > maxSize {
			c.log.Warn("closing connection: request frame size out of range",
				"size", size, "max", maxSize, "client", c.clientSoftware, "err", ErrFrameTooLarge)
			return
		}
		// The API key is the frame's first two bytes; a frame shorter than
		// that fails in parseHeader.
		recycle := false
		if size >= 2 && authed {
			if key, err := br.Peek(2); err == nil {
				recycle = frameFree[int16(binary.BigEndian.Uint16(key))]
			}
		}
		frame, err := readFrame(br, int(size), recycle)
		if err != nil {
			c.logReadErr(err)
			return
		}
		var p pending
		if c.sasl.state == saslRawTokens {
			p, err = c.handleRawToken(frame)
		} else {
			p, err = c.handleFrame(frame)
		}
		if recycle {
			recycledFrames.put(frame)
		}
		if err != nil {
			c.log.Warn("closing connection", "client", c.clientSoftware, "err", err)
			return
		}
		// The writer drains the queue until it is closed, even after a write
		// error, so this send always completes; a handled request's reply is
		// never dropped, also not during shutdown.
		c.queue <- p
		if p.rep.closeConn {
			return
		}
	}
}

// frameChunk is the most readFrame allocates before the frame's bytes
// arrive, so a client announcing a huge frame and sending nothing costs
// little memory.
const frameChunk = 1 << 20

// frameStaging holds frameChunk-sized buffers that readFrame fills before it
// trusts a large frame's size; the bytes are copied out, so a buffer goes
// back to the pool as soon as the frame is allocated.
var frameStaging = sync.Pool{New: func() any { b := make([]byte, frameChunk); return &b }}

// readFrame reads a frame body of size bytes (already checked against
// socket.request.max.bytes). A frame up to frameChunk is read into one
// allocation. A larger one first fills a pooled staging chunk; only once
// those bytes have arrived is the frame allocated, once, at its full size.
// With recycle set (the frame's API keeps nothing of it, see frameFree) the
// frame comes from, and after its handler goes back to, recycledFrames:
// capacity rounded up to a power of two, neither allocated nor zeroed again
// while the pool holds it. Otherwise handlers may keep sub-slices of the
// frame (group metadata, for one), so it is never reused.
func readFrame(r io.Reader, size int, recycle bool) ([]byte, error) {
	capacity := size
	if recycle {
		if frame := recycledFrames.get(size); frame != nil {
			if _, err := io.ReadFull(r, frame); err != nil {
				recycledFrames.put(frame)
				return nil, err
			}
			return frame, nil
		}
		capacity = recycledFrames.capacity(size)
	}
	if size <= frameChunk {
		frame := make([]byte, size, capacity)
		if _, err := io.ReadFull(r, frame); err != nil {
			return nil, err
		}
		return frame, nil
	}
	sp := frameStaging.Get().(*[]byte)
	stage := *sp
	if _, err := io.ReadFull(r, stage); err != nil {
		frameStaging.Put(sp)
		return nil, err
	}
	frame := make([]byte, size, capacity)
	copy(frame, stage)
	frameStaging.Put(sp)
	if _, err := io.ReadFull(r, frame[frameChunk:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// frameFree holds the API keys whose handlers keep no reference into the
// request frame once they return (Produce copies the batches into the log
// with pwrite and answers from offsets), so the read loop recycles their
// frames. Written only by init functions.
var frameFree = map[int16]bool{}

// Frame size classes of recycledFrames: powers of two from 4 KiB to 64 MiB.
// Larger frames are allocated and dropped as before.
const (
	minFrameClass = 12
	maxFrameClass = 26
)

// framePool recycles request frames by power-of-two size class. sync.Pool
// lets the garbage collector drop idle buffers, so a burst of large produce
// requests does not pin its memory.
type framePool struct {
	classes [maxFrameClass - minFrameClass + 1]sync.Pool
}

// recycledFrames is shared by all connections.
var recycledFrames framePool

// class returns the index of the smallest class holding size bytes, or -1.
func (fp *framePool) class(size int) int {
	k := minFrameClass
	for k <= maxFrameClass && 1<<k < size {
		k++
	}
	if k > maxFrameClass {
		return -1
	}
	return k - minFrameClass
}

// capacity is the capacity a new recyclable frame of size bytes gets.
func (fp *framePool) capacity(size int) int {
	if c := fp.class(size); c >= 0 {
		return 1 << (c + minFrameClass)
	}
	return size
}

// get returns a recycled frame of length size, or nil when its class is
// empty (or size has no class).
func (fp *framePool) get(size int) []byte {
	c := fp.class(size)
	if c < 0 {
		return nil
	}
	v, _ := fp.classes[c].Get().(*[]byte)
	if v == nil {
		return nil
	}
	return (*v)[:size]
}

// put recycles frame; frames whose capacity is not exactly a class size
// (allocated for an API that may keep them) are left to the collector.
func (fp *framePool) put(frame []byte) {
	c := fp.class(cap(frame))
	if c < 0 || cap(frame) != 1<<(c+minFrameClass) {
		return
	}
	frame = frame[:cap(frame)]
	fp.classes[c].Put(&frame)
}

func (c *conn) logReadErr(err error) {
	switch {
	case c.isClosing(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("closing idle connection", "idle_timeout", c.b.cfg.IdleTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Info("connection closed mid-frame")
	default:
		c.log.Debug("connection read ended", "err", err)
	}
}

// requestHeader is the decoded request header (v1, or v2 for flexible
// versions; header v0 is never served).
type requestHeader struct {
	key, version int16
	corr         int32
	clientID     string
}

// parseHeader decodes the fixed part of the request header and returns the
// rest of the frame: tagged fields (flexible versions) and body.
func parseHeader(frame []byte) (requestHeader, []byte, error) {
	r := kbin.Reader{Src: frame}
	var h requestHeader
	h.key = r.Int16()
	h.version = r.Int16()
	h.corr = r.Int32()
	if id := r.NullableString(); id != nil {
		h.clientID = *id
	}
	if !r.Ok() {
		return h, nil, fmt.Errorf("%w: short request header (%d bytes)", ErrMalformedRequest, len(frame))
	}
	return h, r.Src, nil
}

// handleFrame decodes one request frame and runs its handler. An error closes
// the connection.
func (c *conn) handleFrame(frame []byte) (p pending, err error) {
	h, rest, err := parseHeader(frame)
	if err != nil {
		return p, err
	}
	p = pending{key: h.key, version: h.version, corr: h.corr}
	if !c.sasl.state.admits(h.key) {
		return p, fmt.Errorf("%w: %s before SASL authentication completed, client %q", ErrNotAuthenticated, kmsg.NameForKey(h.key), h.clientID)
	}
	if err := c.sessionExpired(h.key); err != nil {
		return p, err
	}
	spec, ok := lookupAPI(h.key, h.version)
	if !ok {
		if h.key == apiVersionsKey {
			// Kafka answers an ApiVersions version it does not know with a
			// v0 response carrying UNSUPPORTED_VERSION, so the client can
			// retry with a version it finds there (KIP-511).
			p.version = 0
			p.rep = now(unsupportedApiVersions())
			return p, nil
		}
		return p, fmt.Errorf("%w: key %d (%s) version %d, client %q", ErrUnsupportedAPI, h.key, kmsg.NameForKey(h.key), h.version, h.clientID)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		r := kbin.Reader{Src: rest}
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return p, fmt.Errorf("%w: header tags of %s v%d", ErrMalformedRequest, kmsg.NameForKey(h.key), h.version)
		}
		rest = r.Src
	}
	// ReadFrom copies strings but leaves byte fields (record batches) as
	// sub-slices of frame; frame is never reused, so they stay valid.
	if err := req.ReadFrom(rest); err != nil {
		return p, fmt.Errorf("%w: %s v%d body: %w", ErrMalformedRequest, kmsg.NameForKey(h.key), h.version, err)
	}
	rq := &request{c: c, key: h.key, version: h.version, corr: h.corr, clientID: h.clientID, body: req, size: len(frame)}
	// request_percentage: measure the handler only when some request
	// quota exists, so requests without quotas pay one atomic load.
	st := c.b.node.State()
	if c.b.quotas.enabled(st, quotaRequest) && !exemptFromRequestQuota(req) {
		start := time.Now()
		p.rep, err = c.dispatch(spec, rq)
		if err == nil {
			c.applyRequestQuota(st, rq, &p.rep, time.Since(start))
			c.muteForResponse(st, p.rep.resp)
		}
		return p, err
	}
	p.rep, err = c.dispatch(spec, rq)
	if err == nil {
		c.muteForResponse(st, p.rep.resp)
	}
	return p, err
}

// dispatch runs a handler. A panic is a bug of ours, but input from the
// network must never take the process down: it is logged with its stack and
// closes only this connection.
func (c *conn) dispatch(spec apiSpec, rq *request) (rep reply, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.b.handlerPanics.Add(1)
			c.log.Error("handler panic", "api", kmsg.NameForKey(rq.key), "version", rq.version, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic in %s v%d", kmsg.NameForKey(rq.key), rq.version)
		}
	}()
	return spec.handle(c.b, rq), nil
}

// Write buffer bounds: a connection keeps its largest response buffer for
// the next response, up to keepWriteBuf; a larger one, or any buffer after
// writeBufIdle without responses, goes back to the garbage collector. Fetch
// responses encode markers instead of records, so their buffers stay small.
const (
	smallWriteBuf = 64 << 10
	keepWriteBuf  = 4 << 20
	writeBufIdle  = 5 * time.Second
)

// sizeHinter is a response that can estimate its encoded size (at least the
// real one), so the writer sizes its buffer once.
type sizeHinter interface{ sizeHint() int }

// writeLoop sends replies in queue order until the queue is closed. After a
// write error it keeps draining (without waiting or writing) so the read loop
// never blocks on a dead connection.
func (c *conn) writeLoop() {
	dead := false
	buf := make([]byte, 0, smallWriteBuf)
	// fill assembles a fetch response's bytes around its sendfile runs:
	// frame parts and record runs below sendfileMin.
	var fill []byte
	idle := time.NewTimer(writeBufIdle)
	defer idle.Stop()
	for {
		var p pending
		var ok bool
		if cap(buf) > smallWriteBuf || cap(fill) > smallWriteBuf {
			idle.Reset(writeBufIdle)
			select {
			case p, ok = <-c.queue:
			case <-idle.C:
				buf = make([]byte, 0, smallWriteBuf)
				fill = nil
				continue
			}
		} else {
			p, ok = <-c.queue
		}
		if !ok {
			return
		}
		if dead {
			releaseResponse(p.rep.resp)
			continue
		}
		resp := p.rep.resp
		if p.rep.wait != nil {
			resp = c.runWait(&p)
		}
		if resp != nil {
			c.throttleResponse(resp)
		}
		if p.rep.token != nil {
			buf = kbin.AppendInt32(buf[:0], int32(len(p.rep.token)))
			buf = append(buf, p.rep.token...)
			if _, err := c.nc.Write(buf); err != nil {
				c.log.Debug("write failed", "err", err)
				dead = true
			}
		} else if resp != nil && !p.rep.none {
			if h, ok := resp.(sizeHinter); ok {
				if need := h.sizeHint(); cap(buf) < need {
					buf = make([]byte, 0, need)
				}
			}
			var body int
			buf, body = encodeResponse(buf[:0], p, resp)
			var err error
			if fr, ok := resp.(*fetchResponse); ok {
				err = fr.writeTo(c.nc, buf, body, sendfileMin, &fill)
				if cap(fill) > keepWriteBuf {
					fill = nil
				}
			} else {
				_, err = c.nc.Write(buf)
			}
			switch {
			case errors.Is(err, ErrResponseLayout):
				c.log.Error("closing connection: fetch response", "err", err)
			case err != nil && !c.isClosing():
				c.log.Debug("write failed", "err", err)
			}
			if err != nil {
				dead = true
			}
			if cap(buf) > keepWriteBuf {
				buf = make([]byte, 0, smallWriteBuf) // do not pin an unusually large response
			}
		} else {
			releaseResponse(resp)
		}
		if p.rep.closeConn {
			dead = true
		}
		if dead {
			c.cancel()
			_ = c.nc.Close() // unblocks the read loop
		}
	}
}

// releaseResponse frees what a response holds when it will not be encoded
// (the file references of a fetch response).
func releaseResponse(resp kmsg.Response) {
	if fr, ok := resp.(*fetchResponse); ok {
		fr.release()
	}
}

// runWait runs a deferred reply, turning a panic into a closed connection.
func (c *conn) runWait(p *pending) (resp kmsg.Response) {
	defer func() {
		if r := recover(); r != nil {
			c.b.handlerPanics.Add(1)
			c.log.Error("handler panic", "api", kmsg.NameForKey(p.key), "version", p.version, "panic", r, "stack", string(debug.Stack()))
			resp = nil
			p.rep.closeConn = true
		}
	}()
	return p.rep.wait(c.ctx)
}

// encodeResponse appends the size-prefixed response frame to dst and returns
// it with the position of the response body in it. ApiVersions responses
// always use header v0 (KIP-511) so a client that does not know our versions
// can still parse them.
func encodeResponse(dst []byte, p pending, resp kmsg.Response) ([]byte, int) {
	resp.SetVersion(p.version)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, p.corr)
	if resp.IsFlexible() && p.key != apiVersionsKey {
		dst = append(dst, 0) // no header tagged fields
	}
	body := len(dst)
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst, body
}

// errCode is a shorthand for a kerr error's wire code (0 for nil).
func errCode(err *kerr.Error) int16 {
	if err == nil {
		return 0
	}
	return err.Code
}
