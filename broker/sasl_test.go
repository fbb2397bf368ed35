package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/raft"
)

// startSASLBroker runs a broker whose one listener is proto, with the
// users admin (SCRAM-SHA-256, password admin-secret) and ops
// (SCRAM-SHA-512, password ops-secret) created by --add-scram.
func startSASLBroker(t *testing.T, proto SecurityProtocol, mod func(*Config)) *Broker {
	t.Helper()
	return startTestBroker(t, func(c *Config) {
		c.Listeners = []Listener{{Name: string(proto), Protocol: proto, Addr: "127.0.0.1:0"}}
		for _, s := range []string{"SCRAM-SHA-256=[name=admin,password=admin-secret]", "SCRAM-SHA-512=[name=ops,password=ops-secret,iterations=8192]"} {
			u, err := ParseSCRAMUser(s)
			if err != nil {
				t.Fatal(err)
			}
			c.SCRAMUsers = append(c.SCRAMUsers, u)
		}
		if mod != nil {
			mod(c)
		}
	})
}

// principals returns the principals of the broker's open connections.
func principals(b *Broker) []string {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	var out []string
	for c := range b.conns {
		out = append(out, c.principal)
	}
	return out
}

// pingAs connects with mech and runs one request; the error is the
// client's (kgo wraps the broker's SASL answer).
func pingAs(t *testing.T, b *Broker, mech sasl.Mechanism, opts ...kgo.Opt) (*kgo.Client, error) {
	t.Helper()
	cl := newClient(t, b, append([]kgo.Opt{kgo.SASL(mech)}, opts...)...)
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(testCtx(t), cl)
	return cl, err
}

func TestSASLLogin(t *testing.T) {
	t.Parallel()
	b := startSASLBroker(t, ProtocolSASLPlaintext, nil)
	for _, tc := range []struct {
		name      string
		mech      sasl.Mechanism
		principal string // "" when login must fail
	}{
		{"scram-sha-256", scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism(), "User:admin"},
		{"scram-sha-512", scram.Auth{User: "ops", Pass: "ops-secret"}.AsSha512Mechanism(), "User:ops"},
		{"plain against sha-256", plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism(), "User:admin"},
		{"plain against sha-512", plain.Auth{User: "ops", Pass: "ops-secret"}.AsMechanism(), "User:ops"},
		{"scram wrong password", scram.Auth{User: "admin", Pass: "nope"}.AsSha256Mechanism(), ""},
		{"scram unknown user", scram.Auth{User: "ghost", Pass: "nope"}.AsSha256Mechanism(), ""},
		{"scram wrong mechanism", scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism(), ""},
		{"plain wrong password", plain.Auth{User: "admin", Pass: "nope"}.AsMechanism(), ""},
		{"plain unknown user", plain.Auth{User: "ghost", Pass: "nope"}.AsMechanism(), ""},
		{"plain other authzid", plain.Auth{Zid: "ops", User: "admin", Pass: "admin-secret"}.AsMechanism(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pingAs(t, b, tc.mech)
			if tc.principal == "" {
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("want SASL_AUTHENTICATION_FAILED, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			found := false
			for _, p := range principals(b) {
				found = found || p == tc.principal
			}
			if !found {
				t.Fatalf("no connection of %s among %v", tc.principal, principals(b))
			}
		})
	}
}

// saslRaw runs ApiVersions and a v1 handshake for mechanism on a raw
// connection.
func saslRaw(t *testing.T, b *Broker, mechanism string) *rawConn {
	t.Helper()
	c := rawClient(t, b)
	send[*kmsg.ApiVersionsResponse](t, c, kmsg.NewPtrApiVersionsRequest(), 2)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = mechanism
	if r := send[*kmsg.SASLHandshakeResponse](t, c, hs, 1); r.ErrorCode != 0 {
		t.Fatalf("handshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	return c
}

func authenticateRaw(t *testing.T, c *rawConn, msg []byte) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SASLAuthBytes = msg
	return send[*kmsg.SASLAuthenticateResponse](t, c, req, 2)
}

func TestSASLWireErrors(t *testing.T) {
	t.Parallel()
	b := startSASLBroker(t, ProtocolSASLPlaintext, nil)

	t.Run("request before authentication closes", func(t *testing.T) {
		c := rawClient(t, b)
		c.nc.Write(frameOf(kmsg.NewPtrMetadataRequest(), 9, 1))
		expectClosed(t, c.nc)
	})
	t.Run("request after handshake closes", func(t *testing.T) {
		c := saslRaw(t, b, "PLAIN")
		c.nc.Write(frameOf(kmsg.NewPtrMetadataRequest(), 9, 5))
		expectClosed(t, c.nc)
	})
	t.Run("second ApiVersions closes", func(t *testing.T) {
		c := rawClient(t, b)
		send[*kmsg.ApiVersionsResponse](t, c, kmsg.NewPtrApiVersionsRequest(), 2)
		c.nc.Write(frameOf(kmsg.NewPtrApiVersionsRequest(), 2, 9))
		expectClosed(t, c.nc)
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		c := rawClient(t, b)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "GSSAPI"
		r := send[*kmsg.SASLHandshakeResponse](t, c, hs, 1)
		if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(r.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
			t.Fatalf("handshake answer %+v", r)
		}
		expectClosed(t, c.nc)
	})
	t.Run("failed exchange is answered then closed", func(t *testing.T) {
		c := saslRaw(t, b, "PLAIN")
		r := authenticateRaw(t, c, []byte("\x00admin\x00wrong"))
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil ||
			*r.ErrorMessage != "Authentication failed: Invalid username or password" {
			t.Fatalf("answer %+v", r)
		}
		expectClosed(t, c.nc)
	})
	t.Run("malformed scram gets the generic message", func(t *testing.T) {
		c := saslRaw(t, b, "SCRAM-SHA-256")
		r := authenticateRaw(t, c, []byte("garbage"))
		want := "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
			t.Fatalf("answer %+v", r)
		}
		expectClosed(t, c.nc)
	})
	t.Run("handshake and authenticate after login are ILLEGAL_SASL_STATE", func(t *testing.T) {
		c := saslRaw(t, b, "PLAIN")
		if r := authenticateRaw(t, c, []byte("\x00admin\x00admin-secret")); r.ErrorCode != 0 || r.SessionLifetimeMillis != 0 {
			t.Fatalf("login: %+v", r)
		}
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "PLAIN"
		if r := send[*kmsg.SASLHandshakeResponse](t, c, hs, 1); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("handshake after login: %+v", r)
		}
		if r := authenticateRaw(t, c, []byte("\x00admin\x00admin-secret")); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("authenticate after login: %+v", r)
		}
		// Authenticated: other requests are served.
		if r := send[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 9); len(r.Brokers) != 1 {
			t.Fatalf("metadata after login: %+v", r)
		}
	})
	t.Run("large frame before authentication closes", func(t *testing.T) {
		c := rawClient(t, b)
		var size [4]byte
		binary.BigEndian.PutUint32(size[:], saslMaxReceive+1)
		c.nc.Write(size[:])
		expectClosed(t, c.nc)
	})
}

// writeToken and readToken frame SASL tokens as handshake v0 does: a size
// and the bytes, no Kafka header.
func writeToken(t *testing.T, c *rawConn, tok []byte) {
	t.Helper()
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(tok)))
	if _, err := c.nc.Write(append(buf, tok...)); err != nil {
		t.Fatal(err)
	}
}

func readToken(c *rawConn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	tok := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c.nc, tok)
	return tok, err
}

// TestSASLHandshakeV0 runs SCRAM with the raw token framing of clients
// before KIP-152.
func TestSASLHandshakeV0(t *testing.T) {
	t.Parallel()
	b := startSASLBroker(t, ProtocolSASLPlaintext, nil)
	login := func(pass string) (*rawConn, error) {
		c := rawClient(t, b)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "SCRAM-SHA-256"
		if r := send[*kmsg.SASLHandshakeResponse](t, c, hs, 0); r.ErrorCode != 0 {
			t.Fatalf("handshake v0: %+v", r)
		}
		sess, msg, err := scram.Auth{User: "admin", Pass: pass}.AsSha256Mechanism().Authenticate(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for {
			writeToken(t, c, msg)
			tok, err := readToken(c)
			if err != nil {
				return c, err
			}
			done, next, err := sess.Challenge(tok)
			if err != nil || done {
				return c, err
			}
			msg = next
		}
	}
	c, err := login("admin-secret")
	if err != nil {
		t.Fatalf("v0 login: %v", err)
	}
	if r := send[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 9); len(r.Brokers) != 1 {
		t.Fatalf("metadata after v0 login: %+v", r)
	}
	// A wrong password closes the connection without an answer.
	if _, err := login("wrong"); err == nil {
		t.Fatal("v0 login with a wrong password passed")
	}
	// PLAIN in v0 framing: one token, answered with an empty one.
	pc := rawClient(t, b)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	if r := send[*kmsg.SASLHandshakeResponse](t, pc, hs, 0); r.ErrorCode != 0 {
		t.Fatalf("handshake v0: %+v", r)
	}
	writeToken(t, pc, []byte("\x00ops\x00ops-secret"))
	if tok, err := readToken(pc); err != nil || len(tok) != 0 {
		t.Fatalf("PLAIN v0 answer %q %v", tok, err)
	}
	if r := send[*kmsg.MetadataResponse](t, pc, kmsg.NewPtrMetadataRequest(), 9); len(r.Brokers) != 1 {
		t.Fatalf("metadata after PLAIN v0 login: %+v", r)
	}
	if !hasPrincipal(b, "User:ops") {
		t.Fatalf("principals %v", principals(b))
	}
}

func TestPlaintextListenerRefusesSASL(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	c := rawClient(t, b)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	if r := send[*kmsg.SASLHandshakeResponse](t, c, hs, 1); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake on PLAINTEXT: %+v", r)
	}
	if r := authenticateRaw(t, c, []byte("x")); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("authenticate on PLAINTEXT: %+v", r)
	}
	if p := principals(b); len(p) != 1 || p[0] != anonymous {
		t.Fatalf("principals %v", p)
	}
}

// TestAlterUserSCRAMThenLogin creates, lists and deletes users through the
// admin API as an authenticated admin, and logs in as them.
func TestAlterUserSCRAMThenLogin(t *testing.T) {
	t.Parallel()
	b := startSASLBroker(t, ProtocolSASLPlaintext, nil)
	adminCl, err := pingAs(t, b, scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism())
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(adminCl)
	ctx := testCtx(t)
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "alice-secret"},
		{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "carol-secret"},
	})
	if err != nil || res.Error() != nil {
		t.Fatalf("upsert: %v %v", err, res.Error())
	}
	if _, err := pingAs(t, b, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()); err != nil {
		t.Fatalf("alice login: %v", err)
	}
	if _, err := pingAs(t, b, plain.Auth{User: "carol", Pass: "carol-secret"}.AsMechanism()); err != nil {
		t.Fatalf("carol PLAIN login: %v", err)
	}
	desc, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil || desc.Error() != nil {
		t.Fatalf("describe: %v %v", err, desc.Error())
	}
	if d := desc["alice"]; len(d.CredInfos) != 1 || d.CredInfos[0].Iterations != 8192 || d.CredInfos[0].Mechanism != kadm.ScramSha256 {
		t.Fatalf("alice described as %+v", d)
	}
	if len(desc) != 4 {
		t.Fatalf("described users %v", desc)
	}
	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res.Error() != nil {
		t.Fatalf("delete: %v %v", err, res.Error())
	}
	if _, err := pingAs(t, b, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted alice logged in: %v", err)
	}
}

// TestAlterUserSCRAMValidation checks Kafka's per-user error codes with
// hand-built requests (kadm validates some of them client-side).
func TestAlterUserSCRAMValidation(t *testing.T) {
	b := startTestBroker(t, func(c *Config) {
		u, _ := ParseSCRAMUser("SCRAM-SHA-256=[name=admin,password=admin-secret]")
		c.SCRAMUsers = []SCRAMUser{u}
	})
	c := rawClient(t, b)
	up := func(name string, mech int8, iter int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iter, []byte("salt"), []byte("salted-password-bytes-32-long!!!")
		return u
	}
	del := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		up("few", 1, 1000), up("many", 1, 20000), up("", 1, 4096), up("mech", 3, 4096),
		up("twice", 1, 4096), up("twice", 2, 4096), up("ok", 2, 4096),
		up("deluped", 1, 4096),
	}
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{
		del("absent", 1), del("admin", 1), del("deluped", 1), del("admin", 1), del("nomech", 2),
	}
	r := send[*kmsg.AlterUserSCRAMCredentialsResponse](t, c, req, 0)
	got := map[string]int16{}
	for _, res := range r.Results {
		if _, dup := got[res.User]; dup {
			t.Fatalf("user %q answered twice: %+v", res.User, r.Results)
		}
		got[res.User] = res.ErrorCode
	}
	want := map[string]*kerr.Error{
		"few": kerr.UnacceptableCredential, "many": kerr.UnacceptableCredential, "": kerr.UnacceptableCredential,
		"mech": kerr.UnsupportedSaslMechanism, "twice": kerr.DuplicateResource, "ok": nil,
		"absent": kerr.ResourceNotFound, "admin": kerr.DuplicateResource, "deluped": kerr.ResourceNotFound,
		"nomech": kerr.ResourceNotFound,
	}
	for user, w := range want {
		if code, ok := got[user]; !ok || code != errCode(w) {
			t.Errorf("user %q: code %d, want %v (results %+v)", user, code, w, r.Results)
		}
	}
	if len(got) != len(want) {
		t.Errorf("results %+v", r.Results)
	}
	if _, ok := b.node.State().SCRAM[scramKey("ok", 2)]; !ok {
		t.Error("valid upsertion not applied")
	}
	if _, ok := b.node.State().SCRAM[scramKey("admin", 1)]; !ok {
		t.Error("deletion of a user altered twice was applied")
	}

	dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"admin", "nobody", "admin2", "admin2"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		dreq.Users = append(dreq.Users, u)
	}
	dr := send[*kmsg.DescribeUserSCRAMCredentialsResponse](t, c, dreq, 0)
	if len(dr.Results) != 3 ||
		dr.Results[0].User != "admin" || dr.Results[0].ErrorCode != 0 || len(dr.Results[0].CredentialInfos) != 1 || dr.Results[0].CredentialInfos[0].Iterations != 4096 ||
		dr.Results[1].ErrorCode != kerr.ResourceNotFound.Code || *dr.Results[1].ErrorMessage != "Attempt to describe a user credential that does not exist: nobody" ||
		dr.Results[2].ErrorCode != kerr.DuplicateResource.Code {
		t.Fatalf("describe %+v", dr.Results)
	}
}

func scramKey(user string, mech int8) raft.SCRAMKey {
	return raft.SCRAMKey{User: user, Mechanism: raft.SCRAMMechanism(mech)}
}

func TestDescribeClientQuotasEmpty(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	c := rawClient(t, b)
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	comp := kmsg.NewDescribeClientQuotasRequestComponent()
	comp.EntityType, comp.MatchType = "user", 1
	req.Components = append(req.Components, comp)
	for _, v := range []int16{0, 1} {
		if r := send[*kmsg.DescribeClientQuotasResponse](t, c, req, v); r.ErrorCode != 0 || len(r.Entries) != 0 {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
}
