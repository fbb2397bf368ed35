package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/raft"
)

const testTokenKey = "token-secret-key"

// startTokenBroker runs a SASL_PLAINTEXT broker with delegation tokens on
// and the users admin (SCRAM-SHA-256, admin-secret), ops (SCRAM-SHA-512,
// ops-secret) and carol (SCRAM-SHA-256, carol-secret).
func startTokenBroker(t *testing.T, mod func(*Config)) *Broker {
	t.Helper()
	return startSASLBroker(t, ProtocolSASLPlaintext, func(c *Config) {
		c.DelegationTokens.SecretKey = testTokenKey
		u, err := ParseSCRAMUser("SCRAM-SHA-256=[name=carol,password=carol-secret]")
		if err != nil {
			t.Fatal(err)
		}
		c.SCRAMUsers = append(c.SCRAMUsers, u)
		if mod != nil {
			mod(c)
		}
	})
}

var (
	asAdmin = scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism()
	asOps   = scram.Auth{User: "ops", Pass: "ops-secret"}.AsSha512Mechanism()
	asCarol = scram.Auth{User: "carol", Pass: "carol-secret"}.AsSha256Mechanism()
)

// clientAs returns a client of b logged in with mech.
func clientAs(t *testing.T, b *Broker, mech sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := pingAs(t, b, mech, opts...)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return cl
}

// createToken creates a token as cl's principal; renewers are "User:x"
// principals (type and name).
func createToken(t *testing.T, cl *kgo.Client, maxLifetime int64, renewers ...[2]string) *kmsg.CreateDelegationTokenResponse {
	t.Helper()
	req := kmsg.NewPtrCreateDelegationTokenRequest()
	req.MaxLifetimeMillis = maxLifetime
	for _, r := range renewers {
		rr := kmsg.NewCreateDelegationTokenRequestRenewer()
		rr.PrincipalType, rr.PrincipalName = r[0], r[1]
		req.Renewers = append(req.Renewers, rr)
	}
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return resp
}

func renewToken(t *testing.T, cl *kgo.Client, hmac []byte, period int64) *kmsg.RenewDelegationTokenResponse {
	t.Helper()
	req := kmsg.NewPtrRenewDelegationTokenRequest()
	req.HMAC, req.RenewTimeMillis = hmac, period
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("renew token: %v", err)
	}
	return resp
}

func expireToken(t *testing.T, cl *kgo.Client, hmac []byte, period int64) *kmsg.ExpireDelegationTokenResponse {
	t.Helper()
	req := kmsg.NewPtrExpireDelegationTokenRequest()
	req.HMAC, req.ExpiryPeriodMillis = hmac, period
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("expire token: %v", err)
	}
	return resp
}

// describeTokens describes the tokens of owners ("User:x" pairs; nil: all).
func describeTokens(t *testing.T, cl *kgo.Client, owners [][2]string) *kmsg.DescribeDelegationTokenResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeDelegationTokenRequest()
	if owners != nil {
		req.Owners = []kmsg.DescribeDelegationTokenRequestOwner{}
	}
	for _, o := range owners {
		ro := kmsg.NewDescribeDelegationTokenRequestOwner()
		ro.PrincipalType, ro.PrincipalName = o[0], o[1]
		req.Owners = append(req.Owners, ro)
	}
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("describe tokens: %v", err)
	}
	return resp
}

func tokenIDs(r *kmsg.DescribeDelegationTokenResponse) []string {
	var ids []string
	for _, d := range r.TokenDetails {
		ids = append(ids, d.TokenID)
	}
	return ids
}

func wantTokenCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if want == nil && got != 0 || want != nil && got != want.Code {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// tokenAuth is the SASL mechanism logging in with a token.
func tokenAuth(id string, hmac []byte, sha512 bool) sasl.Mechanism {
	a := scram.Auth{User: id, Pass: base64.StdEncoding.EncodeToString(hmac), IsToken: true}
	if sha512 {
		return a.AsSha512Mechanism()
	}
	return a.AsSha256Mechanism()
}

// TestDelegationTokenLifecycle: create a token, log in with it (both SCRAM
// mechanisms), produce and consume as its owner, renew, expire, and be
// refused once it has expired.
func TestDelegationTokenLifecycle(t *testing.T) {
	b := startTokenBroker(t, nil)
	admin := clientAs(t, b, asAdmin)
	createTopic(t, kadm.NewClient(admin), "tok", 1, nil)

	before := time.Now().UnixMilli()
	cr := createToken(t, admin, -1, [2]string{"User", "ops"})
	wantTokenCode(t, "create", cr.ErrorCode, nil)
	if cr.PrincipalType != "User" || cr.PrincipalName != "admin" || cr.TokenRequesterPrincipalName != "admin" || cr.TokenID == "" {
		t.Fatalf("create response %+v", cr)
	}
	if cr.IssueTimestamp < before || cr.ExpiryTimestamp != cr.IssueTimestamp+24*3600*1000 || cr.MaxTimestamp != cr.IssueTimestamp+7*24*3600*1000 {
		t.Fatalf("timestamps issue %d expiry %d max %d", cr.IssueTimestamp, cr.ExpiryTimestamp, cr.MaxTimestamp)
	}
	if !slices.Equal(cr.HMAC, b.tokenHMAC(cr.TokenID)) || len(cr.HMAC) != 64 {
		t.Fatalf("hmac %x", cr.HMAC)
	}

	// Log in with the token, as its owner; produce and consume.
	for _, sha512 := range []bool{false, true} {
		clientAs(t, b, tokenAuth(cr.TokenID, cr.HMAC, sha512))
	}
	tc := clientAs(t, b, tokenAuth(cr.TokenID, cr.HMAC, false), kgo.ConsumeTopics("tok"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err := tc.ProduceSync(testCtx(t), &kgo.Record{Topic: "tok", Value: []byte("via token")}).FirstErr(); err != nil {
		t.Fatalf("produce with token: %v", err)
	}
	fs := tc.PollRecords(testCtx(t), 1)
	if err := fs.Err0(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "via token" {
		t.Fatalf("consume with token: %v %d", err, fs.NumRecords())
	}
	if tokenConns(b, cr.TokenID) == 0 {
		t.Fatal("no token-authenticated connection")
	}
	// A wrong HMAC or an unknown id fail.
	for _, mech := range []sasl.Mechanism{tokenAuth(cr.TokenID, []byte("wrong"), false), tokenAuth("nope", cr.HMAC, false)} {
		if _, err := pingAs(t, b, mech); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("bad token login: %v", err)
		}
	}

	// A token connection may not use the token APIs.
	wantTokenCode(t, "create via token", createToken(t, tc, -1).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
	wantTokenCode(t, "renew via token", renewToken(t, tc, cr.HMAC, -1).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
	wantTokenCode(t, "expire via token", expireToken(t, tc, cr.HMAC, -1).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
	wantTokenCode(t, "describe via token", describeTokens(t, tc, nil).ErrorCode, kerr.DelegationTokenRequestNotAllowed)

	// Describe: the owner and the renewer see it; filters by owner.
	ops, carol := clientAs(t, b, asOps), clientAs(t, b, asCarol)
	for _, cl := range []*kgo.Client{admin, ops} {
		d := describeTokens(t, cl, nil)
		if d.ErrorCode != 0 || !slices.Equal(tokenIDs(d), []string{cr.TokenID}) {
			t.Fatalf("describe: %v %v", kerr.ErrorForCode(d.ErrorCode), tokenIDs(d))
		}
		det := d.TokenDetails[0]
		if det.PrincipalName != "admin" || det.TokenRequesterPrincipalName != "admin" || len(det.Renewers) != 1 ||
			det.Renewers[0].PrincipalName != "ops" || !slices.Equal(det.HMAC, cr.HMAC) || det.MaxTimestamp != cr.MaxTimestamp {
			t.Fatalf("detail %+v", det)
		}
	}
	if d := describeTokens(t, admin, [][2]string{{"User", "carol"}}); len(d.TokenDetails) != 0 {
		t.Fatalf("owner filter carol: %v", tokenIDs(d))
	}
	if d := describeTokens(t, admin, [][2]string{}); d.ErrorCode != 0 || len(d.TokenDetails) != 0 {
		t.Fatalf("empty owner list: %v", tokenIDs(d))
	}
	if d := describeTokens(t, admin, [][2]string{{"User", "ops"}}); len(d.TokenDetails) != 1 {
		t.Fatalf("owner filter ops (a renewer): %v", tokenIDs(d))
	}

	// Renew: owner and renewer may, others not.
	wantTokenCode(t, "renew by carol", renewToken(t, carol, cr.HMAC, 1000).ErrorCode, kerr.DelegationTokenOwnerMismatch)
	wantTokenCode(t, "renew unknown", renewToken(t, admin, []byte("nope"), 1000).ErrorCode, kerr.DelegationTokenNotFound)
	start := time.Now().UnixMilli()
	rr := renewToken(t, ops, cr.HMAC, 60_000)
	wantTokenCode(t, "renew by ops", rr.ErrorCode, nil)
	if rr.ExpiryTimestamp < start+60_000 || rr.ExpiryTimestamp > time.Now().UnixMilli()+60_000 {
		t.Fatalf("renewed expiry %d, renewed at %d", rr.ExpiryTimestamp, start)
	}
	if got := b.node.State().DelegationTokens[cr.TokenID].ExpiryMs; got != rr.ExpiryTimestamp {
		t.Fatalf("state expiry %d, response %d", got, rr.ExpiryTimestamp)
	}

	// Expire with period 0: expired now; the token connection is cut at
	// its next request after the expiry and cannot log in again.
	wantTokenCode(t, "expire by carol", expireToken(t, carol, cr.HMAC, 0).ErrorCode, kerr.DelegationTokenOwnerMismatch)
	er := expireToken(t, admin, cr.HMAC, 0)
	wantTokenCode(t, "expire", er.ErrorCode, nil)
	for time.Now().UnixMilli() <= er.ExpiryTimestamp {
		time.Sleep(time.Millisecond)
	}
	if _, err := pingAs(t, b, tokenAuth(cr.TokenID, cr.HMAC, false)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("login with expired token: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, tc); err == nil {
		t.Fatal("request on an expired token's connection succeeded")
	}
	wantTokenCode(t, "renew expired", renewToken(t, admin, cr.HMAC, 1000).ErrorCode, kerr.DelegationTokenExpired)
	if d := describeTokens(t, admin, nil); len(d.TokenDetails) != 0 {
		t.Fatalf("describe shows expired token: %v", tokenIDs(d))
	}

	// The controller's sweep removes it from the state.
	b.removeExpiredTokens(testCtx(t), time.Now())
	if _, ok := b.node.State().DelegationTokens[cr.TokenID]; ok {
		t.Fatal("expired token still in the state after the sweep")
	}
	wantTokenCode(t, "renew removed", renewToken(t, admin, cr.HMAC, 1000).ErrorCode, kerr.DelegationTokenNotFound)
}

// tokenConns counts b's open connections logged in with token id, all of
// which must act as the token's owner admin.
func tokenConns(b *Broker, id string) int {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	n := 0
	for c := range b.conns {
		if c.tokenID == id && c.principal == "User:admin" {
			n++
		}
	}
	return n
}

// TestDelegationTokenExpireNow: a negative period removes the token at
// once and is answered as the expiry timestamp.
func TestDelegationTokenExpireNow(t *testing.T) {
	b := startTokenBroker(t, nil)
	admin := clientAs(t, b, asAdmin)
	cr := createToken(t, admin, 3_600_000)
	wantTokenCode(t, "create", cr.ErrorCode, nil)
	if cr.MaxTimestamp != cr.IssueTimestamp+3_600_000 || cr.ExpiryTimestamp != cr.MaxTimestamp {
		t.Fatalf("requested max lifetime: issue %d expiry %d max %d", cr.IssueTimestamp, cr.ExpiryTimestamp, cr.MaxTimestamp)
	}
	// Renewal never passes the max timestamp.
	if rr := renewToken(t, admin, cr.HMAC, -1); rr.ErrorCode != 0 || rr.ExpiryTimestamp != cr.MaxTimestamp {
		t.Fatalf("renew to default period: %v %d", kerr.ErrorForCode(rr.ErrorCode), rr.ExpiryTimestamp)
	}
	er := expireToken(t, admin, cr.HMAC, -1)
	if er.ErrorCode != 0 || er.ExpiryTimestamp != -1 {
		t.Fatalf("expire now: %v %d", kerr.ErrorForCode(er.ErrorCode), er.ExpiryTimestamp)
	}
	if len(b.node.State().DelegationTokens) != 0 {
		t.Fatal("token not removed")
	}
	wantTokenCode(t, "expire again", expireToken(t, admin, cr.HMAC, -1).ErrorCode, kerr.DelegationTokenNotFound)
}

// TestDelegationTokenRefusals: requests Kafka refuses before touching a
// token.
func TestDelegationTokenRefusals(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		b := startSASLBroker(t, ProtocolSASLPlaintext, nil)
		admin := clientAs(t, b, asAdmin)
		wantTokenCode(t, "create", createToken(t, admin, -1).ErrorCode, kerr.DelegationTokenAuthDisabled)
		wantTokenCode(t, "describe", describeTokens(t, admin, nil).ErrorCode, kerr.DelegationTokenAuthDisabled)
		rr, er := renewToken(t, admin, []byte("x"), 1), expireToken(t, admin, []byte("x"), 1)
		wantTokenCode(t, "renew", rr.ErrorCode, kerr.DelegationTokenAuthDisabled)
		wantTokenCode(t, "expire", er.ErrorCode, kerr.DelegationTokenAuthDisabled)
		if rr.ExpiryTimestamp != -1 || er.ExpiryTimestamp != -1 { // Kafka's ErrorTimestamp on every refusal
			t.Fatalf("refused renew and expire answered expiry %d and %d, want -1", rr.ExpiryTimestamp, er.ExpiryTimestamp)
		}
		if _, err := pingAs(t, b, tokenAuth("x", []byte("y"), false)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("token login with tokens disabled: %v", err)
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		b := startTestBroker(t, func(c *Config) { c.DelegationTokens.SecretKey = testTokenKey })
		cl := newClient(t, b)
		wantTokenCode(t, "create", createToken(t, cl, -1).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
		wantTokenCode(t, "describe", describeTokens(t, cl, nil).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
		wantTokenCode(t, "renew", renewToken(t, cl, []byte("x"), 1).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
		wantTokenCode(t, "expire", expireToken(t, cl, []byte("x"), 1).ErrorCode, kerr.DelegationTokenRequestNotAllowed)
	})
	t.Run("renewer type", func(t *testing.T) {
		b := startTokenBroker(t, nil)
		cr := createToken(t, clientAs(t, b, asAdmin), -1, [2]string{"Group", "g"})
		wantTokenCode(t, "create", cr.ErrorCode, kerr.InvalidPrincipalType)
		if len(b.node.State().DelegationTokens) != 0 {
			t.Fatal("token created")
		}
	})
}

// TestDelegationTokenACLs: with the authorizer on, creating a token for
// another owner needs CREATE_TOKENS on that USER, and describing someone
// else's token DESCRIBE on the token or DESCRIBE_TOKENS on its owner.
func TestDelegationTokenACLs(t *testing.T) {
	b := startTokenBroker(t, func(c *Config) {
		c.Authorizer = true
		c.SuperUsers = []string{"User:admin"}
	})
	admin, ops, carol := clientAs(t, b, asAdmin), clientAs(t, b, asOps), clientAs(t, b, asCarol)
	owned := func(cl *kgo.Client, owner string) *kmsg.CreateDelegationTokenResponse {
		req := kmsg.NewPtrCreateDelegationTokenRequest()
		req.OwnerPrincipalType, req.OwnerPrincipalName = kmsg.StringPtr("User"), kmsg.StringPtr(owner)
		req.MaxLifetimeMillis = -1
		resp, err := req.RequestWith(testCtx(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	wantTokenCode(t, "carol for ops", owned(carol, "ops").ErrorCode, kerr.DelegationTokenAuthorizationFailed)
	tokCarol := createToken(t, carol, -1)
	wantTokenCode(t, "carol for herself", tokCarol.ErrorCode, nil)
	tokOps := owned(admin, "ops") // a super user may
	wantTokenCode(t, "admin for ops", tokOps.ErrorCode, nil)
	if tokOps.PrincipalName != "ops" || tokOps.TokenRequesterPrincipalName != "admin" {
		t.Fatalf("owner %s requester %s", tokOps.PrincipalName, tokOps.TokenRequesterPrincipalName)
	}
	// ops owns its token and sees it; carol sees only hers until allowed.
	if d := describeTokens(t, ops, nil); !slices.Equal(tokenIDs(d), []string{tokOps.TokenID}) {
		t.Fatalf("ops sees %v", tokenIDs(d))
	}
	if d := describeTokens(t, carol, nil); !slices.Equal(tokenIDs(d), []string{tokCarol.TokenID}) {
		t.Fatalf("carol sees %v", tokenIDs(d))
	}
	grant := func(a raft.ACL) {
		a.PatternType, a.Host, a.Permission, a.Principal = patLiteral, "*", permAllow, "User:carol"
		if err := b.applyToken(testCtx(t), raft.CreateACLs{ACLs: []raft.ACL{a}}); err != nil {
			t.Fatal(err)
		}
	}
	grant(raft.ACL{ResourceType: resUser, ResourceName: "User:ops", Operation: opDescribeTokens})
	if d := describeTokens(t, carol, nil); len(d.TokenDetails) != 2 {
		t.Fatalf("carol with DESCRIBE_TOKENS on User:ops sees %v", tokenIDs(d))
	}
	// The requester (admin) may describe but not renew a token it made
	// for ops: only the owner and renewers may.
	wantTokenCode(t, "renew by requester", renewToken(t, admin, tokOps.HMAC, 1).ErrorCode, kerr.DelegationTokenOwnerMismatch)
	wantTokenCode(t, "renew by owner", renewToken(t, ops, tokOps.HMAC, 1).ErrorCode, nil)
	// Creating tokens for ops once granted.
	grant(raft.ACL{ResourceType: resUser, ResourceName: "User:ops", Operation: opCreateTokens})
	wantTokenCode(t, "carol for ops, granted", owned(carol, "ops").ErrorCode, nil)
	// DESCRIBE on one token resource.
	other := owned(admin, "admin")
	grant(raft.ACL{ResourceType: resDelegationToken, ResourceName: other.TokenID, Operation: opDescribe})
	if d := describeTokens(t, carol, [][2]string{{"User", "admin"}}); !slices.Equal(tokenIDs(d), []string{other.TokenID}) {
		t.Fatalf("carol with DESCRIBE on the token sees %v", tokenIDs(d))
	}
}

// TestDelegationTokensSurviveRestart: tokens are in the raft log, and a
// token created before a restart still logs in after it.
func TestDelegationTokensSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) { c.DataDir = dir; c.Fsync = "always" }
	b := startTokenBroker(t, mod)
	cr := createToken(t, clientAs(t, b, asAdmin), -1)
	wantTokenCode(t, "create", cr.ErrorCode, nil)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startTokenBroker(t, mod)
	clientAs(t, b2, tokenAuth(cr.TokenID, cr.HMAC, true))
	if d := describeTokens(t, clientAs(t, b2, asAdmin), nil); !slices.Equal(tokenIDs(d), []string{cr.TokenID}) {
		t.Fatalf("after restart: %v", tokenIDs(d))
	}
}

// TestSCRAMTokenExchange runs franz-go's SCRAM client with IsToken against
// the server side directly: the user name is the token id, the password
// the base64 HMAC, and the session's user the token's owner.
func TestSCRAMTokenExchange(t *testing.T) {
	b := &Broker{authSecret: [32]byte{9}, cfg: Config{DelegationTokens: DelegationTokenConfig{SecretKey: "k"}}}
	tok := raft.DelegationToken{TokenID: "tid", Owner: "User:alice", Requester: "User:alice", ExpiryMs: 1 << 50, MaxMs: 1 << 50}
	lookup := func(id string, m *scramMechanism) (raft.SCRAMCredential, raft.DelegationToken, bool) {
		if id != tok.TokenID {
			return raft.SCRAMCredential{}, raft.DelegationToken{}, false
		}
		cred, err := m.credential(base64.StdEncoding.EncodeToString(b.tokenHMAC(id)), []byte("salt"), scramDefaultIterations)
		return cred, tok, err == nil
	}
	for _, m := range []*scramMechanism{scramSHA256, scramSHA512} {
		for _, tc := range []struct {
			name string
			id   string
			hmac []byte
			ok   bool
		}{
			{"valid", "tid", b.tokenHMAC("tid"), true},
			{"wrong hmac", "tid", b.tokenHMAC("other"), false},
			{"unknown id", "other", b.tokenHMAC("other"), false},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				srv := &scramServer{mech: m, lookup: func(string, *scramMechanism) (raft.SCRAMCredential, bool) {
					return raft.SCRAMCredential{}, false
				}, fake: b.fakeSCRAMCredential, token: lookup}
				err := runSCRAM(t, tokenAuth(tc.id, tc.hmac, m == scramSHA512), srv)
				if tc.ok != (err == nil) {
					t.Fatalf("exchange: %v", err)
				}
				if !tc.ok {
					if !errors.Is(err, ErrAuthentication) || srv.tokenAuthenticated() {
						t.Fatalf("failed exchange: %v, token authenticated %v", err, srv.tokenAuthenticated())
					}
					return
				}
				exp, ok := srv.credentialExpiry()
				if srv.user() != "alice" || !srv.tokenAuthenticated() || !ok || exp.UnixMilli() != tok.ExpiryMs {
					t.Fatalf("user %q token %v expiry %v %v", srv.user(), srv.tokenAuthenticated(), exp, ok)
				}
			})
		}
	}
}

// TestDelegationTokensAcrossNodes: a token created through a follower
// (forwarded to the raft leader) authenticates on every node, and the
// leader's sweep removes it everywhere once expired.
func TestDelegationTokensAcrossNodes(t *testing.T) {
	tc := startTestCluster(t, 3, func(c *Config) {
		ls, err := ParseListeners("INTERNAL://127.0.0.1:0,CLIENT://127.0.0.1:0", "INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT", "")
		if err != nil {
			t.Fatal(err)
		}
		c.Listeners, c.InterBrokerListener = ls, "INTERNAL"
		c.DelegationTokens.SecretKey = testTokenKey
		u, err := ParseSCRAMUser("SCRAM-SHA-256=[name=admin,password=admin-secret]")
		if err != nil {
			t.Fatal(err)
		}
		c.SCRAMUsers = []SCRAMUser{u}
	})
	ctx := testCtx(t)
	var leader, follower *Broker
	for _, b := range tc.brokers {
		if b.node.IsLeader() {
			leader = b
		} else {
			follower = b
		}
	}
	if leader == nil || follower == nil {
		t.Fatal("no leader and follower")
	}
	seedAs := func(b *Broker, mech sasl.Mechanism) (*kgo.Client, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("CLIENT")), kgo.SASL(mech), kgo.RetryTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		return cl, err
	}
	admin, err := seedAs(follower, asAdmin)
	if err != nil {
		t.Fatal(err)
	}
	cr := createToken(t, admin, -1)
	wantTokenCode(t, "create via a follower", cr.ErrorCode, nil)
	for _, b := range tc.brokers {
		waitBrokerState(ctx, t, b, "the token", func(s *raft.State) bool { _, ok := s.DelegationTokens[cr.TokenID]; return ok })
		if _, err := seedAs(b, tokenAuth(cr.TokenID, cr.HMAC, true)); err != nil {
			t.Fatalf("token login on node %d: %v", b.cfg.NodeID, err)
		}
	}
	er := expireToken(t, admin, cr.HMAC, 0)
	wantTokenCode(t, "expire", er.ErrorCode, nil)
	// The client may have sent it to any node: wait until all have it.
	for _, b := range tc.brokers {
		waitBrokerState(ctx, t, b, "the expiry", func(s *raft.State) bool { return s.DelegationTokens[cr.TokenID].ExpiryMs == er.ExpiryTimestamp })
	}
	for time.Now().UnixMilli() <= er.ExpiryTimestamp {
		time.Sleep(time.Millisecond)
	}
	follower.removeExpiredTokens(ctx, time.Now()) // not the leader: no-op
	if _, ok := follower.node.State().DelegationTokens[cr.TokenID]; !ok {
		t.Fatal("a follower swept the token")
	}
	leader.removeExpiredTokens(ctx, time.Now())
	for _, b := range tc.brokers {
		waitBrokerState(ctx, t, b, "the token removed", func(s *raft.State) bool { _, ok := s.DelegationTokens[cr.TokenID]; return !ok })
		if _, err := seedAs(b, tokenAuth(cr.TokenID, cr.HMAC, true)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("expired token login on node %d: %v", b.cfg.NodeID, err)
		}
	}
}

// TestTokenRequestsAllowed is Kafka's allowTokenRequests: no token APIs on
// PLAINTEXT, on SSL without a client certificate, or from a token login.
func TestTokenRequestsAllowed(t *testing.T) {
	for _, tc := range []struct {
		proto     SecurityProtocol
		principal string
		tokenID   string
		want      bool
	}{
		{ProtocolPlaintext, anonymous, "", false},
		{ProtocolSSL, anonymous, "", false},
		{ProtocolSSL, "User:CN=alice", "", true},
		{ProtocolSASLPlaintext, "User:alice", "", true},
		{ProtocolSASLSSL, "User:alice", "", true},
		{ProtocolSASLPlaintext, "User:alice", "tid", false},
		{ProtocolSASLSSL, "User:alice", "tid", false},
	} {
		c := &conn{listener: &boundListener{Listener: Listener{Protocol: tc.proto}}, principal: tc.principal, tokenID: tc.tokenID}
		if got := c.tokenRequestsAllowed(); got != tc.want {
			t.Errorf("%s as %s (token %q): %v, want %v", tc.proto, tc.principal, tc.tokenID, got, tc.want)
		}
	}
	if (&conn{principal: "User:alice"}).tokenRequestsAllowed() {
		t.Error("a connection without listener counts as PLAINTEXT")
	}
}
