package raft

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// tcpStream is the raft transport's TCP stream layer. It differs from
// hashicorp's TCPStreamLayer in one respect: it owns every connection it
// accepts or dials and closes them all in Close. hashicorp's
// NetworkTransport.Close only closes the listener, which leaves the
// goroutine serving each inbound connection (and the pooled outbound
// connections feeding peers' goroutines) alive until the peer hangs up;
// with this layer a closed Node leaves nothing running.
type tcpStream struct {
	ln        net.Listener
	advertise net.Addr

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ hraft.StreamLayer = (*tcpStream)(nil)

// newTCPStream listens on bind. The address peers dial is advertise, or the
// bound address, which must then be a specific IP.
func newTCPStream(bind string, advertise net.Addr) (*tcpStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &tcpStream{ln: ln, advertise: advertise, conns: map[*trackedConn]struct{}{}}
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("address %v is not dialable by peers: set AdvertiseAddr", s.Addr())
	}
	return s, nil
}

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

// Accept implements net.Listener.
func (s *tcpStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

// Dial implements hraft.StreamLayer.
func (s *tcpStream) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

// Close closes the listener and every tracked connection.
func (s *tcpStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	err := s.ln.Close()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

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
