package raft

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// forwardTag is the first byte of a connection that carries forwarded
// applies and broker heartbeats (forward.go) instead of raft RPCs.
// hashicorp's NetworkTransport starts every connection with its RPC type
// byte (0..4 in v1.7); a value far above keeps the two apart on one port.
const forwardTag byte = 0xF5

// routeTimeout bounds how long an accepted connection may take to send its
// first byte before it is dropped.
const routeTimeout = 10 * time.Second

// tcpStream is the raft transport's TCP stream layer, multiplexing one port
// between hashicorp's NetworkTransport and the forward server. It differs
// from hashicorp's TCPStreamLayer in two respects:
//   - It owns every connection it accepts or dials and closes them all in
//     Close. hashicorp's NetworkTransport.Close only closes the listener,
//     which leaves the goroutine serving each inbound connection (and the
//     pooled outbound connections feeding peers' goroutines) alive until the
//     peer hangs up; with this layer a closed Node leaves nothing running.
//   - Its own accept loop reads the first byte of each connection: forwardTag
//     hands it to the forward handler, anything else goes (byte included) to
//     the transport through Accept.
type tcpStream struct {
	ln        net.Listener
	advertise net.Addr
	// tls, when set, wraps every accepted and dialed connection (raft RPCs
	// and forwarded requests alike) in TLS; see Config.TLS.
	tls *tls.Config
	// forward serves one forward connection until it ends; it must return
	// once the connection is closed.
	forward func(net.Conn)
	// accepted carries raft connections from route to Accept.
	accepted chan net.Conn
	// done is closed by Close; it ends Accept and the accept loop.
	done chan struct{}
	// wg counts the accept loop, routers and forward handlers; wait blocks
	// on it.
	wg sync.WaitGroup

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ hraft.StreamLayer = (*tcpStream)(nil)

// newTCPStream listens on bind and starts accepting. The address peers dial
// is advertise, or the bound address, which must then be a specific IP.
// forward serves connections tagged forwardTag.
func newTCPStream(bind string, advertise net.Addr, tlsCfg *tls.Config, forward func(net.Conn)) (*tcpStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &tcpStream{ln: ln, advertise: advertise, tls: tlsCfg, forward: forward, accepted: make(chan net.Conn),
		done: make(chan struct{}), conns: map[*trackedConn]struct{}{}}
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("address %v is not dialable by peers: set AdvertiseAddr", s.Addr())
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// acceptLoop accepts until the listener closes; each connection is routed
// by its own goroutine so a slow first byte holds up nobody.
func (s *tcpStream) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			time.Sleep(20 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		tc, err := s.track(c)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.route(tc)
	}
}

// route reads c's first byte and hands c to the forward handler or to the
// raft transport.
func (s *tcpStream) route(c net.Conn) {
	defer s.wg.Done()
	_ = c.SetDeadline(time.Now().Add(routeTimeout))
	if s.tls != nil {
		tc := tls.Server(c, s.tls)
		if err := tc.Handshake(); err != nil {
			// A peer without a certificate of the cluster's CA, or not
			// speaking TLS at all: nothing it sent reaches raft.
			c.Close()
			return
		}
		c = &tlsConn{Conn: tc, raw: c}
	}
	br := bufio.NewReader(c)
	tag, err := br.Peek(1)
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	if tag[0] == forwardTag {
		_, _ = br.Discard(1)
		s.forward(&bufferedConn{Conn: c, r: br})
		c.Close()
		return
	}
	select {
	case s.accepted <- &bufferedConn{Conn: c, r: br}:
	case <-s.done:
		c.Close()
	}
}

// bufferedConn reads through the reader that peeked the tag byte.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// track registers c, or closes it when the stream is already closed.
func (s *tcpStream) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, s: s}
	s.conns[tc] = struct{}{}
	return tc, nil
}

// Accept implements net.Listener: the next raft connection.
func (s *tcpStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Dial implements hraft.StreamLayer.
func (s *tcpStream) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dialContext(ctx, string(address))
}

// dialContext connects to the peer at addr, over TLS when the stream has a
// TLS config, and tracks the connection so Close ends it.
func (s *tcpStream) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		cfg := s.tls.Clone()
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("raft peer address %s: %w", addr, err)
			}
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake with raft peer %s: %w", addr, err)
		}
		c = &tlsConn{Conn: tc, raw: c}
	}
	return s.track(c)
}

// tlsConn is a TLS connection whose Close does not wait for the peer: a
// tls.Conn's Close sends close_notify, which can block on a stuck peer;
// closing the socket underneath ends it at once, as for plain TCP.
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

func (c *tlsConn) Close() error { return c.raw.Close() }

// Close closes the listener and every tracked connection.
func (s *tcpStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	err := s.ln.Close()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

// wait blocks until the accept loop, the routers and the forward handlers
// have ended; call after Close.
func (s *tcpStream) wait() { s.wg.Wait() }

// Addr implements net.Listener: the advertised address.
func (s *tcpStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

func (s *tcpStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// trackedConn removes itself from its stream when closed, and reports a
// read failure caused by the stream's Close as io.EOF: the transport treats
// EOF as an orderly hang-up instead of logging a decode error at shutdown.
type trackedConn struct {
	net.Conn
	s *tcpStream
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, net.ErrClosed) && c.s.isClosed() {
		err = io.EOF
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}
