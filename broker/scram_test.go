package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/raft"
)

func TestParseSCRAMClientFirst(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      scramClientFirst // gs2Header, authzid, user, nonce, extensions, bare
		err       bool
	}{
		{name: "plain", msg: "n,,n=alice,r=abc", want: scramClientFirst{gs2Header: "n,,", user: "alice", nonce: "abc", bare: "n=alice,r=abc"}},
		{name: "authzid", msg: "n,a=alice,n=alice,r=x", want: scramClientFirst{gs2Header: "n,a=alice,", authzid: "alice", user: "alice", nonce: "x", bare: "n=alice,r=x"}},
		{name: "escaped name", msg: "n,,n=a=2Cb=3Dc,r=x", want: scramClientFirst{gs2Header: "n,,", user: "a,b=c", nonce: "x", bare: "n=a=2Cb=3Dc,r=x"}},
		{name: "utf8 name", msg: "n,,n=jürgen,r=x", want: scramClientFirst{gs2Header: "n,,", user: "jürgen", nonce: "x", bare: "n=jürgen,r=x"}},
		{name: "extension", msg: "n,,n=u,r=x,tokenauth=true", want: scramClientFirst{gs2Header: "n,,", user: "u", nonce: "x",
			extensions: map[string]string{"tokenauth": "true"}, bare: "n=u,r=x,tokenauth=true"}},
		{name: "channel binding flag y", msg: "y,,n=u,r=x", err: true},
		{name: "channel binding p", msg: "p=tls-unique,,n=u,r=x", err: true},
		{name: "mandatory extension", msg: "n,,m=foo,n=u,r=x", err: true},
		{name: "no nonce", msg: "n,,n=u", err: true},
		{name: "empty nonce", msg: "n,,n=u,r=", err: true},
		{name: "nonce with space", msg: "n,,n=u,r=a b", err: true},
		{name: "empty name", msg: "n,,n=,r=x", err: true},
		{name: "bad escape", msg: "n,,n=a=2D,r=x", err: true},
		{name: "order", msg: "n,,r=x,n=u", err: true},
		{name: "bad authzid", msg: "n,b=x,n=u,r=x", err: true},
		{name: "no gs2 end", msg: "n,", err: true},
		{name: "invalid utf8", msg: "n,,n=\xff,r=x", err: true},
		{name: "nul in name", msg: "n,,n=a\x00b,r=x", err: true},
		{name: "bad extension", msg: "n,,n=u,r=x,1=2", err: true},
		{name: "duplicate extension", msg: "n,,n=u,r=x,a=1,a=2", err: true},
		{name: "empty", msg: "", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSCRAMClientFirst([]byte(tc.msg))
			if tc.err {
				if !errors.Is(err, ErrAuthentication) {
					t.Fatalf("parse %q: err %v, want ErrAuthentication", tc.msg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse %q: %v", tc.msg, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parse %q:\n got %+v\nwant %+v", tc.msg, got, tc.want)
			}
		})
	}
}

func TestParseSCRAMClientFinal(t *testing.T) {
	proof := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	for _, tc := range []struct {
		name, msg string
		nonce     string
		without   string
		err       bool
	}{
		{name: "plain", msg: "c=biws,r=abc,p=" + proof, nonce: "abc", without: "c=biws,r=abc"},
		{name: "extension", msg: "c=biws,r=abc,x=1,p=" + proof, nonce: "abc", without: "c=biws,r=abc,x=1"},
		{name: "no proof", msg: "c=biws,r=abc", err: true},
		{name: "bad proof", msg: "c=biws,r=abc,p=***", err: true},
		{name: "empty proof", msg: "c=biws,r=abc,p=", err: true},
		{name: "line break in proof", msg: "c=biws,r=abc,p=" + proof[:4] + "\n" + proof[4:], err: true},
		{name: "bad binding", msg: "c=b!ws,r=abc,p=" + proof, err: true},
		{name: "no binding", msg: "r=abc,p=" + proof, err: true},
		{name: "no nonce", msg: "c=biws,p=" + proof, err: true},
		{name: "order", msg: "r=abc,c=biws,p=" + proof, err: true},
		{name: "bad extension", msg: "c=biws,r=abc,=1,p=" + proof, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSCRAMClientFinal([]byte(tc.msg))
			if tc.err {
				if !errors.Is(err, ErrAuthentication) {
					t.Fatalf("parse %q: err %v, want ErrAuthentication", tc.msg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse %q: %v", tc.msg, err)
			}
			if got.nonce != tc.nonce || got.withoutProof != tc.without || string(got.channelBinding) != "n,," || len(got.proof) != 32 {
				t.Fatalf("parse %q: %+v", tc.msg, got)
			}
		})
	}
}

func TestSASLNameRoundTrip(t *testing.T) {
	for _, name := range []string{"alice", "a,b", "a=b", "=2C", "x,=,=y"} {
		got, err := decodeSASLName(encodeSASLName(name))
		if err != nil || got != name {
			t.Fatalf("round trip %q: %q %v", name, got, err)
		}
	}
}

func TestParsePlainMessage(t *testing.T) {
	for _, tc := range []struct {
		name, msg         string
		authz, user, pass string
		err               bool
	}{
		{name: "no authzid", msg: "\x00alice\x00secret", user: "alice", pass: "secret"},
		{name: "authzid", msg: "alice\x00alice\x00secret", authz: "alice", user: "alice", pass: "secret"},
		{name: "password with spaces", msg: "\x00bob\x00a b c", user: "bob", pass: "a b c"},
		{name: "two fields", msg: "alice\x00secret", err: true},
		{name: "four fields", msg: "\x00alice\x00secret\x00x", err: true},
		{name: "empty user", msg: "\x00\x00secret", err: true},
		{name: "empty password", msg: "\x00alice\x00", err: true},
		{name: "empty", msg: "", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authz, user, pass, err := parsePlainMessage([]byte(tc.msg))
			if tc.err {
				if !errors.Is(err, ErrAuthentication) {
					t.Fatalf("parse %q: err %v", tc.msg, err)
				}
				return
			}
			if err != nil || authz != tc.authz || user != tc.user || pass != tc.pass {
				t.Fatalf("parse %q: %q %q %q %v", tc.msg, authz, user, pass, err)
			}
		})
	}
}

// scramTestServer is a scramServer over a fixed credential set.
func scramTestServer(t testing.TB, m *scramMechanism, users map[string]string) *scramServer {
	t.Helper()
	creds := map[string]raft.SCRAMCredential{}
	for u, pw := range users {
		c, err := m.credential(pw, []byte("salt-of-"+u), scramMinIterations)
		if err != nil {
			t.Fatal(err)
		}
		creds[u] = c
	}
	b := &Broker{authSecret: [32]byte{1, 2, 3}}
	return &scramServer{mech: m,
		lookup: func(user string, _ *scramMechanism) (raft.SCRAMCredential, bool) { c, ok := creds[user]; return c, ok },
		fake:   b.fakeSCRAMCredential}
}

// runSCRAM runs a whole exchange between franz-go's SCRAM client and srv;
// it returns the server's error, or the client's when the server passed.
func runSCRAM(t testing.TB, mech sasl.Mechanism, srv *scramServer) error {
	t.Helper()
	sess, msg, err := mech.Authenticate(context.Background(), "127.0.0.1:9092")
	if err != nil {
		t.Fatalf("client start: %v", err)
	}
	for {
		out, done, err := srv.next(msg)
		if err != nil {
			return err
		}
		clientDone, next, err := sess.Challenge(out)
		if err != nil {
			return err
		}
		if done != clientDone {
			t.Fatalf("server done %v, client done %v", done, clientDone)
		}
		if done {
			return nil
		}
		msg = next
	}
}

func TestSCRAMExchange(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "alice-secret", "a,b=c": "pw"}
	for _, m := range []*scramMechanism{scramSHA256, scramSHA512} {
		asMech := func(a scram.Auth) sasl.Mechanism {
			if m == scramSHA256 {
				return a.AsSha256Mechanism()
			}
			return a.AsSha512Mechanism()
		}
		t.Run(m.name, func(t *testing.T) {
			srv := scramTestServer(t, m, users)
			if err := runSCRAM(t, asMech(scram.Auth{User: "alice", Pass: "alice-secret"}), srv); err != nil {
				t.Fatalf("right password: %v", err)
			}
			if srv.user() != "alice" {
				t.Fatalf("user %q", srv.user())
			}
			srv = scramTestServer(t, m, users)
			if err := runSCRAM(t, asMech(scram.Auth{User: "a,b=c", Pass: "pw"}), srv); err != nil || srv.user() != "a,b=c" {
				t.Fatalf("escaped name: %v %q", err, srv.user())
			}
			wrong := runSCRAM(t, asMech(scram.Auth{User: "alice", Pass: "nope"}), scramTestServer(t, m, users))
			unknown := runSCRAM(t, asMech(scram.Auth{User: "mallory", Pass: "nope"}), scramTestServer(t, m, users))
			for _, err := range []error{wrong, unknown} {
				if !errors.Is(err, ErrAuthentication) {
					t.Fatalf("want ErrAuthentication, got %v", err)
				}
			}
			if a, b := saslClientMessage(m.name, wrong), saslClientMessage(m.name, unknown); a != b {
				t.Fatalf("wrong password and unknown user answer differently: %q vs %q", a, b)
			}
			zid := runSCRAM(t, asMech(scram.Auth{Zid: "bob", User: "alice", Pass: "alice-secret"}), scramTestServer(t, m, users))
			if !strings.Contains(saslClientMessage(m.name, zid), "authorization id") {
				t.Fatalf("authzid mismatch: %v", zid)
			}
			token := runSCRAM(t, asMech(scram.Auth{User: "alice", Pass: "alice-secret", IsToken: true}), scramTestServer(t, m, users))
			if !errors.Is(token, ErrAuthentication) {
				t.Fatalf("tokenauth: %v", token)
			}
		})
	}
}

// TestSCRAMUnknownUserSalt: an unknown user is always shown the same salt,
// so probing twice does not tell it apart from a real user.
func TestSCRAMUnknownUserSalt(t *testing.T) {
	first := func() string {
		srv := scramTestServer(t, scramSHA256, nil)
		out, _, err := srv.next([]byte("n,,n=ghost,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(out), ",s=")
		return rest
	}
	if a, b := first(), first(); a != b {
		t.Fatalf("salt and iterations differ between attempts: %q vs %q", a, b)
	}
}

func TestSCRAMReplayedProofFails(t *testing.T) {
	// A proof captured from one exchange fails in the next, whose server
	// nonce differs.
	m := scramSHA256
	users := map[string]string{"alice": "pw"}
	sess, first, _ := scram.Auth{User: "alice", Pass: "pw", Nonce: []byte("fixednonce")}.AsSha256Mechanism().Authenticate(context.Background(), "")
	srv := scramTestServer(t, m, users)
	out, _, err := srv.next(first)
	if err != nil {
		t.Fatal(err)
	}
	_, final, err := sess.Challenge(out)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := scramTestServer(t, m, users)
	if _, _, err := srv2.next(first); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv2.next(final); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("replayed final message: %v", err)
	}
}
