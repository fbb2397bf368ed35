package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// The fuzz targets below cover every OAUTHBEARER decoder: the client's
// initial response, unsecured and signed tokens, and JWK sets. Seeds are
// in testdata/fuzz/; the signed seed tokens there were made with
// fuzzSigner and signToken.

// fuzzNow is the fixed time of the token fuzz targets; their seed tokens
// expire in 2100.
var fuzzNow = time.Unix(1_800_000_000, 0)

func FuzzOAuthClientResponse(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer abc.def.\x01\x01"))
	f.Add([]byte("n,a=alice,\x01auth=Bearer t\x01k=v w\x01\x01"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := parseOAuthClientResponse(msg)
		if err != nil {
			return
		}
		if r.token == "" || strings.ContainsAny(r.token, "\x01 ") || !bytes.HasPrefix(msg, []byte("n,")) || !bytes.HasSuffix(msg, []byte("\x01\x01")) {
			t.Fatalf("accepted %q as %+v", msg, r)
		}
		for k, v := range r.extensions {
			if k == "auth" || !oauthKeyRE.MatchString(k) || strings.Contains(v, "\x01") {
				t.Fatalf("bad extension %q=%q from %q", k, v, msg)
			}
		}
	})
}

// FuzzOAuthExchange feeds two client messages to an unsecured server: it
// must never panic, and a completed exchange names a principal.
func FuzzOAuthExchange(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.\x01\x01"), []byte{1})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		s := &oauthServer{validator: newUnsecuredValidator(DefaultOAuthBearerConfig()), now: func() time.Time { return fuzzNow }}
		for _, m := range [][]byte{first, second} {
			_, done, err := s.next(m)
			if err != nil {
				return
			}
			if done && s.user() == "" {
				t.Fatalf("authenticated without a principal by %q", m)
			}
		}
	})
}

func FuzzUnsecuredToken(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.")
	v := newUnsecuredValidator(DefaultOAuthBearerConfig())
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := v.validate(token, fuzzNow)
		if err != nil {
			return
		}
		if strings.TrimSpace(tok.principal) == "" || !tok.expiry.After(fuzzNow) || !strings.HasSuffix(token, ".") {
			t.Fatalf("accepted %q as %+v", token, tok)
		}
	})
}

// fuzzKeys is a fixed key set, so seed tokens signed with fuzzSigner
// verify in every run.
type fuzzKeys []jwk

func (k fuzzKeys) keys(kid string) ([]jwk, error) {
	var out []jwk
	for _, j := range k {
		if kid == "" || j.kid == kid {
			out = append(out, j)
		}
	}
	return out, nil
}

// fuzzSigner is a P-256 key with a fixed scalar.
func fuzzSigner(t testing.TB) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte("strom oauth fuzz key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzSecuredToken: a signed token is accepted only when its signing
// input is one a seed signed (the checked-in seeds sign these same
// claims) (nothing else can carry a valid signature of
// the fixed key), and never with alg none.
func FuzzSecuredToken(f *testing.F) {
	key := fuzzSigner(f)
	signed := map[string]bool{}
	for _, c := range []map[string]any{
		{"sub": "alice", "iat": 1_700_000_000, "exp": 4_102_444_800},
		{"sub": "bob", "iat": 1_700_000_000, "exp": 4_102_444_800, "scope": "a b", "aud": []string{"kafka"}, "nbf": 1_600_000_000},
	} {
		tok := signToken(f, "ES256", "fuzz", key, c)
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
		f.Add(tok)
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.")
	v := newSecuredValidator(DefaultOAuthBearerConfig(), fuzzKeys{{kid: "fuzz", alg: "ES256", kty: "EC", pub: key.Public()}})
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := v.validate(token, fuzzNow)
		if err != nil {
			return
		}
		i := strings.LastIndexByte(token, '.')
		if i < 0 || !signed[token[:i]] || tok.principal == "" {
			t.Fatalf("accepted %q as %+v", token, tok)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := parseJWKS(doc)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.pub == nil || (k.kty != "RSA" && k.kty != "EC") {
				t.Fatalf("key %+v from %q", k, doc)
			}
		}
	})
}
