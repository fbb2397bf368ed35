package broker

// CreateDelegationToken v1-3, RenewDelegationToken v1-2,
// ExpireDelegationToken v1-2 and DescribeDelegationToken v1-3 (KIP-48,
// KIP-373 for owners other than the requester): delegation tokens as
// Apache Kafka 4.3's KafkaApis and DelegationTokenControlManager serve
// them, stored in the raft state (raft/tokens.go) so every broker
// authenticates them and they survive restarts.
//
// A token is an id (a random Kafka-style base64url UUID) and an HMAC:
// HMAC-SHA512 of the id keyed with delegation.token.secret.key. Clients
// authenticate with SASL/SCRAM (SHA-256 or SHA-512) and the extension
// tokenauth=true, the id as user name and the base64 HMAC as password; the
// session's principal is then User:<owner name>, and the session ends when
// the token expires (Kafka's credential lifetime, KIP-368). The HMAC is
// not replicated: each broker derives it, so all brokers need the same
// secret key, as in Kafka.
//
// Rules, as Kafka's:
//   - None of the four APIs may be used over a PLAINTEXT listener, over SSL
//     without a client certificate (principal User:ANONYMOUS) or from a
//     token-authenticated connection: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED.
//   - Without a secret key: DELEGATION_TOKEN_AUTH_DISABLED.
//   - Create: the owner is the requester unless the request names another
//     (v3), which needs CREATE_TOKENS on the USER resource of the owner
//     ("User:alice"), else DELEGATION_TOKEN_AUTHORIZATION_FAILED; renewers
//     must be of type User (INVALID_PRINCIPAL_TYPE). The max timestamp is
//     now + min(delegation.token.max.lifetime.ms, requested max lifetime
//     when > 0), the expiry min(max, now + delegation.token.expiry.time.ms).
//   - Renew and expire find the token by HMAC (DELEGATION_TOKEN_NOT_FOUND),
//     refuse an expired one (DELEGATION_TOKEN_EXPIRED) and anyone but the
//     owner and the renewers (DELEGATION_TOKEN_OWNER_MISMATCH). Renew sets
//     the expiry to min(max, now + min(expiry time, requested period when
//     > 0)); expire with a period >= 0 to min(max, now + period), with a
//     negative period removes the token at once and answers the period as
//     the expiry timestamp.
//   - Describe with an empty owner list answers nothing; a null list means
//     every owner. A token is shown when it matches a listed owner (as
//     owner, requester or renewer) and the caller owns, requested or may
//     renew it, or has DESCRIBE on its DELEGATION_TOKEN resource, or
//     DESCRIBE_TOKENS on its owner's USER resource.
//
// Expired tokens: authentication, renew, expire and describe treat a token
// whose expiry or max timestamp has passed as gone; the raft leader removes
// such tokens every delegation.token.expiry.check.interval.ms.
//
// Differences from Kafka: the checks run on the broker that received the
// request against its copy of the metadata (Kafka forwards the request to
// the controller), so a token created through another broker a moment ago
// may be DELEGATION_TOKEN_NOT_FOUND here until the metadata arrives;
// Describe hides expired tokens that the sweep has not removed yet (Kafka
// lists them until it does).

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.CreateDelegationTokenRequest{}, 1, 3, (*Broker).handleCreateDelegationToken)
	register(&kmsg.RenewDelegationTokenRequest{}, 1, 2, (*Broker).handleRenewDelegationToken)
	register(&kmsg.ExpireDelegationTokenRequest{}, 1, 2, (*Broker).handleExpireDelegationToken)
	register(&kmsg.DescribeDelegationTokenRequest{}, 1, 3, (*Broker).handleDescribeDelegationToken)
}

// DelegationTokenConfig holds Kafka's delegation.token.* settings.
type DelegationTokenConfig struct {
	// SecretKey is delegation.token.secret.key: the HMAC key of every
	// token; the same on every broker. Empty disables delegation tokens.
	SecretKey string
	// MaxLifetime is delegation.token.max.lifetime.ms: no token lives
	// longer, however often it is renewed.
	MaxLifetime time.Duration
	// ExpiryTime is delegation.token.expiry.time.ms: how long a token
	// lives after its creation or renewal unless the request asks less.
	ExpiryTime time.Duration
	// ExpiryCheckInterval is delegation.token.expiry.check.interval.ms:
	// how often the raft leader removes expired tokens.
	ExpiryCheckInterval time.Duration
}

// DefaultDelegationTokenConfig returns Kafka's defaults: tokens disabled
// (no secret key), 7 days max lifetime, 1 day expiry, hourly sweep.
func DefaultDelegationTokenConfig() DelegationTokenConfig {
	return DelegationTokenConfig{
		MaxLifetime:         7 * 24 * time.Hour,
		ExpiryTime:          24 * time.Hour,
		ExpiryCheckInterval: time.Hour,
	}
}

func (c DelegationTokenConfig) validate() error {
	if c.MaxLifetime < time.Millisecond || c.ExpiryTime < time.Millisecond || c.ExpiryCheckInterval < time.Millisecond {
		return fmt.Errorf("%w: delegation token max lifetime, expiry time and expiry check interval must be at least 1ms", ErrInvalidConfig)
	}
	return nil
}

// ACL codes of the token APIs.
const (
	opCreateTokens     = int8(kmsg.ACLOperationCreateTokens)
	opDescribeTokens   = int8(kmsg.ACLOperationDescribeTokens)
	resDelegationToken = int8(kmsg.ACLResourceTypeDelegationToken)
	resUser            = int8(kmsg.ACLResourceTypeUser)
)

// applyToken applies a token command; unlike Broker.apply it has no
// partitions to reconcile.
func (b *Broker) applyToken(ctx context.Context, cmd raft.Command) error {
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	_, err := b.node.Apply(ctx, cmd)
	return err
}

// tokenHMAC is a token's password: HMAC-SHA512 of its id keyed with the
// secret key (Kafka's DelegationTokenManager.createHmac).
func (b *Broker) tokenHMAC(tokenID string) []byte {
	m := hmac.New(sha512.New, []byte(b.cfg.DelegationTokens.SecretKey))
	m.Write([]byte(tokenID))
	return m.Sum(nil)
}

// tokenByHMAC finds the token whose HMAC is h in st; ok is false when none
// is (or tokens are disabled).
func (b *Broker) tokenByHMAC(st *raft.State, h []byte) (tok raft.DelegationToken, ok bool) {
	if b.cfg.DelegationTokens.SecretKey == "" || len(h) == 0 {
		return tok, false
	}
	for _, t := range st.DelegationTokens {
		if subtle.ConstantTimeCompare(b.tokenHMAC(t.TokenID), h) == 1 {
			return t, true
		}
	}
	return tok, false
}

// tokenCredential is the SCRAM credential a client authenticating with
// token tokenID must prove: derived from the base64 HMAC as password, as
// Kafka's DelegationTokenCache derives it, with 4096 iterations and a salt
// derived from the broker's secret and the id (stable while the broker
// runs). ok is false for an unknown or expired token, or with tokens
// disabled.
func (b *Broker) tokenCredential(tokenID string, m *scramMechanism) (cred raft.SCRAMCredential, tok raft.DelegationToken, ok bool) {
	if b.cfg.DelegationTokens.SecretKey == "" {
		return cred, tok, false
	}
	tok, ok = b.node.State().DelegationTokens[tokenID]
	if !ok || tok.Expired(time.Now().UnixMilli()) {
		return cred, tok, false
	}
	salt := hmac.New(sha256.New, b.authSecret[:])
	fmt.Fprintf(salt, "token-salt\x00%s\x00%s", m.name, tokenID)
	cred, err := m.credential(base64.StdEncoding.EncodeToString(b.tokenHMAC(tokenID)), salt.Sum(nil)[:16], scramDefaultIterations)
	if err != nil {
		return cred, tok, false
	}
	return cred, tok, true
}

// tokenRequestsAllowed is Kafka's allowTokenRequests: token APIs need an
// authenticated connection that did not itself log in with a token.
func (c *conn) tokenRequestsAllowed() bool {
	proto := ProtocolPlaintext
	if c.listener != nil {
		proto = c.listener.Protocol
	}
	switch {
	case c.tokenID != "", proto == ProtocolPlaintext:
		return false
	case proto == ProtocolSSL && c.principal == anonymous:
		return false
	}
	return true
}

// tokenGone returns an error wrapping ErrSessionExpired when the
// connection logged in with a delegation token that has since expired or
// been removed, for any request but the SaslHandshake of a
// re-authentication: the connection is then closed, and logging in again
// with the token fails. (Kafka keeps such a connection until its session
// lifetime, fixed at login, ends.)
func (c *conn) tokenGone(key int16) error {
	if c.tokenID == "" || c.sasl.state != saslDone || key == saslHandshakeKey {
		return nil
	}
	tok, ok := c.b.node.State().DelegationTokens[c.tokenID]
	if ok && !tok.Expired(time.Now().UnixMilli()) {
		return nil
	}
	return fmt.Errorf("%w: %s after delegation token %s of %s expired", ErrSessionExpired, kmsg.NameForKey(key), c.tokenID, c.principal)
}

// splitPrincipal splits "User:alice" into its type and name.
func splitPrincipal(p string) (typ, name string) {
	typ, name, _ = strings.Cut(p, ":")
	return typ, name
}

// userPrincipalType is Kafka's KafkaPrincipal.USER_TYPE.
const userPrincipalType = "User"

// newTokenID returns a random id in the form of Kafka's Uuid.toString
// (22 base64url characters), never starting with '-' so command-line
// tools do not take it for an option, as Kafka's Uuid.randomUuid.
func newTokenID() string {
	for {
		var u [16]byte
		_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
		if id := base64.RawURLEncoding.EncodeToString(u[:]); id[0] != '-' {
			return id
		}
	}
}

// tokenErrCode maps a failed raft apply of a token command to a Kafka code.
func tokenErrCode(err error) *kerr.Error {
	if errors.Is(err, raft.ErrUnknownDelegationToken) {
		return kerr.DelegationTokenNotFound
	}
	return metaErr(err)
}

func (b *Broker) handleCreateDelegationToken(rq *request, req *kmsg.CreateDelegationTokenRequest) reply {
	resp := req.ResponseKind().(*kmsg.CreateDelegationTokenResponse)
	requester := rq.c.principal
	owner := requester
	if req.OwnerPrincipalName != nil && *req.OwnerPrincipalName != "" {
		typ := userPrincipalType
		if req.OwnerPrincipalType != nil {
			typ = *req.OwnerPrincipalType
		}
		owner = typ + ":" + *req.OwnerPrincipalName
	}
	resp.PrincipalType, resp.PrincipalName = splitPrincipal(owner)
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = splitPrincipal(requester)
	fail := func(e *kerr.Error) reply {
		resp.ErrorCode = e.Code
		return now(resp)
	}
	switch {
	case !rq.c.tokenRequestsAllowed():
		return fail(kerr.DelegationTokenRequestNotAllowed)
	case owner != requester && !b.authorized(rq, opCreateTokens, resUser, owner):
		return fail(kerr.DelegationTokenAuthorizationFailed)
	case slices.ContainsFunc(req.Renewers, func(r kmsg.CreateDelegationTokenRequestRenewer) bool { return r.PrincipalType != userPrincipalType }):
		return fail(kerr.InvalidPrincipalType)
	case b.cfg.DelegationTokens.SecretKey == "":
		return fail(kerr.DelegationTokenAuthDisabled)
	}
	nowMs := time.Now().UnixMilli()
	maxLife := b.cfg.DelegationTokens.MaxLifetime.Milliseconds()
	if req.MaxLifetimeMillis > 0 {
		maxLife = min(maxLife, req.MaxLifetimeMillis)
	}
	tok := raft.DelegationToken{TokenID: newTokenID(), Owner: owner, Requester: requester,
		IssueMs: nowMs, MaxMs: nowMs + maxLife}
	tok.ExpiryMs = min(tok.MaxMs, nowMs+b.cfg.DelegationTokens.ExpiryTime.Milliseconds())
	for _, r := range req.Renewers {
		p := r.PrincipalType + ":" + r.PrincipalName
		if !slices.Contains(tok.Renewers, p) {
			tok.Renewers = append(tok.Renewers, p)
		}
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if err := b.applyToken(ctx, raft.CreateDelegationToken{Token: tok}); err != nil {
			b.log.Warn("create delegation token", "owner", owner, "err", err)
			resp.ErrorCode = tokenErrCode(err).Code
			return resp
		}
		b.log.Info("created delegation token", "token_id", tok.TokenID, "owner", owner, "requester", requester)
		resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = tok.IssueMs, tok.ExpiryMs, tok.MaxMs
		resp.TokenID, resp.HMAC = tok.TokenID, b.tokenHMAC(tok.TokenID)
		return resp
	}}
}

// errorTimestamp is the expiry timestamp of a refused renew or expire
// (Kafka's DelegationTokenManager.ErrorTimestamp).
const errorTimestamp = -1

// tokenToChange is the start renew and expire share: it finds the token
// whose HMAC is h and checks that rq's principal may change it now, nowMs
// being the time it judged expiry at. On a refusal it writes the Kafka
// error code and errorTimestamp through code and expiry (the response's
// ErrorCode and ExpiryTimestamp) and returns ok false: the caller answers
// at once.
func (b *Broker) tokenToChange(rq *request, h []byte, code *int16, expiry *int64) (tok raft.DelegationToken, nowMs int64, ok bool) {
	nowMs = time.Now().UnixMilli()
	refuse := func(e *kerr.Error) (raft.DelegationToken, int64, bool) {
		*code, *expiry = e.Code, errorTimestamp
		return tok, nowMs, false
	}
	switch {
	case !rq.c.tokenRequestsAllowed():
		return refuse(kerr.DelegationTokenRequestNotAllowed)
	case b.cfg.DelegationTokens.SecretKey == "":
		return refuse(kerr.DelegationTokenAuthDisabled)
	}
	tok, found := b.tokenByHMAC(b.node.State(), h)
	switch {
	case !found:
		return refuse(kerr.DelegationTokenNotFound)
	case tok.Expired(nowMs):
		return refuse(kerr.DelegationTokenExpired)
	case !tok.MayRenew(rq.c.principal):
		return refuse(kerr.DelegationTokenOwnerMismatch)
	}
	return tok, nowMs, true
}

func (b *Broker) handleRenewDelegationToken(rq *request, req *kmsg.RenewDelegationTokenRequest) reply {
	resp := req.ResponseKind().(*kmsg.RenewDelegationTokenResponse)
	tok, nowMs, ok := b.tokenToChange(rq, req.HMAC, &resp.ErrorCode, &resp.ExpiryTimestamp)
	if !ok {
		return now(resp)
	}
	period := b.cfg.DelegationTokens.ExpiryTime.Milliseconds()
	if req.RenewTimeMillis > 0 {
		period = min(period, req.RenewTimeMillis)
	}
	expiry := min(tok.MaxMs, nowMs+period)
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if err := b.applyToken(ctx, raft.UpdateDelegationTokenExpiry{TokenID: tok.TokenID, ExpiryMs: expiry}); err != nil {
			resp.ErrorCode, resp.ExpiryTimestamp = tokenErrCode(err).Code, errorTimestamp
			return resp
		}
		resp.ExpiryTimestamp = expiry
		return resp
	}}
}

func (b *Broker) handleExpireDelegationToken(rq *request, req *kmsg.ExpireDelegationTokenRequest) reply {
	resp := req.ResponseKind().(*kmsg.ExpireDelegationTokenResponse)
	tok, nowMs, ok := b.tokenToChange(rq, req.HMAC, &resp.ErrorCode, &resp.ExpiryTimestamp)
	if !ok {
		return now(resp)
	}
	var cmd raft.Command
	var expiry int64
	if req.ExpiryPeriodMillis < 0 {
		cmd, expiry = raft.RemoveDelegationToken{TokenID: tok.TokenID}, req.ExpiryPeriodMillis
	} else {
		expiry = min(tok.MaxMs, nowMs+req.ExpiryPeriodMillis)
		cmd = raft.UpdateDelegationTokenExpiry{TokenID: tok.TokenID, ExpiryMs: expiry}
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if err := b.applyToken(ctx, cmd); err != nil {
			resp.ErrorCode, resp.ExpiryTimestamp = tokenErrCode(err).Code, errorTimestamp
			return resp
		}
		b.log.Info("expired delegation token", "token_id", tok.TokenID, "expiry", expiry, "principal", rq.c.principal)
		resp.ExpiryTimestamp = expiry
		return resp
	}}
}

func (b *Broker) handleDescribeDelegationToken(rq *request, req *kmsg.DescribeDelegationTokenRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeDelegationTokenResponse)
	switch {
	case !rq.c.tokenRequestsAllowed():
		resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
		return now(resp)
	case b.cfg.DelegationTokens.SecretKey == "":
		resp.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
		return now(resp)
	case req.Owners != nil && len(req.Owners) == 0:
		return now(resp)
	}
	var owners []string // nil: every owner
	for _, o := range req.Owners {
		owners = append(owners, o.PrincipalType+":"+o.PrincipalName)
	}
	nowMs := time.Now().UnixMilli()
	caller := rq.c.principal
	for _, tok := range b.node.State().SortedDelegationTokens() {
		if tok.Expired(nowMs) {
			continue
		}
		if owners != nil && !slices.ContainsFunc(owners, tok.OwnerOrRenewer) {
			continue
		}
		if !tok.OwnerOrRenewer(caller) && !b.authorized(rq, opDescribe, resDelegationToken, tok.TokenID) &&
			!b.authorized(rq, opDescribeTokens, resUser, tok.Owner) {
			continue
		}
		d := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
		d.PrincipalType, d.PrincipalName = splitPrincipal(tok.Owner)
		d.TokenRequesterPrincipalType, d.TokenRequesterPrincipalName = splitPrincipal(tok.Requester)
		d.IssueTimestamp, d.ExpiryTimestamp, d.MaxTimestamp = tok.IssueMs, tok.ExpiryMs, tok.MaxMs
		d.TokenID, d.HMAC = tok.TokenID, b.tokenHMAC(tok.TokenID)
		for _, r := range tok.Renewers {
			rr := kmsg.NewDescribeDelegationTokenResponseTokenDetailRenewer()
			rr.PrincipalType, rr.PrincipalName = splitPrincipal(r)
			d.Renewers = append(d.Renewers, rr)
		}
		resp.TokenDetails = append(resp.TokenDetails, d)
	}
	return now(resp)
}

// sweepDelegationTokens removes expired tokens every expiry check
// interval while this node leads the raft group (Kafka's controller does
// this). It stops with the broker's context; it is owned by bgWG.
func (b *Broker) sweepDelegationTokens() {
	defer b.bgWG.Done()
	t := time.NewTicker(b.cfg.DelegationTokens.ExpiryCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case at := <-t.C:
			b.removeExpiredTokens(b.ctx, at)
		}
	}
}

// removeExpiredTokens proposes the removal of the tokens expired at at, if
// this node leads and any exist.
func (b *Broker) removeExpiredTokens(ctx context.Context, at time.Time) {
	if !b.node.IsLeader() {
		return
	}
	nowMs := at.UnixMilli()
	n := 0
	for _, tok := range b.node.State().DelegationTokens {
		if tok.Expired(nowMs) {
			n++
		}
	}
	if n == 0 {
		return
	}
	if err := b.applyToken(ctx, raft.RemoveExpiredDelegationTokens{NowMs: nowMs}); err != nil {
		b.log.Warn("remove expired delegation tokens", "err", err)
		return
	}
	b.log.Info("removed expired delegation tokens", "tokens", n)
}
