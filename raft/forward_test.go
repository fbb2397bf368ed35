package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// forwardSeeds are well-formed request bodies for the fuzz target.
func forwardSeeds() [][]byte {
	return [][]byte{
		encodeApplyRequest(3*time.Second, sampleCommands()),
		encodeApplyRequest(0, nil),
		encodeHeartbeatRequest(BrokerHeartbeat{ID: 2, Epoch: 41, WantShutdown: true}, 99),
		encodeHeartbeatRequest(BrokerHeartbeat{ID: 0, Epoch: -1}, 0),
		encodeJoinRequest(joinRequest{id: 4, addr: "127.0.0.1:9193"}),
		encodeJoinRequest(joinRequest{id: 5, addr: "[::1]:9193", relayed: true}),
		encodeLeaveRequest(joinRequest{id: 4}),
		encodeLeaveRequest(joinRequest{id: 5, relayed: true}),
		{fwdDescribeQuorum},
		encodeMembershipRequest(fwdPromote, 4),
		encodeMembershipRequest(fwdDemote, 2),
	}
}

// FuzzDecodeForwardRequest: a forwarded request from the network decodes or
// fails cleanly; what decodes re-encodes to the same request. Seeds:
// testdata/fuzz/FuzzDecodeForwardRequest.
func FuzzDecodeForwardRequest(f *testing.F) {
	for _, s := range forwardSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeForwardRequest(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptCommand) && !errors.Is(err, ErrUnknownCommand) {
				t.Fatalf("error %v wraps neither ErrCorruptCommand nor ErrUnknownCommand", err)
			}
			return
		}
		var again []byte
		switch req.kind {
		case fwdApply:
			again = encodeApplyRequest(req.timeout, req.cmds)
		case fwdHeartbeat:
			again = encodeHeartbeatRequest(req.hb, req.applied)
		case fwdJoin:
			again = encodeJoinRequest(req.join)
		case fwdLeave:
			again = encodeLeaveRequest(req.join)
		case fwdDescribeQuorum:
			again = []byte{fwdDescribeQuorum}
		case fwdPromote, fwdDemote:
			again = encodeMembershipRequest(req.kind, req.join.id)
		default:
			t.Fatalf("decoded unknown kind %d", req.kind)
		}
		req2, err := decodeForwardRequest(again)
		if err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip: %+v -> %+v (%v)", req, req2, err)
		}
	})
}

// FuzzDecodeForwardResponse: a leader's answer decodes or fails cleanly,
// and round-trips. Seeds: testdata/fuzz/FuzzDecodeForwardResponse.
func FuzzDecodeForwardResponse(f *testing.F) {
	f.Add(encodeApplyResponse([]forwardOutcome{{res: Result{Index: 7, BrokerEpoch: 7}},
		{res: Result{Index: 9, ProducerIDs: ProducerIDBlock{Start: 1000, Count: 1000}}},
		{res: Result{Index: 10}, code: 11, msg: "CreateTopic: raft: topic already exists: t"}}), 3)
	f.Add(encodeErrorResponse(fmt.Errorf("x: %w", ErrNotLeader)), -1)
	f.Add(encodeErrorResponse(nil), -1)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		if want < 0 {
			remote, err := decodeErrorResponse(data)
			if err != nil {
				return
			}
			again, err := decodeErrorResponse(encodeErrorResponse(remote))
			if err != nil || (remote == nil) != (again == nil) || (remote != nil && again.Error() != remote.Error()) {
				t.Fatalf("heartbeat response round trip: %v -> %v (%v)", remote, again, err)
			}
			return
		}
		outs, err := decodeApplyResponse(data, want)
		if err != nil {
			return
		}
		if len(outs) != want {
			t.Fatalf("%d outcomes, want %d", len(outs), want)
		}
		again, err := decodeApplyResponse(encodeApplyResponse(outs), want)
		if err != nil || !reflect.DeepEqual(again, outs) {
			t.Fatalf("round trip: %+v -> %+v (%v)", outs, again, err)
		}
	})
}

func TestWireErrors(t *testing.T) {
	if len(wireErrors) >= int(codeOther) {
		t.Fatal("too many wire errors for one byte")
	}
	for i, sentinel := range wireErrors {
		err := fmt.Errorf("apply X: %w: detail", sentinel)
		code, msg := errorCode(err)
		if code != uint8(i+1) || msg != err.Error() {
			t.Fatalf("errorCode(%v) = %d %q", err, code, msg)
		}
		back := codeError(code, msg)
		if !errors.Is(back, sentinel) || back.Error() != err.Error() {
			t.Fatalf("codeError: %v does not match %v", back, sentinel)
		}
		for j, other := range wireErrors {
			if j != i && errors.Is(back, other) && !errors.Is(sentinel, other) {
				t.Fatalf("%v also matches %v", back, other)
			}
		}
	}
	if code, _ := errorCode(nil); code != 0 || codeError(0, "") != nil {
		t.Fatal("nil error not code 0")
	}
	other := codeError(codeOther, "boom")
	if other.Error() != "boom" || errors.Is(other, ErrNotLeader) {
		t.Fatalf("other error: %v", other)
	}
	if e := codeError(200, "newer"); e.Error() != "newer" || errors.Unwrap(e) != nil {
		t.Fatalf("unknown code: %v", e)
	}
}

func TestForwardFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, make([]byte, maxForwardFrame+1)); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("oversized write: %v", err)
	}
	buf.Reset()
	buf.Write([]byte{0xff, 0xff, 0xff, 0xff})
	if _, err := readFrame(&buf); !errors.Is(err, ErrCorruptCommand) {
		t.Fatalf("oversized read: %v", err)
	}
	if err := writeFrame(&buf, []byte("abc")); err != nil {
		t.Fatal(err)
	}
}

// TestForwardBadPeer: garbage after the forward tag closes the connection
// without harming the node, which keeps serving raft and forwards.
func TestForwardBadPeer(t *testing.T) {
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 0)
	l := c.nodes[0]
	for _, body := range [][]byte{{}, {9, 9, 9}, {fwdApply, 0, 1, 3, 0xee, 0, 0}} {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := forwardCall(cctx, plainDial, l.Addr(), body)
		cancel()
		if err == nil {
			t.Fatalf("garbage %x answered", body)
		}
	}
	f := c.follower(ctx)
	if _, err := f.Apply(ctx, InitCluster{ClusterID: f.State().ClusterID}); err != nil {
		t.Fatalf("apply after garbage: %v", err)
	}
}
