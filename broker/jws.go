package broker

// Signed JSON Web Tokens for the secured OAUTHBEARER validator (KIP-768):
// JWS compact serialization (RFC 7515) with the RS256/384/512,
// PS256/384/512 and ES256/384/512 algorithms (RFC 7518), and JSON Web Key
// sets (RFC 7517) holding RSA and EC public keys. Only the verification
// side, with the standard library's crypto; no algorithm from the token is
// trusted beyond choosing among these, "none" and HMAC are refused.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// jwsAlg is one supported signature algorithm.
type jwsAlg struct {
	name string
	kty  string // "RSA" or "EC"
	hash crypto.Hash
	pss  bool
	// curve of an ES algorithm.
	curve elliptic.Curve
}

var jwsAlgs = map[string]jwsAlg{
	"RS256": {name: "RS256", kty: "RSA", hash: crypto.SHA256},
	"RS384": {name: "RS384", kty: "RSA", hash: crypto.SHA384},
	"RS512": {name: "RS512", kty: "RSA", hash: crypto.SHA512},
	"PS256": {name: "PS256", kty: "RSA", hash: crypto.SHA256, pss: true},
	"PS384": {name: "PS384", kty: "RSA", hash: crypto.SHA384, pss: true},
	"PS512": {name: "PS512", kty: "RSA", hash: crypto.SHA512, pss: true},
	"ES256": {name: "ES256", kty: "EC", hash: crypto.SHA256, curve: elliptic.P256()},
	"ES384": {name: "ES384", kty: "EC", hash: crypto.SHA384, curve: elliptic.P384()},
	"ES512": {name: "ES512", kty: "EC", hash: crypto.SHA512, curve: elliptic.P521()},
}

// minRSABits is the smallest RSA modulus accepted (RFC 7518 section 3.3;
// jose4j enforces the same).
const minRSABits = 2048

// jwk is one usable verification key of a key set.
type jwk struct {
	kid string
	alg string // "" when the key does not restrict it
	kty string
	pub crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
}

// jwkJSON is a JWK's members that matter here.
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// maxJWKS bounds a key set document.
const maxJWKS = 1 << 20

// parseJWKS parses a JSON Web Key Set. Keys of other types (oct, OKP),
// for encryption (use "enc") or of an unsupported curve are skipped, as a
// key set shared with other uses holds them; a malformed RSA or EC key
// fails the whole set, so a broken publication is noticed rather than
// half used.
func parseJWKS(doc []byte) ([]jwk, error) {
	if len(doc) > maxJWKS {
		return nil, fmt.Errorf("JWKS is %d bytes long, at most %d", len(doc), maxJWKS)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	if set.Keys == nil {
		return nil, fmt.Errorf("parse JWKS: no \"keys\" member")
	}
	var out []jwk
	for i, raw := range set.Keys {
		var k jwkJSON
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("parse JWKS key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if a, ok := jwsAlgs[k.Alg]; k.Alg != "" && (!ok || a.kty != k.Kty) {
			continue
		}
		key := jwk{kid: k.Kid, alg: k.Alg, kty: k.Kty}
		switch k.Kty {
		case "RSA":
			pub, err := parseRSAJWK(k)
			if err != nil {
				return nil, fmt.Errorf("parse JWKS key %d (kid %q): %w", i, k.Kid, err)
			}
			key.pub = pub
		case "EC":
			curve := curveByName(k.Crv)
			if curve == nil {
				continue
			}
			pub, err := parseECJWK(k, curve)
			if err != nil {
				return nil, fmt.Errorf("parse JWKS key %d (kid %q): %w", i, k.Kid, err)
			}
			key.pub = pub
		default:
			continue
		}
		out = append(out, key)
	}
	return out, nil
}

func b64uBig(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	return new(big.Int).SetBytes(b), nil
}

func parseRSAJWK(k jwkJSON) (*rsa.PublicKey, error) {
	n, err := b64uBig(k.N)
	if err != nil {
		return nil, fmt.Errorf("RSA modulus: %w", err)
	}
	e, err := b64uBig(k.E)
	if err != nil {
		return nil, fmt.Errorf("RSA exponent: %w", err)
	}
	if n.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits, at least %d", n.BitLen(), minRSABits)
	}
	if n.BitLen() > 16384 {
		return nil, fmt.Errorf("RSA modulus of %d bits is too large", n.BitLen())
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("bad RSA exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func curveByName(crv string) elliptic.Curve {
	switch crv {
	case "P-256":
		return elliptic.P256()
	case "P-384":
		return elliptic.P384()
	case "P-521":
		return elliptic.P521()
	}
	return nil
}

// parseECJWK builds an EC key; x and y must have the curve's full length
// (RFC 7518 section 6.2.1.2) and the point must lie on the curve.
func parseECJWK(k jwkJSON, curve elliptic.Curve) (*ecdsa.PublicKey, error) {
	size := (curve.Params().BitSize + 7) / 8
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil {
		return nil, fmt.Errorf("EC x: %w", err)
	}
	y, err := base64.RawURLEncoding.DecodeString(k.Y)
	if err != nil {
		return nil, fmt.Errorf("EC y: %w", err)
	}
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("EC coordinates of %d and %d bytes, want %d", len(x), len(y), size)
	}
	pt := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pub, nil
}

// verifyJWS checks sig over signingInput with key under alg.
func verifyJWS(alg jwsAlg, key crypto.PublicKey, signingInput string, sig []byte) error {
	h := alg.hash.New()
	h.Write([]byte(signingInput))
	digest := h.Sum(nil)
	switch pub := key.(type) {
	case *rsa.PublicKey:
		if alg.kty != "RSA" {
			return fmt.Errorf("an RSA key cannot verify %s", alg.name)
		}
		if alg.pss {
			return rsa.VerifyPSS(pub, alg.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(pub, alg.hash, digest, sig)
	case *ecdsa.PublicKey:
		if alg.kty != "EC" || pub.Curve != alg.curve {
			return fmt.Errorf("a %s key cannot verify %s", pub.Curve.Params().Name, alg.name)
		}
		size := (alg.curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return fmt.Errorf("%s signature of %d bytes, want %d", alg.name, len(sig), 2*size)
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, digest, r, s) {
			return fmt.Errorf("%s signature does not verify", alg.name)
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", key)
}

// keySource yields the verification keys of a kid ("" when the token
// names none: every key). Implementations are safe for concurrent use.
type keySource interface {
	keys(kid string) ([]jwk, error)
}

// securedValidator is Kafka's OAuthBearerValidatorCallbackHandler with
// its BrokerJwtValidator.
type securedValidator struct {
	src        keySource
	audience   []string
	issuer     string
	subClaim   string
	scopeClaim string
	skew       time.Duration
}

func newSecuredValidator(o OAuthBearerConfig, src keySource) *securedValidator {
	return &securedValidator{src: src, audience: o.ExpectedAudience, issuer: o.ExpectedIssuer,
		subClaim: o.SubClaimName, scopeClaim: o.ScopeClaimName, skew: o.ClockSkew}
}

func (v *securedValidator) validate(token string, now time.Time) (bearerToken, error) {
	header, claims, parts, err := splitJWS(token)
	if err != nil {
		return bearerToken{}, err
	}
	algName, _ := header["alg"].(string)
	alg, ok := jwsAlgs[algName]
	if !ok {
		return bearerToken{}, invalidToken("JWS algorithm %q not accepted", algName)
	}
	if crit, ok := header["crit"]; ok {
		return bearerToken{}, invalidToken("JWS header has critical parameters %v", crit)
	}
	kid := ""
	if k, present := header["kid"]; present {
		if kid, ok = k.(string); !ok {
			return bearerToken{}, invalidToken("JWS kid is not a string")
		}
	}
	if len(parts[2]) > maxJWSPart {
		return bearerToken{}, invalidToken("JWS signature too long")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return bearerToken{}, invalidToken("JWS signature is not base64url")
	}
	keys, err := v.src.keys(kid)
	if err != nil {
		return bearerToken{}, invalidToken("verification keys: %v", err)
	}
	verified := false
	tried := 0
	for _, k := range keys {
		if k.kty != alg.kty || (k.alg != "" && k.alg != alg.name) {
			continue
		}
		tried++
		if verifyJWS(alg, k.pub, parts[0]+"."+parts[1], sig) == nil {
			verified = true
			break
		}
	}
	switch {
	case tried == 0:
		return bearerToken{}, invalidToken("no %s key with kid %q", alg.name, kid)
	case !verified:
		return bearerToken{}, invalidToken("JWS signature does not verify (kid %q)", kid)
	}
	return v.checkClaims(claims, now)
}

// checkClaims checks a verified token's claims.
func (v *securedValidator) checkClaims(claims map[string]any, now time.Time) (bearerToken, error) {
	exp, ok, err := numericClaim(claims, "exp")
	if err != nil {
		return bearerToken{}, err
	}
	if !ok {
		return bearerToken{}, invalidToken("no exp claim")
	}
	if _, ok, err = numericClaim(claims, "iat"); err != nil {
		return bearerToken{}, err
	} else if !ok {
		return bearerToken{}, invalidToken("no iat claim")
	}
	if !now.Add(-v.skew).Before(exp) {
		return bearerToken{}, invalidToken("expired at %v", exp)
	}
	if nbf, ok, err := numericClaim(claims, "nbf"); err != nil {
		return bearerToken{}, err
	} else if ok && nbf.After(now.Add(v.skew)) {
		return bearerToken{}, invalidToken("not valid before %v", nbf)
	}
	if v.issuer != "" {
		if iss, _ := claims["iss"].(string); iss != v.issuer {
			return bearerToken{}, invalidToken("issuer %q, want %q", iss, v.issuer)
		}
	}
	// As jose4j under Kafka: with expected audiences the aud claim must
	// name one; without, a token that names any audience is refused (it
	// was meant for someone else).
	aud, hasAud := claims["aud"]
	var auds []string
	switch a := aud.(type) {
	case string:
		auds = []string{a}
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok {
				auds = append(auds, s)
			}
		}
	}
	if (len(v.audience) > 0 || hasAud) && !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.audience, a) }) {
		return bearerToken{}, invalidToken("audience %v holds none of the expected %v", auds, v.audience)
	}
	sub, err := stringClaim(claims, v.subClaim)
	if err != nil {
		return bearerToken{}, err
	}
	scope, err := scopeClaim(claims, v.scopeClaim)
	if err != nil {
		return bearerToken{}, err
	}
	return bearerToken{principal: sub, scope: scope, expiry: exp}, nil
}
