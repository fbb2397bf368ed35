package broker

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// peerConn is one broker's connection to another broker's Kafka listener,
// for broker-to-broker requests (a follower's fetches, a transaction
// coordinator's markers). Requests are encoded with kmsg's formatter and
// answers decoded with kmsg; one request is in flight at a time, and the
// connection is owned by one goroutine.
type peerConn struct {
	nc   net.Conn
	fmtr *kmsg.RequestFormatter
	corr int32
	buf  []byte // the request being sent
	rbuf []byte // the last answer; its decoded byte fields alias it
	// stop ends the goroutine that closes nc when the caller's context ends.
	stop func() bool
	// cred and addr are the SASL login of the connection (cred.Mechanism
	// empty: none); reauthAt is when the SASL session must be renewed
	// (KIP-368; zero: never), checked before each request; authing is
	// set while an exchange runs.
	cred     SASLCredentials
	addr     string
	reauthAt time.Time
	authing  bool
}

// peerReauthShare is the part of a SASL session lifetime after which a
// peer connection re-authenticates (the Java client picks 85-95%).
const peerReauthShare = 0.85

// peerMaxResponse bounds the size of an answer a broker reads from a peer.
const peerMaxResponse = replicaFetchResponseBytes + 16<<20

// peerKeepBuffer is the largest answer buffer a connection keeps for reuse.
const peerKeepBuffer = 8 << 20

// peerIOTimeout bounds dialing a peer.
const peerIOTimeout = 10 * time.Second

// dialPeer connects to the broker whose inter-broker listener is at addr;
// clientID names the caller in the peer's logs. When the inter-broker
// listener uses TLS the connection is wrapped (verified against the
// truststore, presenting this broker's certificate); when it uses SASL the
// connection authenticates with Config.InterBrokerSASL before it is
// returned. Every broker of a cluster uses the same inter-broker listener
// name, so this broker's own listener config says what the peer expects.
// The connection is closed when ctx ends, which interrupts a request in
// flight.
func (b *Broker) dialPeer(ctx context.Context, addr, clientID string) (*peerConn, error) {
	d := net.Dialer{Timeout: peerIOTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial broker %s: %w", addr, err)
	}
	ib := b.interBroker()
	if ib.Protocol.usesTLS() {
		cfg := b.peerTLS.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		hctx, cancel := context.WithTimeout(ctx, peerIOTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("dial broker %s: tls handshake: %w", addr, err)
		}
		nc = tc
	}
	c := &peerConn{nc: nc, fmtr: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
	c.stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	if ib.Protocol.usesSASL() {
		if err := c.authenticate(ctx, b.cfg.InterBrokerSASL, addr); err != nil {
			c.close()
			return nil, fmt.Errorf("dial broker %s: %w", addr, err)
		}
	}
	return c, nil
}

// authenticate runs a SASL exchange (handshake v1, then SaslAuthenticate
// requests) as the client identity cred, and schedules the
// re-authentication the session lifetime asks for. It also serves the
// re-authentication itself, on the same connection.
func (c *peerConn) authenticate(ctx context.Context, cred SASLCredentials, addr string) error {
	c.cred, c.addr, c.authing, c.reauthAt = cred, addr, true, time.Time{}
	defer func() { c.authing = false }()
	start := time.Now()
	var mech sasl.Mechanism
	switch cred.Mechanism {
	case MechanismPlain:
		mech = plain.Auth{User: cred.Username, Pass: cred.Password}.AsMechanism()
	case MechanismSCRAMSHA256:
		mech = scram.Auth{User: cred.Username, Pass: cred.Password}.AsSha256Mechanism()
	case MechanismSCRAMSHA512:
		mech = scram.Auth{User: cred.Username, Pass: cred.Password}.AsSha512Mechanism()
	default:
		return fmt.Errorf("%w: inter-broker SASL mechanism %q", ErrInvalidConfig, cred.Mechanism)
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = mech.Name()
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.do(ctx, hs, hsResp, peerIOTimeout); err != nil {
		return fmt.Errorf("sasl handshake: %w", err)
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return fmt.Errorf("sasl handshake %s: %w (broker offers %v)", mech.Name(), err, hsResp.SupportedMechanisms)
	}
	sess, msg, err := mech.Authenticate(ctx, addr)
	if err != nil {
		return fmt.Errorf("sasl %s: %w", mech.Name(), err)
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 1
		req.SASLAuthBytes = msg
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.do(ctx, req, resp, peerIOTimeout); err != nil {
			return fmt.Errorf("sasl authenticate: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			msg := ""
			if resp.ErrorMessage != nil {
				msg = *resp.ErrorMessage
			}
			return fmt.Errorf("sasl %s as %s: %w: %s", mech.Name(), cred.Username, err, msg)
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("sasl %s: %w", mech.Name(), err)
		}
		if done {
			if ms := resp.SessionLifetimeMillis; ms > 0 {
				c.reauthAt = start.Add(time.Duration(float64(ms)*peerReauthShare) * time.Millisecond)
			}
			return nil
		}
		msg = next
	}
}

// close closes the connection; the peerConn is unusable after.
func (c *peerConn) close() {
	c.stop()
	_ = c.nc.Close()
}

// do sends req and decodes the answer into resp within timeout. When the
// SASL session is due for renewal it re-authenticates first (one request
// is in flight at a time, so nothing else is on the wire then).
func (c *peerConn) do(ctx context.Context, req kmsg.Request, resp kmsg.Response, timeout time.Duration) error {
	if !c.authing && !c.reauthAt.IsZero() && time.Now().After(c.reauthAt) {
		if err := c.authenticate(ctx, c.cred, c.addr); err != nil {
			return fmt.Errorf("re-authenticate to %s: %w", c.addr, err)
		}
	}
	c.corr++
	c.buf = c.fmtr.AppendRequest(c.buf[:0], req, c.corr)
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.nc.Write(c.buf); err != nil {
		return fmt.Errorf("send %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return fmt.Errorf("read %s answer: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > peerMaxResponse {
		return fmt.Errorf("%s answer of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	// The answer's buffer is reused: decoded record batches point into it
	// and are written to the log before the next request. An unusually
	// large answer gets its own buffer, so a connection keeps at most
	// peerKeepBuffer.
	body := c.rbuf[:0]
	switch {
	case int(n) <= cap(c.rbuf):
		body = c.rbuf[:n]
	case n <= peerKeepBuffer:
		c.rbuf = make([]byte, n)
		body = c.rbuf
	default:
		body = make([]byte, n)
	}
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return fmt.Errorf("read %s answer: %w", kmsg.NameForKey(req.Key()), err)
	}
	r := kbin.Reader{Src: body}
	if got := r.Int32(); got != c.corr {
		return fmt.Errorf("%s answer has correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, c.corr)
	}
	if req.IsFlexible() { // response header v1: tagged fields
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		return fmt.Errorf("%s answer: short header", kmsg.NameForKey(req.Key()))
	}
	body = r.Src
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decode %s answer: %w", kmsg.NameForKey(req.Key()), err)
	}
	return nil
}
