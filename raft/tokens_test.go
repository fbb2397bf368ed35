package raft

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func testToken(id string, expiry, maxMs int64, renewers ...string) DelegationToken {
	return DelegationToken{TokenID: id, Owner: "User:alice", Requester: "User:admin", Renewers: renewers,
		IssueMs: 1000, ExpiryMs: expiry, MaxMs: maxMs}
}

// TestDelegationTokenCommands drives the token commands through creation,
// renewal, removal and the expiry sweep and checks the resulting tokens.
func TestDelegationTokenCommands(t *testing.T) {
	tokA := testToken("a", 5000, 9000, "User:bob")
	tokB := testToken("b", 3000, 3000)
	for _, tc := range []struct {
		name    string
		cmds    []Command
		want    map[string]DelegationToken
		wantErr error // of the last command
	}{
		{name: "create", cmds: []Command{CreateDelegationToken{Token: tokA}},
			want: map[string]DelegationToken{"a": tokA}},
		{name: "create twice is a no-op", cmds: []Command{CreateDelegationToken{Token: tokA}, CreateDelegationToken{Token: tokA}},
			want: map[string]DelegationToken{"a": tokA}},
		{name: "create other token under same id", cmds: []Command{CreateDelegationToken{Token: tokA},
			CreateDelegationToken{Token: testToken("a", 6000, 9000)}},
			want: map[string]DelegationToken{"a": tokA}, wantErr: ErrInvalidCommand},
		{name: "create without id", cmds: []Command{CreateDelegationToken{Token: testToken("", 1, 2)}},
			want: map[string]DelegationToken{}, wantErr: ErrInvalidCommand},
		{name: "create without owner", cmds: []Command{CreateDelegationToken{Token: DelegationToken{TokenID: "x", Requester: "User:a"}}},
			want: map[string]DelegationToken{}, wantErr: ErrInvalidCommand},
		{name: "create expiring after max", cmds: []Command{CreateDelegationToken{Token: testToken("a", 9001, 9000)}},
			want: map[string]DelegationToken{}, wantErr: ErrInvalidCommand},
		{name: "create with empty renewer", cmds: []Command{CreateDelegationToken{Token: testToken("a", 2000, 9000, "")}},
			want: map[string]DelegationToken{}, wantErr: ErrInvalidCommand},
		{name: "renew", cmds: []Command{CreateDelegationToken{Token: tokA}, UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 8000}},
			want: map[string]DelegationToken{"a": testToken("a", 8000, 9000, "User:bob")}},
		{name: "renew twice is a no-op", cmds: []Command{CreateDelegationToken{Token: tokA},
			UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 8000}, UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 8000}},
			want: map[string]DelegationToken{"a": testToken("a", 8000, 9000, "User:bob")}},
		{name: "renew past max", cmds: []Command{CreateDelegationToken{Token: tokA}, UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 9001}},
			want: map[string]DelegationToken{"a": tokA}, wantErr: ErrInvalidCommand},
		{name: "renew a removed token does not bring it back", cmds: []Command{CreateDelegationToken{Token: tokA},
			RemoveDelegationToken{TokenID: "a"}, UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 8000}},
			want: map[string]DelegationToken{}, wantErr: ErrUnknownDelegationToken},
		{name: "remove", cmds: []Command{CreateDelegationToken{Token: tokA}, CreateDelegationToken{Token: tokB}, RemoveDelegationToken{TokenID: "a"}},
			want: map[string]DelegationToken{"b": tokB}},
		{name: "remove absent", cmds: []Command{RemoveDelegationToken{TokenID: "a"}},
			want: map[string]DelegationToken{}, wantErr: ErrUnknownDelegationToken},
		{name: "sweep removes only expired tokens", cmds: []Command{CreateDelegationToken{Token: tokA}, CreateDelegationToken{Token: tokB},
			RemoveExpiredDelegationTokens{NowMs: 4000}},
			want: map[string]DelegationToken{"a": tokA}},
		{name: "sweep keeps a token expiring now", cmds: []Command{CreateDelegationToken{Token: tokB}, RemoveExpiredDelegationTokens{NowMs: 3000}},
			want: map[string]DelegationToken{"b": tokB}},
		{name: "sweep after renewal", cmds: []Command{CreateDelegationToken{Token: tokA}, UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 6000},
			RemoveExpiredDelegationTokens{NowMs: 5500}},
			want: map[string]DelegationToken{"a": testToken("a", 6000, 9000, "User:bob")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			var err error
			for _, c := range tc.cmds {
				_, err = f.apply(c)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("last command: %v, want %v", err, tc.wantErr)
			}
			got := f.current()
			checkInvariants(t, got)
			if !reflect.DeepEqual(got.DelegationTokens, tc.want) {
				t.Fatalf("tokens %+v, want %+v", got.DelegationTokens, tc.want)
			}
		})
	}
}

// TestDelegationTokenPredicates checks who may describe and renew a token
// and when it counts as expired.
func TestDelegationTokenPredicates(t *testing.T) {
	tok := testToken("a", 5000, 9000, "User:bob")
	for _, tc := range []struct {
		principal       string
		describe, renew bool
	}{
		{"User:alice", true, true},  // owner
		{"User:admin", true, false}, // requester
		{"User:bob", true, true},    // renewer
		{"User:carol", false, false},
	} {
		if got := tok.OwnerOrRenewer(tc.principal); got != tc.describe {
			t.Errorf("OwnerOrRenewer(%s) = %v", tc.principal, got)
		}
		if got := tok.MayRenew(tc.principal); got != tc.renew {
			t.Errorf("MayRenew(%s) = %v", tc.principal, got)
		}
	}
	for _, tc := range []struct {
		now  int64
		want bool
	}{{4999, false}, {5000, false}, {5001, true}} {
		if got := tok.Expired(tc.now); got != tc.want {
			t.Errorf("Expired(%d) = %v", tc.now, got)
		}
	}
	if !(DelegationToken{ExpiryMs: 10, MaxMs: 5}).Expired(6) {
		t.Error("a token past its max timestamp is expired")
	}
}

// TestDelegationTokenSnapshot: tokens survive a snapshot and restore; a
// state without tokens keeps the version 3 format.
func TestDelegationTokenSnapshot(t *testing.T) {
	f := newTestFSM()
	f.mustApply(t, InitCluster{ClusterID: "c"}, RegisterBroker{ID: 1, Host: "h", Port: 1}, scram("alice", SCRAMSHA256, 4096),
		CreateDelegationToken{Token: testToken("a", 5000, 9000, "User:bob", "User:carol")},
		CreateDelegationToken{Token: testToken("b", 3000, 3000)},
		AlterClientQuotas{Changes: []QuotaChange{{Entity: qAlice, Set: map[string]float64{QuotaProducerByteRate: 1}}}})
	want := f.current()
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sink.Bytes(), []byte(snapshotMagicV4)) {
		t.Fatalf("snapshot with tokens starts %q", sink.Bytes()[:len(snapshotMagicV4)])
	}
	dst := newFSM()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got := dst.current()
	if !reflect.DeepEqual(got.DelegationTokens, want.DelegationTokens) || !reflect.DeepEqual(got.ClientQuotas, want.ClientQuotas) ||
		!reflect.DeepEqual(got.SCRAM, want.SCRAM) {
		t.Fatalf("restored %+v, want %+v", got.DelegationTokens, want.DelegationTokens)
	}
	f.mustApply(t, RemoveDelegationToken{TokenID: "a"}, RemoveDelegationToken{TokenID: "b"})
	if b := encodeState(f.current()); !bytes.HasPrefix(b, []byte(snapshotMagic)) {
		t.Fatalf("snapshot without tokens starts %q", b[:len(snapshotMagic)])
	}
	// A version 4 snapshot with an empty token section is corrupt.
	bad := encodeState(f.current())
	copy(bad, snapshotMagicV4)
	if _, err := decodeState(bad); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("v4 without token section: %v", err)
	}
}

// sampleTokenCommands holds every delegation token command.
func sampleTokenCommands() []Command {
	return []Command{
		CreateDelegationToken{Token: testToken("8a5e3c2b-2f7e-4c35-9a57-2d1c0b2f9e11", 86_400_000, 604_800_000, "User:bob")},
		CreateDelegationToken{Token: DelegationToken{TokenID: "t", Owner: "User:a", Requester: "User:a", IssueMs: -1, ExpiryMs: -1, MaxMs: 0}},
		UpdateDelegationTokenExpiry{TokenID: "t", ExpiryMs: 1_700_000_000_000},
		RemoveDelegationToken{TokenID: "t"},
		RemoveExpiredDelegationTokens{NowMs: 1_700_000_000_000},
	}
}

// FuzzDecodeDelegationTokenCommand: token commands decode or fail cleanly,
// round-trip exactly, and applying them keeps the state's invariants.
// Seeds: testdata/fuzz/FuzzDecodeDelegationTokenCommand.
func FuzzDecodeDelegationTokenCommand(f *testing.F) {
	for _, c := range sampleTokenCommands() {
		f.Add(EncodeCommand(c))
	}
	base := newTestFSM()
	base.mustApplyF(f, CreateDelegationToken{Token: testToken("t", 5000, 9000)})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzApplyCommand(t, base, data)
		if s == nil {
			return
		}
		checkInvariants(t, s)
		back, err := decodeState(encodeState(s))
		if err != nil {
			t.Fatalf("snapshot does not decode: %v", err)
		}
		if !reflect.DeepEqual(back.DelegationTokens, s.DelegationTokens) {
			t.Fatalf("snapshot changed the tokens")
		}
	})
}
