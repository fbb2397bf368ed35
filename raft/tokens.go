package raft

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Delegation tokens (KIP-48): stored like Kafka's DelegationTokenRecord,
// the token's identity, owner, requester, renewers and timestamps. The
// HMAC is not stored: every broker derives it from the token id with the
// shared delegation.token.secret.key, as Kafka's brokers do, so the
// metadata log and snapshots never hold a usable credential.
//
// The proposer (the broker answering the Kafka request) checks who may
// renew or expire a token and computes the new timestamps; the commands
// carry the outcome, so apply stays deterministic. A renewal is a
// compare-nothing update that fails when the token is gone, so a renewal
// racing an expiry cannot bring a removed token back.

// DelegationToken is one delegation token. Principals are in Kafka's
// "Type:name" form ("User:alice"). Timestamps are Unix milliseconds.
//
// Invariant (validate): TokenID, Owner and Requester are not empty;
// IssueMs <= MaxMs and ExpiryMs <= MaxMs. Renewers is shared by every
// State version and never modified.
type DelegationToken struct {
	TokenID   string
	Owner     string
	Requester string
	Renewers  []string
	IssueMs   int64
	ExpiryMs  int64
	MaxMs     int64
}

// Expired reports whether t can no longer be used at nowMs: its expiry or
// its max lifetime has passed (Kafka compares with "<" on both).
func (t DelegationToken) Expired(nowMs int64) bool {
	return t.ExpiryMs < nowMs || t.MaxMs < nowMs
}

// OwnerOrRenewer reports whether principal owns, requested or may renew t
// (Kafka's TokenInformation.ownerOrRenewer): who may describe it.
func (t DelegationToken) OwnerOrRenewer(principal string) bool {
	return t.Owner == principal || t.Requester == principal || slices.Contains(t.Renewers, principal)
}

// MayRenew reports whether principal may renew or expire t: its owner or
// one of its renewers (Kafka's allowedToRenew; the requester alone may
// not).
func (t DelegationToken) MayRenew(principal string) bool {
	return t.Owner == principal || slices.Contains(t.Renewers, principal)
}

func (t DelegationToken) validate() error {
	switch {
	case t.TokenID == "":
		return invalid("delegation token without id")
	case t.Owner == "" || t.Requester == "":
		return invalid("delegation token %s without owner or requester", t.TokenID)
	case t.IssueMs > t.MaxMs || t.ExpiryMs > t.MaxMs:
		return invalid("delegation token %s: issued %d, expires %d, max %d", t.TokenID, t.IssueMs, t.ExpiryMs, t.MaxMs)
	}
	for _, r := range t.Renewers {
		if r == "" {
			return invalid("delegation token %s: empty renewer", t.TokenID)
		}
	}
	return nil
}

func (t DelegationToken) equal(o DelegationToken) bool {
	return t.TokenID == o.TokenID && t.Owner == o.Owner && t.Requester == o.Requester &&
		slices.Equal(t.Renewers, o.Renewers) && t.IssueMs == o.IssueMs && t.ExpiryMs == o.ExpiryMs && t.MaxMs == o.MaxMs
}

// SortedDelegationTokens returns every token ordered by id (a fresh slice).
func (s *State) SortedDelegationTokens() []DelegationToken {
	out := slices.Collect(maps.Values(s.DelegationTokens))
	slices.SortFunc(out, func(a, b DelegationToken) int { return cmp.Compare(a.TokenID, b.TokenID) })
	return out
}

func encodeDelegationToken(e *encoder, t DelegationToken) {
	e.str(t.TokenID)
	e.str(t.Owner)
	e.str(t.Requester)
	e.strs(t.Renewers)
	e.varint(t.IssueMs)
	e.varint(t.ExpiryMs)
	e.varint(t.MaxMs)
}

func decodeDelegationToken(d *decoder) DelegationToken {
	return DelegationToken{TokenID: d.str(), Owner: d.str(), Requester: d.str(), Renewers: d.strs(),
		IssueMs: d.varint(), ExpiryMs: d.varint(), MaxMs: d.varint()}
}

// minDelegationTokenSize is the fewest bytes an encoded token takes.
const minDelegationTokenSize = 7

// CreateDelegationToken adds a token. Creating the same token again
// changes nothing; a different token under an existing id fails with
// ErrInvalidCommand (ids are random UUIDs, so that is a bug, not a race).
type CreateDelegationToken struct {
	Token DelegationToken
}

// UpdateDelegationTokenExpiry sets a token's expiry (a renewal, or an
// expiry with a non-negative period). It fails with
// ErrUnknownDelegationToken when the token is gone and with
// ErrInvalidCommand when the expiry passes the token's max timestamp.
type UpdateDelegationTokenExpiry struct {
	TokenID  string
	ExpiryMs int64
}

// RemoveDelegationToken removes a token at once (ExpireDelegationToken
// with a negative period). Removing an absent token fails with
// ErrUnknownDelegationToken and changes nothing.
type RemoveDelegationToken struct {
	TokenID string
}

// RemoveExpiredDelegationTokens removes every token expired at NowMs (see
// DelegationToken.Expired): the controller's periodic sweep. The time is
// part of the command, so every replica removes the same tokens.
type RemoveExpiredDelegationTokens struct {
	NowMs int64
}

// Type implements Command.
func (CreateDelegationToken) Type() CommandType { return CmdCreateDelegationToken }

// Type implements Command.
func (UpdateDelegationTokenExpiry) Type() CommandType { return CmdUpdateDelegationTokenExpiry }

// Type implements Command.
func (RemoveDelegationToken) Type() CommandType { return CmdRemoveDelegationToken }

// Type implements Command.
func (RemoveExpiredDelegationTokens) Type() CommandType { return CmdRemoveExpiredDelegationTokens }

func (c CreateDelegationToken) encode(e *encoder) { encodeDelegationToken(e, c.Token) }

func decodeCreateDelegationToken(d *decoder) Command {
	return CreateDelegationToken{Token: decodeDelegationToken(d)}
}

func (c UpdateDelegationTokenExpiry) encode(e *encoder) {
	e.str(c.TokenID)
	e.varint(c.ExpiryMs)
}

func decodeUpdateDelegationTokenExpiry(d *decoder) Command {
	return UpdateDelegationTokenExpiry{TokenID: d.str(), ExpiryMs: d.varint()}
}

func (c RemoveDelegationToken) encode(e *encoder) { e.str(c.TokenID) }

func decodeRemoveDelegationToken(d *decoder) Command {
	return RemoveDelegationToken{TokenID: d.str()}
}

func (c RemoveExpiredDelegationTokens) encode(e *encoder) { e.varint(c.NowMs) }

func decodeRemoveExpiredDelegationTokens(d *decoder) Command {
	return RemoveExpiredDelegationTokens{NowMs: d.varint()}
}

func (c CreateDelegationToken) apply(t *txn, _ uint64) (Result, error) {
	tok := c.Token
	tok.Renewers = slices.Clone(tok.Renewers)
	if err := tok.validate(); err != nil {
		return Result{}, err
	}
	if old, ok := t.s.DelegationTokens[tok.TokenID]; ok {
		if old.equal(tok) {
			return Result{}, nil
		}
		return Result{}, invalid("delegation token %s exists with other contents", tok.TokenID)
	}
	t.delegationTokens()[tok.TokenID] = tok
	return Result{}, nil
}

func (c UpdateDelegationTokenExpiry) apply(t *txn, _ uint64) (Result, error) {
	tok, ok := t.s.DelegationTokens[c.TokenID]
	if !ok {
		return Result{}, fmt.Errorf("%w: %s", ErrUnknownDelegationToken, c.TokenID)
	}
	if c.ExpiryMs > tok.MaxMs {
		return Result{}, invalid("delegation token %s: expiry %d after max %d", c.TokenID, c.ExpiryMs, tok.MaxMs)
	}
	if tok.ExpiryMs == c.ExpiryMs {
		return Result{}, nil
	}
	tok.ExpiryMs = c.ExpiryMs
	t.delegationTokens()[c.TokenID] = tok
	return Result{}, nil
}

func (c RemoveDelegationToken) apply(t *txn, _ uint64) (Result, error) {
	if _, ok := t.s.DelegationTokens[c.TokenID]; !ok {
		return Result{}, fmt.Errorf("%w: %s", ErrUnknownDelegationToken, c.TokenID)
	}
	delete(t.delegationTokens(), c.TokenID)
	return Result{}, nil
}

func (c RemoveExpiredDelegationTokens) apply(t *txn, _ uint64) (Result, error) {
	for id, tok := range t.s.DelegationTokens {
		if tok.Expired(c.NowMs) {
			delete(t.delegationTokens(), id)
		}
	}
	return Result{}, nil
}

// delegationTokens returns the txn's own copy of the token map.
func (t *txn) delegationTokens() map[string]DelegationToken {
	if !t.tokensOwned {
		t.s.DelegationTokens = maps.Clone(t.s.DelegationTokens)
		t.tokensOwned = true
	}
	return t.s.DelegationTokens
}

// checkDelegationTokenInvariants verifies the DelegationTokens invariants.
func (s *State) checkDelegationTokenInvariants() error {
	if s.DelegationTokens == nil {
		return fmt.Errorf("nil delegation token map")
	}
	for id, tok := range s.DelegationTokens {
		if tok.TokenID != id {
			return fmt.Errorf("delegation token %s stored under id %s", tok.TokenID, id)
		}
		if err := tok.validate(); err != nil {
			return err
		}
	}
	return nil
}

// encodeDelegationTokenSection writes the snapshot's token section: every
// token, ordered by id.
func encodeDelegationTokenSection(e *encoder, s *State) {
	toks := s.SortedDelegationTokens()
	e.uvarint(uint64(len(toks)))
	for _, tok := range toks {
		encodeDelegationToken(e, tok)
	}
}

// decodeDelegationTokenSection reads what encodeDelegationTokenSection
// wrote into s. The section is only written when tokens exist, so an empty
// one is corrupt (and the round trip stays exact).
func decodeDelegationTokenSection(d *decoder, s *State) error {
	n := d.count(minDelegationTokenSize)
	if d.err != nil {
		return nil
	}
	if n == 0 {
		return fmt.Errorf("%w: empty delegation token section", ErrCorruptSnapshot)
	}
	for range n {
		tok := decodeDelegationToken(d)
		if d.err != nil {
			return nil
		}
		if _, dup := s.DelegationTokens[tok.TokenID]; dup {
			return fmt.Errorf("%w: duplicate delegation token %s", ErrCorruptSnapshot, tok.TokenID)
		}
		s.DelegationTokens[tok.TokenID] = tok
	}
	return nil
}
