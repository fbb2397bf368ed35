package broker

import (
	"context"
	"crypto"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// startOAuthBroker runs a broker whose SASL_PLAINTEXT listener serves
// OAUTHBEARER (and PLAIN and SCRAM for the admin user of
// startSASLBroker).
func startOAuthBroker(t *testing.T, mod func(*Config)) *Broker {
	t.Helper()
	return startSASLBroker(t, ProtocolSASLPlaintext, func(c *Config) {
		c.SASLMechanisms = []string{MechanismOAuthBearer, MechanismPlain, MechanismSCRAMSHA256}
		if mod != nil {
			mod(c)
		}
	})
}

// tokenClaims are the claims of a valid token for sub, expiring in d.
func tokenClaims(sub string, d time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{"sub": sub, "iat": now.Unix(), "exp": now.Add(d).Unix(), "iss": "https://idp.test", "aud": "kafka"}
}

// hourToken is an unsecured token for sub valid for an hour: what Kafka's
// default validator accepts.
func hourToken(t *testing.T, sub string) string {
	return unsecuredToken(t, tokenClaims(sub, time.Hour))
}

// oauthMsg is an OAUTHBEARER client initial response carrying tok.
func oauthMsg(tok string) []byte { return []byte("n,,\x01auth=Bearer " + tok + "\x01\x01") }

// oauthRaw opens a raw connection to b and sends tok as its OAUTHBEARER
// initial response; it returns the connection and the broker's answer,
// for the caller to judge.
func oauthRaw(t *testing.T, b *Broker, tok string) (*rawConn, *kmsg.SASLAuthenticateResponse) {
	t.Helper()
	c := saslRaw(t, b, MechanismOAuthBearer)
	return c, authenticateRaw(t, c, oauthMsg(tok))
}

// refuseToken finishes an OAUTHBEARER exchange whose token the broker
// refused: first, the answer to the token, must be a successful
// SaslAuthenticate carrying the JSON status (RFC 7628's error message);
// the client's \x01 that acknowledges it gets the answer returned.
func refuseToken(t *testing.T, c *rawConn, first *kmsg.SASLAuthenticateResponse) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	if first.ErrorCode != 0 || string(first.SASLAuthBytes) != `{"status":"invalid_token"}` {
		t.Fatalf("answer to the token %+v", first)
	}
	return authenticateRaw(t, c, []byte{1})
}

// TestOAuthBearerUnsecured: Kafka's default validator, as the stock client
// login module uses it; the failure reaches the client as Kafka sends it.
func TestOAuthBearerUnsecured(t *testing.T) {
	b := startOAuthBroker(t, nil)
	tok := hourToken(t, "alice")
	if _, err := pingAs(t, b, oauth.Auth{Token: tok}.AsMechanism()); err != nil {
		t.Fatalf("unsecured token refused: %v", err)
	}
	if !hasPrincipal(b, "User:alice") {
		t.Fatalf("no connection of User:alice among %v", principals(b))
	}
	for name, bad := range map[string]string{
		"expired":     unsecuredToken(t, tokenClaims("alice", -time.Minute)),
		"no sub":      unsecuredToken(t, map[string]any{"exp": time.Now().Add(time.Hour).Unix()}),
		"not a token": "garbage",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pingAs(t, b, oauth.Auth{Token: bad}.AsMechanism())
			if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), `{"status":"invalid_token"}`) {
				t.Fatalf("want SASL_AUTHENTICATION_FAILED with the JSON status, got %v", err)
			}
		})
	}
	t.Run("authzid of another user", func(t *testing.T) {
		_, err := pingAs(t, b, oauth.Auth{Zid: "bob", Token: tok}.AsMechanism())
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("want SASL_AUTHENTICATION_FAILED, got %v", err)
		}
	})
}

// TestOAuthBearerWire checks the failure exchange on the wire: the JSON
// status comes as a successful SaslAuthenticate, the client's \x01 gets
// SASL_AUTHENTICATION_FAILED carrying it, then the connection closes.
func TestOAuthBearerWire(t *testing.T) {
	b := startOAuthBroker(t, nil)
	c, r := oauthRaw(t, b, unsecuredToken(t, tokenClaims("alice", -time.Minute)))
	r = refuseToken(t, c, r)
	if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != `{"status":"invalid_token"}` {
		t.Fatalf("second answer %+v", r)
	}
	expectClosed(t, c.nc)

	c = saslRaw(t, b, MechanismOAuthBearer)
	r = authenticateRaw(t, c, []byte("n,,auth=Bearer x\x01\x01"))
	want := "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
	if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
		t.Fatalf("malformed message answer %+v", r)
	}
	expectClosed(t, c.nc)
}

// writeJWKS writes the public keys of signers (kid i: signers[i]) as a
// JWKS file and returns its file:// URL.
func writeJWKS(t *testing.T, keys ...map[string]any) (path, url string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "jwks.json")
	writeJWKSFile(t, path, jwksDoc(t, keys...))
	return path, "file://" + path
}

// TestOAuthBearerJWKS: signed tokens verified against a JWKS read from a
// file and from an https endpoint; produce and consume as the token's
// subject; a token of an unknown key, and an unsecured one, are refused.
func TestOAuthBearerJWKS(t *testing.T) {
	testKeys(t)
	keys := []map[string]any{testJWK("rsa", testRSA1, "RS256"), testJWK("ec", testEC256, "ES256")}
	_, fileURL := writeJWKS(t, keys...)

	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwksDoc(t, keys...))
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
		t.Fatalf("test server on %s", srv.Listener.Addr())
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, url string }{{"file", fileURL}, {"https", srv.URL + "/jwks"}} {
		t.Run(tc.name, func(t *testing.T) {
			b := startOAuthBroker(t, func(c *Config) {
				c.OAuthBearer.JWKSEndpointURL = tc.url
				c.OAuthBearer.JWKSCAFile = caFile
				c.OAuthBearer.ExpectedAudience = []string{"kafka"}
				c.OAuthBearer.ExpectedIssuer = "https://idp.test"
			})
			for _, s := range []struct {
				alg, kid string
				key      crypto.Signer
				sub      string
			}{{"RS256", "rsa", testRSA1, "alice"}, {"ES256", "ec", testEC256, "bob"}} {
				tok := signToken(t, s.alg, s.kid, s.key, tokenClaims(s.sub, time.Hour))
				cl, err := pingAs(t, b, oauth.Auth{Token: tok}.AsMechanism(), kgo.DefaultProduceTopic("jwks-"+tc.name), kgo.AllowAutoTopicCreation())
				if err != nil {
					t.Fatalf("%s token refused: %v", s.alg, err)
				}
				if !hasPrincipal(b, "User:"+s.sub) {
					t.Fatalf("no connection of User:%s among %v", s.sub, principals(b))
				}
				if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(s.sub)}).FirstErr(); err != nil {
					t.Fatalf("produce as %s: %v", s.sub, err)
				}
			}
			for name, bad := range map[string]string{
				"unknown key": signToken(t, "RS256", "rsa", testRSA2, tokenClaims("alice", time.Hour)),
				"unsecured":   hourToken(t, "alice"),
				"wrong aud": signToken(t, "RS256", "rsa", testRSA1, func() map[string]any {
					c := tokenClaims("alice", time.Hour)
					c["aud"] = "billing"
					return c
				}()),
			} {
				if _, err := pingAs(t, b, oauth.Auth{Token: bad}.AsMechanism()); !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("%s: want SASL_AUTHENTICATION_FAILED, got %v", name, err)
				}
			}
		})
	}
	if hits.Load() == 0 {
		t.Fatal("the https endpoint was never fetched")
	}
}

// TestOAuthBearerJWKSRotation: a key published after the broker started
// is found by the refresh its unknown kid triggers.
func TestOAuthBearerJWKSRotation(t *testing.T) {
	testKeys(t)
	path, url := writeJWKS(t, testJWK("k1", testRSA1, "RS256"))
	b := startOAuthBroker(t, func(c *Config) {
		c.OAuthBearer.JWKSEndpointURL = url
		c.OAuthBearer.ExpectedAudience = []string{"kafka"}
	})
	writeJWKSFile(t, path, jwksDoc(t, testJWK("k1", testRSA1, "RS256"), testJWK("k2", testEC384, "ES384")))
	tok := signToken(t, "ES384", "k2", testEC384, tokenClaims("carol", time.Hour))
	if _, err := pingAs(t, b, oauth.Auth{Token: tok}.AsMechanism()); err != nil {
		t.Fatalf("rotated-in key refused: %v", err)
	}
}

// TestOAuthBearerACL: the principal of a token is what ACLs match.
func TestOAuthBearerACL(t *testing.T) {
	b := startOAuthBroker(t, func(c *Config) {
		c.Authorizer = true
		c.SuperUsers = []string{"User:admin"}
	})
	ctx := testCtx(t)
	alice := hourToken(t, "alice")
	bob := hourToken(t, "bob")
	admin := newClient(t, b, kgo.SASL(oauth.Auth{Token: hourToken(t, "admin")}.AsMechanism()))
	createTopic(t, kadm.NewClient(admin), "acl-oauth", 1, nil)
	if err := grantWrite(ctx, admin, "User:alice", "acl-oauth"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tok  string
		want error
	}{{alice, nil}, {bob, kerr.TopicAuthorizationFailed}} {
		cl := newClient(t, b, kgo.SASL(oauth.Auth{Token: tc.tok}.AsMechanism()), kgo.DefaultProduceTopic("acl-oauth"),
			kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(5*time.Second))
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
		if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Fatalf("produce: %v, want %v", err, tc.want)
		}
	}
}

// grantWrite allows principal to write topic (CreateAcls).
func grantWrite(ctx context.Context, cl *kgo.Client, principal, topic string) error {
	req := kmsg.NewPtrCreateACLsRequest()
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType = kmsg.ACLResourceTypeTopic
		c.ResourceName = topic
		c.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
		c.Principal = principal
		c.Host = "*"
		c.Operation = op
		c.PermissionType = kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// TestJWKSFetchRetries: a failing https endpoint is tried
// jwksFetchAttempts times per fetch; a fetch succeeds when a retry does.
func TestJWKSFetchRetries(t *testing.T) {
	testKeys(t)
	var hits, failFirst atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= failFirst.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(jwksDoc(t, testJWK("k", testRSA1, "RS256")))
	}))
	t.Cleanup(srv.Close)
	o := DefaultOAuthBearerConfig()
	o.JWKSEndpointURL = srv.URL
	o.JWKSRetryBackoff, o.JWKSRetryBackoffMax = time.Millisecond, 2*time.Millisecond
	src, err := newJWKSSource(t.Context(), o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	src.client = srv.Client()

	failFirst.Store(jwksFetchAttempts - 1)
	if err := src.fetch(); err != nil || len(src.match("k")) != 1 || hits.Load() != jwksFetchAttempts {
		t.Fatalf("fetch after %d failures: %v, %d hits", jwksFetchAttempts-1, err, hits.Load())
	}
	hits.Store(0)
	failFirst.Store(1 << 30)
	if err := src.fetch(); err == nil || hits.Load() != jwksFetchAttempts {
		t.Fatalf("fetch of a dead endpoint: %v after %d hits", err, hits.Load())
	}
	if len(src.match("k")) != 1 {
		t.Fatal("keys lost after a failed fetch")
	}
}

// TestJWKSPeriodicRefresh: run fetches the key set every refresh interval
// and stops with its context.
func TestJWKSPeriodicRefresh(t *testing.T) {
	testKeys(t)
	path, url := writeJWKS(t, testJWK("old", testRSA1, "RS256"))
	o := DefaultOAuthBearerConfig()
	o.JWKSEndpointURL = url
	o.JWKSRefresh = 20 * time.Millisecond
	src, err := newJWKSSource(t.Context(), o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.fetch(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		src.run(ctx)
	}()
	writeJWKSFile(t, path, jwksDoc(t, testJWK("new", testRSA2, "RS256")))
	deadline := time.Now().Add(20 * time.Second)
	for len(src.match("new")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("rotated key set never fetched by the periodic refresh")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-stopped
}
