package broker

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test keys are generated once per test binary: RSA generation is slow
// under -race.
var (
	testKeysOnce                    sync.Once
	testRSA1, testRSA2              *rsa.PrivateKey
	testEC256, testEC384, testEC521 *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		var e error
		testRSA1, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		testRSA2, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		testEC256, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		testEC384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		testEC521, e = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(e)
		if err != nil {
			panic(err)
		}
	})
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64uJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64u(b)
}

// unsecuredToken mints a token as Kafka's unsecured login module does.
func unsecuredToken(t testing.TB, claims map[string]any) string {
	return b64uJSON(t, map[string]any{"alg": "none"}) + "." + b64uJSON(t, claims) + "."
}

// signToken mints a JWS signed with key under alg.
func signToken(t testing.TB, alg, kid string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	input := b64uJSON(t, h) + "." + b64uJSON(t, claims)
	a, ok := jwsAlgs[alg]
	if !ok {
		// An algorithm we refuse: any bytes will do as the signature.
		return input + "." + b64u([]byte("signature"))
	}
	hh := a.hash.New()
	hh.Write([]byte(input))
	digest := hh.Sum(nil)
	var sig []byte
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if a.pss {
			sig, err = rsa.SignPSS(rand.Reader, k, a.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, a.hash, digest)
		}
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, digest)
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64u(sig)
}

// testJWK is a public key as a JWKS entry.
func testJWK(kid string, key crypto.Signer, alg string) map[string]any {
	m := map[string]any{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64u(k.N.Bytes())
		m["e"] = b64u(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		pt, _ := k.Bytes()
		size := (len(pt) - 1) / 2
		m["x"], m["y"] = b64u(pt[1:1+size]), b64u(pt[1+size:])
	}
	return m
}

func jwksDoc(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseOAuthClientResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     string
		ok      bool
		authzid string
		token   string
		ext     map[string]string
	}{
		{"plain", "n,,\x01auth=Bearer abc.def.\x01\x01", true, "", "abc.def.", map[string]string{}},
		{"authzid", "n,a=al=2Cice,\x01auth=Bearer t\x01\x01", true, "al,ice", "t", map[string]string{}},
		{"extensions", "n,,\x01auth=Bearer t\x01traceId=x y\x01\x01", true, "", "t", map[string]string{"traceId": "x y"}},
		{"scheme case", "n,,\x01auth=bEaReR t\x01\x01", true, "", "t", map[string]string{}},
		{"no auth", "n,,\x01foo=bar\x01\x01", false, "", "", nil},
		{"other scheme", "n,,\x01auth=Basic t\x01\x01", false, "", "", nil},
		{"token with slash", "n,,\x01auth=Bearer a/b\x01\x01", false, "", "", nil},
		{"no final separator", "n,,\x01auth=Bearer t\x01", false, "", "", nil},
		{"no gs2", "auth=Bearer t\x01\x01", false, "", "", nil},
		{"channel binding", "p=x,,\x01auth=Bearer t\x01\x01", false, "", "", nil},
		{"duplicate auth", "n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", false, "", "", nil},
		{"bad key", "n,,\x01auth=Bearer t\x01k1=v\x01\x01", false, "", "", nil},
		{"empty value", "n,,\x01auth=Bearer t\x01k=\x01\x01", false, "", "", nil},
		{"bad authzid escape", "n,a=x=2D,\x01auth=Bearer t\x01\x01", false, "", "", nil},
		{"empty", "", false, "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOAuthClientResponse([]byte(tc.msg))
			if !tc.ok {
				if !errors.Is(err, ErrAuthentication) {
					t.Fatalf("accepted %q as %+v (err %v)", tc.msg, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.authzid != tc.authzid || got.token != tc.token || len(got.extensions) != len(tc.ext) {
				t.Fatalf("got %+v", got)
			}
			for k, v := range tc.ext {
				if got.extensions[k] != v {
					t.Fatalf("extension %s = %q, want %q", k, got.extensions[k], v)
				}
			}
		})
	}
}

func TestUnsecuredValidator(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sec := now.Unix()
	base := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "alice", "iat": sec - 10, "exp": sec + 3600, "scope": []string{"read", "write"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	def := DefaultOAuthBearerConfig()
	for _, tc := range []struct {
		name   string
		cfg    func(*OAuthBearerConfig)
		token  string
		status string // "" when valid
	}{
		{"valid", nil, unsecuredToken(t, base(nil)), ""},
		{"fractional exp", nil, unsecuredToken(t, base(func(c map[string]any) { c["exp"] = float64(sec) + 0.5 })), ""},
		{"expired", nil, unsecuredToken(t, base(func(c map[string]any) { c["exp"] = sec - 1 })), "invalid_token"},
		{"expires now", nil, unsecuredToken(t, base(func(c map[string]any) { c["exp"] = sec })), "invalid_token"},
		{"expired within skew", func(o *OAuthBearerConfig) { o.UnsecuredClockSkew = 5 * time.Second },
			unsecuredToken(t, base(func(c map[string]any) { c["exp"] = sec - 1 })), ""},
		{"no exp", nil, unsecuredToken(t, base(func(c map[string]any) { delete(c, "exp") })), "invalid_token"},
		{"exp a string", nil, unsecuredToken(t, base(func(c map[string]any) { c["exp"] = "soon" })), "invalid_token"},
		{"missing sub", nil, unsecuredToken(t, base(func(c map[string]any) { delete(c, "sub") })), "invalid_token"},
		{"empty sub", nil, unsecuredToken(t, base(func(c map[string]any) { c["sub"] = "" })), "invalid_token"},
		{"other principal claim", func(o *OAuthBearerConfig) { o.UnsecuredPrincipalClaimName = "client_id" },
			unsecuredToken(t, base(func(c map[string]any) { c["client_id"] = "svc" })), ""},
		{"iat in the future", nil, unsecuredToken(t, base(func(c map[string]any) { c["iat"] = sec + 60 })), "invalid_token"},
		{"no iat", nil, unsecuredToken(t, base(func(c map[string]any) { delete(c, "iat") })), ""},
		{"signature present", nil, unsecuredToken(t, base(nil)) + "c2ln", "invalid_token"},
		{"two parts", nil, "eyJhbGciOiJub25lIn0.e30", "invalid_token"},
		{"header not JSON", nil, b64u([]byte("nope")) + "." + b64uJSON(t, base(nil)) + ".", "invalid_token"},
		{"required scope held", func(o *OAuthBearerConfig) { o.UnsecuredRequiredScope = []string{"write"} }, unsecuredToken(t, base(nil)), ""},
		{"scope as list", func(o *OAuthBearerConfig) { o.UnsecuredRequiredScope = []string{"write"} },
			unsecuredToken(t, base(func(c map[string]any) { c["scope"] = []string{"write"} })), ""},
		{"scope string is one element", func(o *OAuthBearerConfig) { o.UnsecuredRequiredScope = []string{"write"} },
			unsecuredToken(t, base(func(c map[string]any) { c["scope"] = "read write" })), "insufficient_scope"},
		{"scope string", func(o *OAuthBearerConfig) { o.UnsecuredRequiredScope = []string{"write"} },
			unsecuredToken(t, base(func(c map[string]any) { c["scope"] = " write " })), ""},
		{"alg not none", nil, b64uJSON(t, map[string]any{"alg": "RS256"}) + "." + b64uJSON(t, base(nil)) + ".", "invalid_token"},
		{"no alg", nil, b64uJSON(t, map[string]any{"typ": "JWT"}) + "." + b64uJSON(t, base(nil)) + ".", "invalid_token"},
		{"required scope missing", func(o *OAuthBearerConfig) { o.UnsecuredRequiredScope = []string{"admin"} }, unsecuredToken(t, base(nil)), "insufficient_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := def
			if tc.cfg != nil {
				tc.cfg(&o)
			}
			tok, err := newUnsecuredValidator(o).validate(tc.token, now)
			checkValidation(t, tok, err, tc.status)
		})
	}
}

// checkValidation requires a valid token naming alice or svc, or a
// tokenError of the given status.
func checkValidation(t *testing.T, tok bearerToken, err error, status string) {
	t.Helper()
	if status == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if tok.principal != "alice" && tok.principal != "svc" {
			t.Fatalf("principal %q", tok.principal)
		}
		return
	}
	var te *tokenError
	if !errors.As(err, &te) || te.status != status {
		t.Fatalf("want status %s, got %+v (%v)", status, tok, err)
	}
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("%v does not match ErrAuthentication", err)
	}
}

// writeJWKSFile writes a key set to path atomically (rename), so a
// concurrent reader never sees half a file.
func writeJWKSFile(t testing.TB, path string, doc []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newTestJWKSSource(t *testing.T, path string) *jwksSource {
	t.Helper()
	o := DefaultOAuthBearerConfig()
	o.JWKSEndpointURL = "file://" + path
	o.JWKSRetryBackoff, o.JWKSRetryBackoffMax = time.Millisecond, time.Millisecond
	src, err := newJWKSSource(t.Context(), o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSecuredValidator(t *testing.T) {
	t.Parallel()
	testKeys(t)
	now := time.Now()
	sec := now.Unix()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "alice", "iss": "https://idp.example", "aud": []string{"kafka", "other"}, "iat": sec - 10, "exp": sec + 600, "scope": "produce"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	writeJWKSFile(t, path, jwksDoc(t,
		testJWK("rsa1", testRSA1, ""), testJWK("ec256", testEC256, "ES256"), testJWK("ec384", testEC384, ""),
		testJWK("ec521", testEC521, ""), map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}))
	src := newTestJWKSSource(t, path)
	if err := src.fetch(); err != nil {
		t.Fatal(err)
	}
	o := DefaultOAuthBearerConfig()
	o.ExpectedAudience = []string{"kafka"}
	o.ExpectedIssuer = "https://idp.example"
	for _, tc := range []struct {
		name   string
		cfg    func(*OAuthBearerConfig)
		token  string
		status string
	}{
		{"RS256", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(nil)), ""},
		{"RS384", nil, signToken(t, "RS384", "rsa1", testRSA1, claims(nil)), ""},
		{"RS512", nil, signToken(t, "RS512", "rsa1", testRSA1, claims(nil)), ""},
		{"PS256", nil, signToken(t, "PS256", "rsa1", testRSA1, claims(nil)), ""},
		{"PS512", nil, signToken(t, "PS512", "rsa1", testRSA1, claims(nil)), ""},
		{"ES256", nil, signToken(t, "ES256", "ec256", testEC256, claims(nil)), ""},
		{"ES384", nil, signToken(t, "ES384", "ec384", testEC384, claims(nil)), ""},
		{"ES512", nil, signToken(t, "ES512", "ec521", testEC521, claims(nil)), ""},
		{"no kid", nil, signToken(t, "ES384", "", testEC384, claims(nil)), ""},
		{"aud as string", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["aud"] = "kafka" })), ""},
		{"no expectations", func(o *OAuthBearerConfig) { o.ExpectedAudience, o.ExpectedIssuer = nil, "" },
			signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { delete(c, "aud"); delete(c, "iss") })), ""},
		{"aud without expected audience", func(o *OAuthBearerConfig) { o.ExpectedAudience = nil },
			signToken(t, "RS256", "rsa1", testRSA1, claims(nil)), "invalid_token"},
		{"empty aud list without expected audience", func(o *OAuthBearerConfig) { o.ExpectedAudience = nil },
			signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["aud"] = []string{} })), "invalid_token"},
		{"other sub claim", func(o *OAuthBearerConfig) { o.SubClaimName = "client_id" },
			signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["client_id"] = "svc" })), ""},
		{"expired", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["exp"] = sec - 31 })), "invalid_token"},
		{"expired within skew", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["exp"] = sec - 20 })), ""},
		{"not yet valid", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["nbf"] = sec + 300 })), "invalid_token"},
		{"no exp", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { delete(c, "exp") })), "invalid_token"},
		{"no iat", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { delete(c, "iat") })), "invalid_token"},
		{"wrong audience", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["aud"] = "billing" })), "invalid_token"},
		{"no audience", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { delete(c, "aud") })), "invalid_token"},
		{"wrong issuer", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), "invalid_token"},
		{"missing sub", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { delete(c, "sub") })), "invalid_token"},
		{"sub not a string", nil, signToken(t, "RS256", "rsa1", testRSA1, claims(func(c map[string]any) { c["sub"] = 7 })), "invalid_token"},
		{"bad signature", nil, signToken(t, "RS256", "rsa1", testRSA2, claims(nil)), "invalid_token"},
		{"claims altered", nil, func() string {
			tok := signToken(t, "RS256", "rsa1", testRSA1, claims(nil))
			p := strings.Split(tok, ".")
			return p[0] + "." + b64uJSON(t, claims(func(c map[string]any) { c["sub"] = "mallory" })) + "." + p[2]
		}(), "invalid_token"},
		{"alg none", nil, unsecuredToken(t, claims(nil)), "invalid_token"},
		{"alg none with signature", nil, signToken(t, "none", "rsa1", testRSA1, claims(nil)), "invalid_token"},
		{"HS256", nil, signToken(t, "HS256", "hmac", testRSA1, claims(nil)), "invalid_token"},
		{"alg not of the key", nil, signToken(t, "ES384", "ec256", testEC384, claims(nil)), "invalid_token"},
		{"ES256 key pinned to ES256 used with RS256", nil, signToken(t, "RS256", "ec256", testRSA1, claims(nil)), "invalid_token"},
		{"crit header", nil, func() string {
			input := b64uJSON(t, map[string]any{"alg": "RS256", "kid": "rsa1", "crit": []string{"exp"}, "exp": 1}) + "." + b64uJSON(t, claims(nil))
			return input + "." + b64u([]byte("x"))
		}(), "invalid_token"},
		{"unknown kid", nil, signToken(t, "RS256", "nope", testRSA1, claims(nil)), "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := o
			if tc.cfg != nil {
				tc.cfg(&oc)
			}
			tok, err := newSecuredValidator(oc, src).validate(tc.token, now)
			checkValidation(t, tok, err, tc.status)
			if tc.status == "" && tc.name != "expired within skew" && !tok.expiry.Equal(time.UnixMilli(1000*(sec+600))) {
				t.Fatalf("expiry %v", tok.expiry)
			}
		})
	}
}

// TestJWKSUnknownKidRefreshes: a token whose kid the held key set lacks
// makes the source read the endpoint again (here a file rotated to a new
// key), once per kid within oauthMissRefreshInterval.
func TestJWKSUnknownKidRefreshes(t *testing.T) {
	testKeys(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKSFile(t, path, jwksDoc(t, testJWK("old", testRSA1, "RS256")))
	src := newTestJWKSSource(t, path)
	if err := src.fetch(); err != nil {
		t.Fatal(err)
	}
	v := newSecuredValidator(DefaultOAuthBearerConfig(), src)
	now := time.Now()
	claims := map[string]any{"sub": "alice", "iat": now.Unix(), "exp": now.Unix() + 60}

	// Rotation: the file now holds only the new key.
	writeJWKSFile(t, path, jwksDoc(t, testJWK("new", testRSA2, "RS256")))
	if _, err := v.validate(signToken(t, "RS256", "old", testRSA1, claims), now); err != nil {
		t.Fatalf("held key refused before any refresh: %v", err)
	}
	if _, err := v.validate(signToken(t, "RS256", "new", testRSA2, claims), now); err != nil {
		t.Fatalf("new kid not found after refresh: %v", err)
	}
	if _, err := v.validate(signToken(t, "RS256", "old", testRSA1, claims), now); err == nil {
		t.Fatal("rotated-out key still accepted")
	}
	// A kid that is nowhere: the first miss fetches, the second within
	// the interval does not.
	writeJWKSFile(t, path, jwksDoc(t, testJWK("new", testRSA2, "RS256"), testJWK("later", testRSA1, "RS256")))
	src.mu.Lock()
	src.missed["later"] = time.Now()
	src.mu.Unlock()
	if _, err := v.validate(signToken(t, "RS256", "later", testRSA1, claims), now); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("a kid that missed recently refreshed again: %v", err)
	}
	src.mu.Lock()
	src.missed["later"] = time.Now().Add(-oauthMissRefreshInterval)
	src.mu.Unlock()
	if _, err := v.validate(signToken(t, "RS256", "later", testRSA1, claims), now); err != nil {
		t.Fatalf("kid not refreshed after the interval: %v", err)
	}
	// A fetch failure keeps the held keys.
	if err := os.WriteFile(path, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.fetch(); err == nil {
		t.Fatal("broken JWKS fetched")
	}
	if _, err := v.validate(signToken(t, "RS256", "new", testRSA2, claims), now); err != nil {
		t.Fatalf("keys lost after a failed fetch: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec := testJWK("ec", testEC256, "")
	offCurve := map[string]any{"kty": "EC", "crv": "P-256", "kid": "bad", "x": ec["x"], "y": ec["x"]}
	shortX := map[string]any{"kty": "EC", "crv": "P-256", "kid": "bad", "x": b64u([]byte{1, 2}), "y": ec["y"]}
	for _, tc := range []struct {
		name string
		doc  string
		n    int // keys kept; -1: error
	}{
		{"rsa and ec", string(jwksDoc(t, testJWK("r", testRSA1, "RS256"), ec)), 2},
		{"skips enc and oct and OKP", string(jwksDoc(t, map[string]any{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
			map[string]any{"kty": "oct", "k": "AA"}, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AA"}, ec)), 1},
		{"skips unknown alg", string(jwksDoc(t, testJWK("r", testRSA1, "RSA-OAEP"))), 0},
		{"small RSA", string(jwksDoc(t, testJWK("s", small, ""))), -1},
		{"off curve", string(jwksDoc(t, offCurve)), -1},
		{"short coordinate", string(jwksDoc(t, shortX)), -1},
		{"no keys member", `{}`, -1},
		{"not JSON", `[`, -1},
		{"key not an object", `{"keys":[1]}`, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tc.doc))
			if tc.n < 0 {
				if err == nil {
					t.Fatalf("accepted: %+v", keys)
				}
				return
			}
			if err != nil || len(keys) != tc.n {
				t.Fatalf("got %d keys, %v; want %d", len(keys), err, tc.n)
			}
		})
	}
}

// TestOAuthServerExchange walks the mechanism's messages: success, the
// failure path (JSON status, then the client's \x01), a fresh attempt
// after a refusal, and an authzid other than the token's principal.
func TestOAuthServerExchange(t *testing.T) {
	now := time.Now()
	valid := unsecuredToken(t, map[string]any{"sub": "alice", "exp": now.Unix() + 60})
	expired := unsecuredToken(t, map[string]any{"sub": "alice", "exp": now.Unix() - 60})
	o := DefaultOAuthBearerConfig()
	o.UnsecuredRequiredScope = []string{"kafka"}
	scoped := unsecuredToken(t, map[string]any{"sub": "alice", "exp": now.Unix() + 60, "scope": "kafka"})
	newSrv := func() *oauthServer {
		return &oauthServer{validator: newUnsecuredValidator(o), now: func() time.Time { return now }}
	}
	msg := func(authzid, tok string) []byte {
		gs2 := "n,,"
		if authzid != "" {
			gs2 = "n,a=" + authzid + ","
		}
		return []byte(gs2 + "\x01auth=Bearer " + tok + "\x01\x01")
	}

	s := newSrv()
	out, done, err := s.next(msg("", scoped))
	if err != nil || !done || len(out) != 0 || s.user() != "alice" {
		t.Fatalf("valid token: %q %v %v user %q", out, done, err, s.user())
	}
	if exp, ok := s.credentialExpiry(); !ok || exp.Unix() != now.Unix()+60 {
		t.Fatalf("credential expiry %v %v", exp, ok)
	}
	if _, _, err := s.next(msg("", scoped)); err == nil {
		t.Fatal("second message after success accepted")
	}

	s = newSrv()
	out, done, err = s.next(msg("", valid))
	if err != nil || done || string(out) != `{"status":"insufficient_scope", "scope":"[kafka]"}` {
		t.Fatalf("scope refusal: %q %v %v", out, done, err)
	}
	_, done, err = s.next([]byte{1})
	var f saslFailure
	if done || !errors.As(err, &f) || f.msg != `{"status":"insufficient_scope", "scope":"[kafka]"}` {
		t.Fatalf("after \\x01: %v %v", done, err)
	}
	if !strings.Contains(err.Error(), `required scope "kafka" not in`) {
		t.Fatalf("the logged error does not say why: %v", err)
	}

	s = newSrv()
	if out, _, _ = s.next(msg("", expired)); string(out) != `{"status":"invalid_token"}` {
		t.Fatalf("expired: %q", out)
	}
	if _, done, err = s.next(msg("", scoped)); err != nil || !done {
		t.Fatalf("retry after refusal: %v %v", done, err)
	}

	s = newSrv()
	if _, _, err = s.next(msg("bob", scoped)); !errors.As(err, &f) || !strings.Contains(f.msg, "authorization id (bob)") {
		t.Fatalf("foreign authzid: %v", err)
	}
	s = newSrv()
	if _, done, err = s.next(msg("alice", scoped)); err != nil || !done {
		t.Fatalf("own authzid: %v", err)
	}
	s = newSrv()
	if _, _, err = s.next([]byte{1}); err == nil || errors.As(err, &f) {
		t.Fatalf("lone \\x01 first: %v (want the generic failure)", err)
	}
}

func TestSessionLifetime(t *testing.T) {
	now := time.Now()
	tokenIn := func(d time.Duration) saslServer {
		return &oauthServer{done: true, token: bearerToken{principal: "a", expiry: now.Add(d)}}
	}
	for _, tc := range []struct {
		name      string
		srv       saslServer
		maxReauth time.Duration
		want      time.Duration
		expires   bool
	}{
		{"plain, no reauth", &plainServer{}, 0, 0, false},
		{"plain, reauth", &plainServer{}, 5 * time.Second, 5 * time.Second, true},
		{"token, no reauth", tokenIn(time.Hour), 0, time.Hour, true},
		{"token longer than reauth", tokenIn(time.Hour), 5 * time.Second, 5 * time.Second, true},
		{"token shorter than reauth", tokenIn(2 * time.Second), time.Minute, 2 * time.Second, true},
		{"token already expired (skew)", tokenIn(-time.Second), time.Minute, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, expires := sessionLifetime(tc.srv, tc.maxReauth, now)
			if got != tc.want || expires != tc.expires {
				t.Fatalf("got %v %v, want %v %v", got, expires, tc.want, tc.expires)
			}
		})
	}
}

// testLogger logs warnings and above to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
