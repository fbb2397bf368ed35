package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
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
}

// pending is a reply waiting in the write queue.
type pending struct {
	key     int16
	version int16
	corr    int32
	rep     reply
}

func newConn(b *Broker, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(b.ctx)
	return &conn{
		b:       b,
		nc:      nc,
		log:     b.log.With("remote", nc.RemoteAddr().String()),
		queue:   make(chan pending, b.cfg.MaxInflight),
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),
	}
}

// serve runs the connection until the client leaves, a protocol error closes
// it, or shutdown is called; it returns after both loops have stopped and the
// socket is closed.
func (c *conn) serve() {
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
		if size < 0 || size > c.b.cfg.MaxRequestBytes {
			c.log.Warn("closing connection: request frame size out of range",
				"size", size, "max", c.b.cfg.MaxRequestBytes, "client", c.clientSoftware, "err", ErrFrameTooLarge)
			return
		}
		frame, err := readFrame(br, int(size))
		if err != nil {
			c.logReadErr(err)
			return
		}
		p, err := c.handleFrame(frame)
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

// frameChunk is the most readFrame allocates ahead of the bytes it has
// received, so a client announcing a huge frame and sending nothing costs
// little memory.
const frameChunk = 1 << 20

// readFrame reads a frame body of size bytes, growing its buffer as data
// arrives.
func readFrame(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, frameChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(size-len(buf), max(len(buf), frameChunk)))...)[:len(buf)]
		}
		n, err := io.ReadFull(r, buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
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
	rq := &request{c: c, key: h.key, version: h.version, corr: h.corr, clientID: h.clientID, body: req}
	p.rep, err = c.dispatch(spec, rq)
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

// writeLoop sends replies in queue order until the queue is closed. After a
// write error it keeps draining (without waiting or writing) so the read loop
// never blocks on a dead connection.
func (c *conn) writeLoop() {
	dead := false
	buf := make([]byte, 0, 64<<10)
	for p := range c.queue {
		if dead {
			continue
		}
		resp := p.rep.resp
		if p.rep.wait != nil {
			resp = c.runWait(&p)
		}
		if resp != nil && !p.rep.none {
			buf = encodeResponse(buf[:0], p, resp)
			if _, err := c.nc.Write(buf); err != nil {
				if !c.isClosing() {
					c.log.Debug("write failed", "err", err)
				}
				dead = true
			}
			if cap(buf) > 1<<20 {
				buf = make([]byte, 0, 64<<10) // do not pin a large fetch response
			}
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

// encodeResponse appends the size-prefixed response frame to dst. ApiVersions
// responses always use header v0 (KIP-511) so a client that does not know our
// versions can still parse them.
func encodeResponse(dst []byte, p pending, resp kmsg.Response) []byte {
	resp.SetVersion(p.version)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, p.corr)
	if resp.IsFlexible() && p.key != apiVersionsKey {
		dst = append(dst, 0) // no header tagged fields
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

// errCode is a shorthand for a kerr error's wire code (0 for nil).
func errCode(err *kerr.Error) int16 {
	if err == nil {
		return 0
	}
	return err.Code
}
