package broker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// recvAs reads the response to corr on c and decodes it as req's response
// at version v.
func recvAs[R kmsg.Response](t *testing.T, c *rawConn, req kmsg.Request, v int16, corr int32) R {
	t.Helper()
	body := readResponse(t, c.nc, corr)
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if resp.IsFlexible() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: decode: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return resp.(R)
}

// TestReauthFranzGo: with a short connections.max.reauth.ms, franz-go
// re-authenticates its connections in place (its oauth callback mints a
// fresh token each time) while producing and consuming; every record
// arrives and the broker counts the re-authentications.
func TestReauthFranzGo(t *testing.T) {
	t.Parallel()
	b := startOAuthBroker(t, func(c *Config) { c.ConnectionsMaxReauth = 2 * time.Second })
	var minted atomic.Int64
	mech := oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		minted.Add(1)
		return oauth.Auth{Token: hourToken(t, "alice")}, nil
	})
	ctx := testCtx(t)
	const topic = "reauth"
	prod := newClient(t, b, kgo.SASL(mech), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	cons := newClient(t, b, kgo.SASL(mech), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200*time.Millisecond))
	createTopic(t, kadm.NewClient(prod), topic, 1, nil)

	// Produce until the broker has seen several re-authentications (each
	// client's connections re-authenticate about once a second); bounded in
	// count, and by the test context.
	const wantReauths = 6
	sent := 0
	for ; sent < 400 && b.reauthentications.Load() < wantReauths; sent++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", sent)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", sent, err)
		}
		// Consume as we go, so the consumer's connection lives across
		// re-authentications too.
		cons.PollRecords(ctx, 100)
		time.Sleep(50 * time.Millisecond)
	}
	if n := b.reauthentications.Load(); n < wantReauths {
		t.Fatalf("%d re-authentications after %d records", n, sent)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("last")}).FirstErr(); err != nil {
		t.Fatalf("produce after re-authentications: %v", err)
	}
	sent++
	// A fresh consumer reads everything back (the first one may have
	// consumed part already).
	reader := newClient(t, b, kgo.SASL(mech), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < sent {
		fs := reader.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d of %d: %v", got, sent, err)
		}
		got += fs.NumRecords()
	}
	if got != sent {
		t.Fatalf("consumed %d records, produced %d", got, sent)
	}
	if minted.Load() < wantReauths {
		t.Fatalf("oauth callback called %d times", minted.Load())
	}
}

// TestReauthSessionExpiry: a client that does not re-authenticate is
// disconnected by its first request after the session lifetime, which the
// broker announced; an OAUTHBEARER token's expiry caps the lifetime.
func TestReauthSessionExpiry(t *testing.T) {
	t.Parallel()
	const reauth = 700 * time.Millisecond
	b := startOAuthBroker(t, func(c *Config) { c.ConnectionsMaxReauth = reauth })

	for _, tc := range []struct {
		name  string
		mech  string
		msg   func() []byte // built when the case runs: the cases before it sleep
		check func(ms int64) bool
	}{
		{"plain lifetime is the max reauth", MechanismPlain, func() []byte { return []byte("\x00admin\x00admin-secret") },
			func(ms int64) bool { return ms == reauth.Milliseconds() }},
		{"oauth token outlives the max reauth", MechanismOAuthBearer, func() []byte { return oauthMsg(hourToken(t, "alice")) },
			func(ms int64) bool { return ms == reauth.Milliseconds() }},
		{"oauth token expires first", MechanismOAuthBearer, func() []byte {
			return oauthMsg(unsecuredToken(t, map[string]any{"sub": "alice", "exp": float64(time.Now().Add(600*time.Millisecond).UnixMilli()) / 1000}))
		},
			func(ms int64) bool { return ms > 0 && ms <= 600 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := saslRaw(t, b, tc.mech)
			r := authenticateRaw(t, c, tc.msg())
			if r.ErrorCode != 0 || !tc.check(r.SessionLifetimeMillis) {
				t.Fatalf("authenticate: %+v", r)
			}
			send[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 9)
			time.Sleep(time.Duration(r.SessionLifetimeMillis)*time.Millisecond + 100*time.Millisecond)
			if _, err := c.nc.Write(frameOf(kmsg.NewPtrMetadataRequest(), 9, 99)); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c.nc)
		})
	}
}

// TestReauthNoLimit: without connections.max.reauth.ms a SCRAM session
// never expires and its SaslHandshake after login is ILLEGAL_SASL_STATE
// (covered in TestSASLWireErrors); an OAUTHBEARER session lasts as long
// as its token, as in Kafka.
func TestReauthNoLimit(t *testing.T) {
	b := startOAuthBroker(t, nil)
	_, r := oauthRaw(t, b, hourToken(t, "alice"))
	if r.ErrorCode != 0 || r.SessionLifetimeMillis <= 3_590_000 || r.SessionLifetimeMillis > 3_600_000 {
		t.Fatalf("authenticate: %+v", r)
	}
}

// TestReauthWire drives re-authentication by hand: requests pipelined
// before the handshake are answered in order ahead of it, the principal
// and mechanism may not change, nothing but SaslAuthenticate may come
// during the exchange, and a second re-authentication within a second is
// an ordinary (refused) handshake.
func TestReauthWire(t *testing.T) {
	b := startOAuthBroker(t, func(c *Config) { c.ConnectionsMaxReauth = time.Minute })
	alice := func() []byte { return oauthMsg(hourToken(t, "alice")) }
	login := func(t *testing.T) *rawConn {
		c, r := oauthRaw(t, b, hourToken(t, "alice"))
		if r.ErrorCode != 0 || r.SessionLifetimeMillis != 60_000 {
			t.Fatalf("login: %+v", r)
		}
		return c
	}
	handshake := func(mech string) *kmsg.SASLHandshakeRequest {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = mech
		return hs
	}
	authReq := func(msg []byte) *kmsg.SASLAuthenticateRequest {
		a := kmsg.NewPtrSASLAuthenticateRequest()
		a.SASLAuthBytes = msg
		return a
	}

	t.Run("pipelined", func(t *testing.T) {
		c := login(t)
		md, hs, au := kmsg.NewPtrMetadataRequest(), handshake(MechanismOAuthBearer), authReq(alice())
		var frames []byte
		frames = append(frames, frameOf(md, 9, 10)...)
		frames = append(frames, frameOf(hs, 1, 11)...)
		frames = append(frames, frameOf(au, 2, 12)...)
		frames = append(frames, frameOf(md, 9, 13)...)
		if _, err := c.nc.Write(frames); err != nil {
			t.Fatal(err)
		}
		if r := recvAs[*kmsg.MetadataResponse](t, c, md, 9, 10); len(r.Brokers) != 1 {
			t.Fatalf("metadata before re-auth: %+v", r)
		}
		if r := recvAs[*kmsg.SASLHandshakeResponse](t, c, hs, 1, 11); r.ErrorCode != 0 {
			t.Fatalf("re-auth handshake: %+v", r)
		}
		if r := recvAs[*kmsg.SASLAuthenticateResponse](t, c, au, 2, 12); r.ErrorCode != 0 || r.SessionLifetimeMillis != 60_000 {
			t.Fatalf("re-auth: %+v", r)
		}
		if r := recvAs[*kmsg.MetadataResponse](t, c, md, 9, 13); len(r.Brokers) != 1 {
			t.Fatalf("metadata after re-auth: %+v", r)
		}
		c.corr = 13
		// Within a second of the last one: an ordinary handshake, refused.
		if r := send[*kmsg.SASLHandshakeResponse](t, c, handshake(MechanismOAuthBearer), 1); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("second re-auth within a second: %+v", r)
		}
		if !hasPrincipal(b, "User:alice") {
			t.Fatalf("principals %v", principals(b))
		}
	})
	t.Run("principal change refused", func(t *testing.T) {
		c := login(t)
		send[*kmsg.SASLHandshakeResponse](t, c, handshake(MechanismOAuthBearer), 1)
		r := authenticateRaw(t, c, oauthMsg(hourToken(t, "bob")))
		want := "Cannot change principals during re-authentication from User.alice: User.bob"
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
			t.Fatalf("answer %+v", r)
		}
		expectClosed(t, c.nc)
	})
	t.Run("mechanism change refused", func(t *testing.T) {
		c := login(t)
		if r := send[*kmsg.SASLHandshakeResponse](t, c, handshake(MechanismSCRAMSHA256), 1); r.ErrorCode != 0 {
			t.Fatalf("handshake: %+v", r)
		}
		r := authenticateRaw(t, c, []byte("n,,n=admin,r=abc"))
		want := "SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication of mechanism 'OAUTHBEARER'"
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
			t.Fatalf("answer %+v", r)
		}
		expectClosed(t, c.nc)
	})
	t.Run("bad token fails the re-authentication", func(t *testing.T) {
		c := login(t)
		send[*kmsg.SASLHandshakeResponse](t, c, handshake(MechanismOAuthBearer), 1)
		if r := refuseToken(t, c, authenticateRaw(t, c, oauthMsg("x.y.z"))); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("answer %+v", r)
		}
		expectClosed(t, c.nc)
	})
	t.Run("other request during re-authentication closes", func(t *testing.T) {
		c := login(t)
		send[*kmsg.SASLHandshakeResponse](t, c, handshake(MechanismOAuthBearer), 1)
		if _, err := c.nc.Write(frameOf(kmsg.NewPtrMetadataRequest(), 9, 50)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c.nc)
	})
}

// TestPeerReauthenticates: a broker's own connections to a SASL
// inter-broker listener (replica fetchers, transaction markers) renew their
// session before it expires, on the same connection.
func TestPeerReauthenticates(t *testing.T) {
	t.Parallel()
	const reauth = 1500 * time.Millisecond
	b := startOAuthBroker(t, func(c *Config) { c.ConnectionsMaxReauth = reauth })
	b.cfg.InterBrokerSASL = SASLCredentials{Mechanism: MechanismPlain, Username: "admin", Password: "admin-secret"} // read only by dialPeer, which runs here
	ctx := testCtx(t)
	pc, err := b.dialPeer(ctx, b.Addr(), "test-peer")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.close()
	for i := range 3 {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		resp := kmsg.NewPtrMetadataResponse()
		if err := pc.do(ctx, req, resp, peerIOTimeout); err != nil || len(resp.Brokers) != 1 {
			t.Fatalf("metadata %d over the peer connection: %v", i, err)
		}
		// Past the renewal point, and (after two rounds) past the first
		// session's end: only re-authentication keeps the connection.
		time.Sleep(time.Duration(float64(reauth) * 0.9))
	}
	if n := b.reauthentications.Load(); n != 2 {
		t.Fatalf("%d re-authentications, want 2", n)
	}
}
