package raft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Forwarding: Node.ApplyAll and Node.Heartbeat on a node that is not the
// raft leader send the request to the leader over the raft port. A
// connection starts with forwardTag (see tcpStream) and then carries
// frames, each a 4-byte big-endian length and a body encoded like commands
// (codec.go); the client sends one request frame and reads one response
// frame per call. Commands travel as their EncodeCommand bytes and are
// decoded on the leader with DecodeCommand, so the leader checks them like
// any log entry; errors travel as a code naming one of this package's
// sentinels plus the leader's message, so errors.Is works on the caller's
// side.
//
// Request body:  u8 kind; kind 1 (apply): uvarint timeout ms, uvarint n,
//                n × bytes(EncodeCommand); kind 2 (heartbeat): i32 broker
//                id, varint broker epoch, uvarint applied index, bool
//                want-shutdown; kind 3 (join, join.go): i32 node id, str
//                raft address, bool relayed; kind 4 (leave, join.go): i32
//                node id, bool relayed; kind 5 (describe quorum,
//                quorum.go): nothing; kinds 6 and 7 (promote, demote
//                voter): i32 node id.
// Response body: apply: uvarint n, n × (uvarint index, varint broker epoch,
//                varint producer-id start, i32 producer-id count, u8 error
//                code, str message); describe quorum: see
//                encodeQuorumResponse; heartbeat, join, leave, promote and
//                demote: u8 error code, str message.

const (
	fwdApply     uint8 = 1
	fwdHeartbeat uint8 = 2
	fwdJoin      uint8 = 3
	fwdLeave     uint8 = 4
	// Quorum calls (quorum.go).
	fwdDescribeQuorum uint8 = 5
	fwdPromote        uint8 = 6
	fwdDemote         uint8 = 7

	// maxForwardFrame bounds one frame either way: a request holds at most
	// this many bytes of commands, a larger one is refused by the client
	// before sending and by the server before reading.
	maxForwardFrame = 16 << 20
	// forwardIdleTimeout closes a forward connection that sends nothing.
	forwardIdleTimeout = time.Minute
	// maxForwardTimeout caps the time a leader spends on one forwarded
	// apply, whatever the caller asked for.
	maxForwardTimeout = 2 * time.Minute
)

// forwardRequest is a decoded request frame.
type forwardRequest struct {
	kind    uint8
	timeout time.Duration // apply
	cmds    []Command     // apply
	hb      BrokerHeartbeat
	applied uint64 // heartbeat: the sender's State().Version
	join    joinRequest
}

// forwardOutcome is one command's outcome in an apply response. index is
// the log index of the entry (also for domain errors, 0 when the command
// never reached the log).
type forwardOutcome struct {
	res  Result
	code uint8
	msg  string
}

// wireErrors lists the errors a forward response can name; an error's
// code is its position + 1 (0: no error, codeOther: any other error, which
// arrives with its message only). Append only: codes are on the wire
// between nodes of different versions.
var wireErrors = []error{
	ErrNotLeader, ErrLeadershipLost, ErrClosed, ErrUnknownCommand, ErrCorruptCommand, ErrCorruptSnapshot,
	ErrInvalidCommand, ErrClusterIDMismatch, ErrUnknownBroker, ErrStaleBrokerEpoch, ErrTopicExists,
	ErrUnknownTopic, ErrUnknownPartition, ErrInvalidPartitions, ErrInvalidReplicationFactor,
	ErrInvalidReplicaAssignment, ErrStalePartitionEpoch, ErrInvalidPartitionChange, ErrUnknownSCRAMCredential,
	ErrStaleProducerIDBlock, context.DeadlineExceeded, context.Canceled, ErrInvalidVoters, ErrNoQuorum, ErrFenced,
	ErrBrokerActive, ErrDuplicateVoter, ErrVoterNotFound, ErrNotMember, ErrReplicaLagging,
	ErrUnknownDelegationToken,
}

const codeOther uint8 = 255

// errorCode returns the wire code of err and its message.
func errorCode(err error) (uint8, string) {
	if err == nil {
		return 0, ""
	}
	for i, e := range wireErrors {
		if errors.Is(err, e) {
			return uint8(i + 1), err.Error()
		}
	}
	return codeOther, err.Error()
}

// remoteError is an error the leader reported: its message, matching the
// sentinel its code named.
type remoteError struct {
	msg      string
	sentinel error // nil for codeOther
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// codeError rebuilds an error from its wire form; unknown codes (a newer
// peer) keep only the message.
func codeError(code uint8, msg string) error {
	if code == 0 {
		return nil
	}
	var sentinel error
	if int(code) <= len(wireErrors) {
		sentinel = wireErrors[code-1]
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}

func encodeApplyRequest(timeout time.Duration, cmds []Command) []byte {
	e := &encoder{}
	e.u8(fwdApply)
	e.uvarint(uint64(max(timeout, 0) / time.Millisecond))
	e.uvarint(uint64(len(cmds)))
	for _, c := range cmds {
		e.bytes(EncodeCommand(c))
	}
	return e.b
}

func encodeHeartbeatRequest(hb BrokerHeartbeat, applied uint64) []byte {
	e := &encoder{}
	e.u8(fwdHeartbeat)
	e.i32(hb.ID)
	e.varint(hb.Epoch)
	e.uvarint(applied)
	e.boolean(hb.WantShutdown)
	return e.b
}

// decodeForwardRequest decodes a request body; commands are checked with
// DecodeCommand. Errors wrap ErrCorruptCommand or ErrUnknownCommand.
func decodeForwardRequest(b []byte) (forwardRequest, error) {
	d := &decoder{b: b}
	req := forwardRequest{kind: d.u8()}
	switch req.kind {
	case fwdApply:
		ms := d.uvarint()
		if ms > uint64(maxForwardTimeout/time.Millisecond) {
			ms = uint64(maxForwardTimeout / time.Millisecond)
		}
		req.timeout = time.Duration(ms) * time.Millisecond
		n := d.count(2)
		for range n {
			raw := d.bytes()
			if d.err != nil {
				break
			}
			cmd, err := DecodeCommand(raw)
			if err != nil {
				return forwardRequest{}, fmt.Errorf("forwarded command: %w", err)
			}
			req.cmds = append(req.cmds, cmd)
		}
	case fwdHeartbeat:
		req.hb.ID = d.i32()
		req.hb.Epoch = d.varint()
		req.applied = d.uvarint()
		req.hb.WantShutdown = d.boolean()
	case fwdJoin:
		req.join.id = d.i32()
		req.join.addr = d.str()
		req.join.relayed = d.boolean()
	case fwdLeave:
		req.join.id = d.i32()
		req.join.relayed = d.boolean()
	case fwdDescribeQuorum:
	case fwdPromote, fwdDemote:
		req.join.id = d.i32()
	default:
		if d.err == nil {
			d.fail(fmt.Sprintf("unknown forward request kind %d", req.kind))
		}
	}
	if err := d.done(); err != nil {
		return forwardRequest{}, fmt.Errorf("forward request: %w", err)
	}
	return req, nil
}

func encodeApplyResponse(outs []forwardOutcome) []byte {
	e := &encoder{}
	e.uvarint(uint64(len(outs)))
	for _, o := range outs {
		e.uvarint(o.res.Index)
		e.varint(o.res.BrokerEpoch)
		e.varint(o.res.ProducerIDs.Start)
		e.i32(o.res.ProducerIDs.Count)
		e.u8(o.code)
		e.str(o.msg)
	}
	return e.b
}

// decodeApplyResponse decodes an apply response carrying want outcomes.
func decodeApplyResponse(b []byte, want int) ([]forwardOutcome, error) {
	d := &decoder{b: b}
	n := d.count(6)
	if d.err == nil && n != want {
		d.fail(fmt.Sprintf("%d outcomes for %d commands", n, want))
	}
	var outs []forwardOutcome
	for i := 0; i < n && d.err == nil; i++ {
		var o forwardOutcome
		o.res.Index = d.uvarint()
		o.res.BrokerEpoch = d.varint()
		o.res.ProducerIDs.Start = d.varint()
		o.res.ProducerIDs.Count = d.i32()
		o.code = d.u8()
		o.msg = d.str()
		outs = append(outs, o)
	}
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("forward response: %w", err)
	}
	return outs, nil
}

// encodeErrorResponse is the response of heartbeat and join requests.
func encodeErrorResponse(err error) []byte {
	e := &encoder{}
	code, msg := errorCode(err)
	e.u8(code)
	e.str(msg)
	return e.b
}

// decodeErrorResponse decodes encodeErrorResponse's body: the remote error
// (nil for success), or an error for a garbled body.
func decodeErrorResponse(b []byte) (error, error) {
	d := &decoder{b: b}
	code, msg := d.u8(), d.str()
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("forward response: %w", err)
	}
	return codeError(code, msg), nil
}

// writeFrame writes one length-prefixed frame.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > maxForwardFrame {
		return fmt.Errorf("%w: forward frame of %d bytes exceeds %d", ErrInvalidCommand, len(body), maxForwardFrame)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	_, err := w.Write(append(buf, body...))
	return err
}

// readFrame reads one length-prefixed frame of at most maxForwardFrame bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxForwardFrame {
		return nil, fmt.Errorf("%w: forward frame of %d bytes exceeds %d", ErrCorruptCommand, n, maxForwardFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// serveForward answers requests on one forward connection until it fails
// or goes idle. Owned by the stream's router goroutine (tcpStream.wg).
func (n *Node) serveForward(c net.Conn) {
	<-n.opened
	if n.r == nil {
		return // Open failed
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(forwardIdleTimeout))
		body, err := readFrame(c)
		if err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		req, err := decodeForwardRequest(body)
		if err != nil {
			n.cfg.Logger.Warn("raft: bad forwarded request", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		var resp []byte
		switch req.kind {
		case fwdApply:
			ctx, cancel := context.WithTimeout(context.Background(), req.timeout)
			results, errs := n.applyAllLocal(ctx, req.cmds)
			cancel()
			outs := make([]forwardOutcome, len(results))
			for i := range results {
				outs[i].res = results[i]
				outs[i].code, outs[i].msg = errorCode(errs[i])
			}
			resp = encodeApplyResponse(outs)
		case fwdHeartbeat:
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
			err := n.heartbeatLocal(ctx, req.hb, req.applied)
			cancel()
			resp = encodeErrorResponse(err)
		case fwdJoin:
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
			err := n.joinLocal(ctx, req.join)
			cancel()
			resp = encodeErrorResponse(err)
		case fwdLeave:
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
			err := n.leaveLocal(ctx, req.join)
			cancel()
			resp = encodeErrorResponse(err)
		case fwdDescribeQuorum:
			info, err := n.describeQuorumLocal()
			resp = encodeQuorumResponse(info, err)
		case fwdPromote, fwdDemote:
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
			var err error
			if req.kind == fwdPromote {
				err = n.promoteLocal(ctx, req.join.id)
			} else {
				err = n.demoteLocal(ctx, req.join.id)
			}
			cancel()
			resp = encodeErrorResponse(err)
		}
		_ = c.SetWriteDeadline(time.Now().Add(n.cfg.TransportTimeout))
		if err := writeFrame(c, resp); err != nil {
			return
		}
	}
}

// errUnreachable marks a forward call that failed in transport (dial,
// I/O, a garbled response): the leader may have moved; retried like
// ErrNotLeader.
var errUnreachable = errors.New("raft: leader unreachable")

// dialFunc connects to a peer's raft port (tcpStream.dialContext).
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// forwardCall sends one request to the node at addr and returns the
// response body. ctx bounds the whole exchange.
func forwardCall(ctx context.Context, dial dialFunc, addr string, req []byte) ([]byte, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write([]byte{forwardTag}); err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	if err := writeFrame(c, req); err != nil {
		if errors.Is(err, ErrInvalidCommand) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	body, err := readFrame(c)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	return body, nil
}

// forwardApply sends cmds to the leader at addr; outcomes as ApplyAll.
// A transport failure gives every command the same retryable error.
func forwardApply(ctx context.Context, dial dialFunc, addr string, cmds []Command) ([]Result, []error) {
	results := make([]Result, len(cmds))
	errs := make([]error, len(cmds))
	fail := func(err error) ([]Result, []error) {
		for i, c := range cmds {
			errs[i] = fmt.Errorf("apply %s via leader %s: %w", c.Type(), addr, err)
		}
		return results, errs
	}
	timeout := maxForwardTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	body, err := forwardCall(ctx, dial, addr, encodeApplyRequest(timeout, cmds))
	if err != nil {
		return fail(err)
	}
	outs, err := decodeApplyResponse(body, len(cmds))
	if err != nil {
		return fail(fmt.Errorf("%w: %w", errUnreachable, err))
	}
	for i, o := range outs {
		results[i] = o.res
		errs[i] = codeError(o.code, o.msg)
	}
	return results, errs
}

// forwardHeartbeat sends hb to the leader at addr.
func forwardHeartbeat(ctx context.Context, dial dialFunc, addr string, hb BrokerHeartbeat, applied uint64) error {
	body, err := forwardCall(ctx, dial, addr, encodeHeartbeatRequest(hb, applied))
	if err != nil {
		return fmt.Errorf("heartbeat via leader %s: %w", addr, err)
	}
	remote, err := decodeErrorResponse(body)
	if err != nil {
		return fmt.Errorf("heartbeat via leader %s: %w: %w", addr, errUnreachable, err)
	}
	return remote
}
