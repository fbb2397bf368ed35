package broker

import (
	"encoding/base64"
	"testing"
)

// The fuzz targets below cover every parser of SASL client input and of
// the listener and --add-scram strings. Seeds are in testdata/fuzz/.

func FuzzSCRAMClientFirst(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := parseSCRAMClientFirst(msg)
		if err != nil {
			return
		}
		if m.gs2Header+m.bare != string(msg) || m.user == "" || !validNonce(m.nonce) {
			t.Fatalf("accepted %q as %+v", msg, m)
		}
		if got, err := decodeSASLName(encodeSASLName(m.user)); err != nil || got != m.user {
			t.Fatalf("name %q does not round-trip: %q %v", m.user, got, err)
		}
	})
}

func FuzzSCRAMClientFinal(f *testing.F) {
	f.Add([]byte("c=biws,r=abc,p=dGVzdA=="))
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := parseSCRAMClientFinal(msg)
		if err != nil {
			return
		}
		if m.withoutProof+",p="+base64.StdEncoding.EncodeToString(m.proof) != string(msg) || !validNonce(m.nonce) {
			t.Fatalf("accepted %q as %+v", msg, m)
		}
	})
}

// FuzzSCRAMExchange feeds two arbitrary client messages to a server that
// knows alice: it must never panic, and never authenticate without the
// password.
func FuzzSCRAMExchange(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=dGVzdA=="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		srv := scramTestServer(t, scramSHA256, map[string]string{"alice": "secret"})
		if _, done, err := srv.next(first); err != nil || done {
			return
		}
		if _, done, err := srv.next(final); err == nil || done {
			t.Fatalf("authenticated by %q / %q", first, final)
		}
	})
}

func FuzzPlainMessage(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		authz, user, pass, err := parsePlainMessage(msg)
		if err != nil {
			return
		}
		if authz+"\x00"+user+"\x00"+pass != string(msg) || user == "" || pass == "" {
			t.Fatalf("accepted %q as %q %q %q", msg, authz, user, pass)
		}
	})
}

func FuzzParseListeners(f *testing.F) {
	f.Add("SASL_SSL://127.0.0.1:9092", "", "")
	f.Fuzz(func(t *testing.T, listeners, protoMap, advertised string) {
		ls, err := ParseListeners(listeners, protoMap, advertised)
		if err != nil {
			return
		}
		if len(ls) == 0 || validateListeners(ls) != nil {
			t.Fatalf("accepted %q %q %q as %+v", listeners, protoMap, advertised, ls)
		}
	})
}

func FuzzParseSCRAMUser(f *testing.F) {
	f.Add("SCRAM-SHA-256=[name=admin,password=admin-secret]")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseSCRAMUser(s)
		if err != nil {
			return
		}
		if err := u.validate(); err != nil {
			t.Fatalf("accepted %q as invalid %+v: %v", s, u, err)
		}
	})
}

// FuzzRFC2253Name formats arbitrary certificate subjects without panicking.
func FuzzRFC2253Name(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = rfc2253Name(raw)
	})
}
