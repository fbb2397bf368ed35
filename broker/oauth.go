package broker

// SASL/OAUTHBEARER (RFC 7628, KIP-255), the server side, as Kafka's
// OAuthBearerSaslServer serves it, with Kafka's two token validators:
//
//   - the unsecured validator (OAuthBearerUnsecuredValidatorCallbackHandler,
//     the default): the token is an unsecured JWS (header.payload. with an
//     empty signature and alg "none"); its principal claim (default sub) must be a
//     non-empty string, exp must lie after now minus the allowable clock
//     skew (default 0), iat, when present, before now plus the skew and
//     before exp, and every required scope must be in the scope claim.
//     Kafka's stock client login module (OAuthBearerLoginModule with
//     unsecuredLoginStringClaim_sub) mints such tokens, so a broker without
//     a JWKS endpoint accepts it out of the box, as Kafka does.
//   - the secured validator (KIP-768, OAuthBearerValidatorCallbackHandler),
//     used when OAuthBearerConfig.JWKSEndpointURL is set: a signed JWS
//     (jws.go) verified against the endpoint's key set (jwks.go), exp and
//     iat required, exp and nbf checked with the clock skew (default 30 s),
//     the expected issuer and audience when configured, the sub claim
//     (configurable name) a non-empty string. As with Kafka's jose4j, a
//     token naming an audience is refused when none is expected.
//
// The exchange: the client's one message is
// "n,[a=authzid],\x01auth=Bearer <token>\x01[key=value\x01]...\x01". A
// valid token ends the exchange with an empty answer and the principal
// User:<sub>; an authzid, when given, must equal it. An invalid token is
// answered (successfully, at the protocol level) with RFC 7628's JSON
// status, {"status":"invalid_token"} or, for a missing scope,
// {"status":"insufficient_scope", "scope":"[<required>, ...]"}; the client then
// sends a lone \x01 and gets SASL_AUTHENTICATION_FAILED with that JSON as
// the message. A malformed message fails at once with Kafka's generic
// message. Extensions are parsed and checked for syntax, then ignored (both
// of Kafka's validators accept every extension).
//
// Differences from Apache Kafka:
//   - Token parts are decoded as base64url (RFC 7515); Kafka's unsecured
//     validator uses the standard alphabet, so it refuses a token whose
//     parts hold '-' or '_'.
//   - A key named twice in the client's message fails the exchange (Kafka
//     keeps the last one).
//   - An unknown kid refreshes the key set at once and retries the lookup,
//     at most once per kid every oauthMissRefreshInterval; Kafka fails the
//     attempt and refreshes in the background.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MechanismOAuthBearer is the SASL mechanism name of OAUTHBEARER.
const MechanismOAuthBearer = "OAUTHBEARER"

// OAuthBearerConfig is the OAUTHBEARER validation of SASL listeners.
// Without JWKSEndpointURL tokens are checked by the unsecured validator
// (Unsecured* fields), as in Kafka; with it by the secured one (the other
// fields, named after Kafka's sasl.oauthbearer.* broker configs).
type OAuthBearerConfig struct {
	// JWKSEndpointURL is sasl.oauthbearer.jwks.endpoint.url: a file:// or
	// https:// URL of the JSON Web Key Set tokens are verified with.
	JWKSEndpointURL string
	// JWKSRefresh is sasl.oauthbearer.jwks.endpoint.refresh.ms: how often
	// the key set is fetched again.
	JWKSRefresh time.Duration
	// JWKSRetryBackoff and JWKSRetryBackoffMax are
	// sasl.oauthbearer.jwks.endpoint.retry.backoff(.max).ms: the wait
	// before the first retry of a failed fetch, doubling up to the max.
	JWKSRetryBackoff, JWKSRetryBackoffMax time.Duration
	// JWKSCAFile holds PEM CA certificates an https endpoint is verified
	// against; empty means the system roots.
	JWKSCAFile string
	// ExpectedAudience is sasl.oauthbearer.expected.audience: when set, the
	// token's aud must name one of them.
	ExpectedAudience []string
	// ExpectedIssuer is sasl.oauthbearer.expected.issuer: when set, the
	// token's iss must equal it.
	ExpectedIssuer string
	// SubClaimName and ScopeClaimName are sasl.oauthbearer.sub.claim.name
	// and sasl.oauthbearer.scope.claim.name.
	SubClaimName, ScopeClaimName string
	// ClockSkew is sasl.oauthbearer.clock.skew.seconds.
	ClockSkew time.Duration

	// UnsecuredPrincipalClaimName, UnsecuredScopeClaimName,
	// UnsecuredRequiredScope and UnsecuredClockSkew are the unsecured
	// validator's JAAS options (unsecuredValidatorPrincipalClaimName,
	// ...ScopeClaimName, ...RequiredScope, ...AllowableClockSkewMs).
	UnsecuredPrincipalClaimName, UnsecuredScopeClaimName string
	UnsecuredRequiredScope                               []string
	UnsecuredClockSkew                                   time.Duration
}

// DefaultOAuthBearerConfig returns Kafka's defaults.
func DefaultOAuthBearerConfig() OAuthBearerConfig {
	return OAuthBearerConfig{
		JWKSRefresh:                 time.Hour,
		JWKSRetryBackoff:            100 * time.Millisecond,
		JWKSRetryBackoffMax:         10 * time.Second,
		SubClaimName:                "sub",
		ScopeClaimName:              "scope",
		ClockSkew:                   30 * time.Second,
		UnsecuredPrincipalClaimName: "sub",
		UnsecuredScopeClaimName:     "scope",
	}
}

// validate checks the config's values (not the reachability of the
// endpoint).
func (o OAuthBearerConfig) validate() error {
	if o.JWKSEndpointURL != "" {
		if _, err := parseJWKSURL(o.JWKSEndpointURL); err != nil {
			return err
		}
	}
	switch {
	case o.JWKSRefresh <= 0:
		return fmt.Errorf("%w: JWKS refresh interval must be positive", ErrInvalidConfig)
	case o.JWKSRetryBackoff <= 0 || o.JWKSRetryBackoffMax < o.JWKSRetryBackoff:
		return fmt.Errorf("%w: JWKS retry backoff must be positive and at most its max", ErrInvalidConfig)
	case o.SubClaimName == "" || o.ScopeClaimName == "" || o.UnsecuredPrincipalClaimName == "" || o.UnsecuredScopeClaimName == "":
		return fmt.Errorf("%w: OAUTHBEARER claim names must not be empty", ErrInvalidConfig)
	case o.ClockSkew < 0 || o.UnsecuredClockSkew < 0:
		return fmt.Errorf("%w: OAUTHBEARER clock skew must not be negative", ErrInvalidConfig)
	}
	return nil
}

// bearerToken is a validated token: who it names and until when.
type bearerToken struct {
	principal string
	scope     []string
	expiry    time.Time
}

// tokenValidator checks a bearer token at time now. Implementations are
// safe for concurrent use by every connection.
type tokenValidator interface {
	validate(token string, now time.Time) (bearerToken, error)
}

// tokenError is a refused token: the RFC 7628 status sent to the client
// and the reason, logged but not sent.
type tokenError struct {
	status string // "invalid_token" or "insufficient_scope"
	scope  string // the required scope, with insufficient_scope
	reason string
}

func (e *tokenError) Error() string { return "OAUTHBEARER token refused: " + e.reason }

// Unwrap makes every tokenError match ErrAuthentication.
func (e *tokenError) Unwrap() error { return ErrAuthentication }

func invalidToken(format string, args ...any) *tokenError {
	return &tokenError{status: "invalid_token", reason: fmt.Sprintf(format, args...)}
}

// jsonStatus is the RFC 7628 error message of e, laid out as Kafka's
// OAuthBearerSaslServer writes it.
func (e *tokenError) jsonStatus() string {
	var b strings.Builder
	b.WriteString(`{"status":`)
	b.Write(jsonString(e.status))
	if e.scope != "" {
		b.WriteString(`, "scope":`)
		b.Write(jsonString(e.scope))
	}
	b.WriteString("}")
	return b.String()
}

func jsonString(s string) []byte {
	out, _ := json.Marshal(s) // a string always marshals
	return out
}

// oauthClientResponse is a parsed client initial response.
type oauthClientResponse struct {
	authzid    string
	token      string
	extensions map[string]string
}

var (
	// oauthKeyRE and oauthValueRE are RFC 7628's key and value syntax.
	oauthKeyRE   = regexp.MustCompile(`^[A-Za-z]+$`)
	oauthValueRE = regexp.MustCompile(`^[\x21-\x7E \t\r\n]+$`)
	// oauthAuthRE is the auth value: a scheme and an RFC 6750 token (as
	// Kafka restricts it: no '~', '+', '/' or padding).
	oauthAuthRE = regexp.MustCompile(`^(\w+) +([-_.a-zA-Z0-9]+)$`)
)

// parseOAuthClientResponse parses the client's initial response:
//
//	"n," ["a=" saslname] "," %x01 *(key "=" value %x01) %x01
func parseOAuthClientResponse(msg []byte) (oauthClientResponse, error) {
	var out oauthClientResponse
	fail := func(why string) (oauthClientResponse, error) {
		return oauthClientResponse{}, fmt.Errorf("%w: invalid OAUTHBEARER client first message: %s", ErrAuthentication, why)
	}
	rest, ok := bytes.CutPrefix(msg, []byte("n,"))
	if !ok {
		return fail("no gs2 header")
	}
	gs2, rest, ok := bytes.Cut(rest, []byte(","))
	if !ok {
		return fail("gs2 header not terminated")
	}
	if len(gs2) > 0 {
		name, ok := bytes.CutPrefix(gs2, []byte("a="))
		if !ok || len(name) == 0 {
			return fail("bad authzid")
		}
		for _, c := range name {
			if c == 0 || c > 0x7f {
				return fail("bad authzid")
			}
		}
		id, err := decodeSASLName(string(name))
		if err != nil {
			return fail("bad authzid")
		}
		out.authzid = id
	}
	rest, ok = bytes.CutPrefix(rest, []byte{1})
	if !ok {
		return fail("no separator after the gs2 header")
	}
	rest, ok = bytes.CutSuffix(rest, []byte{1})
	if !ok {
		return fail("not terminated")
	}
	auth := ""
	out.extensions = map[string]string{}
	seen := map[string]bool{}
	for len(rest) > 0 {
		kv, tail, ok := bytes.Cut(rest, []byte{1})
		if !ok {
			return fail("key-value pair not terminated")
		}
		rest = tail
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || !oauthKeyRE.Match(k) || !oauthValueRE.Match(v) {
			return fail("bad key-value pair")
		}
		key := string(k)
		if seen[key] {
			return fail("key " + key + " given twice")
		}
		seen[key] = true
		if key == "auth" {
			auth = string(v)
		} else {
			out.extensions[key] = string(v)
		}
	}
	if !seen["auth"] {
		return fail("'auth' not specified")
	}
	m := oauthAuthRE.FindStringSubmatch(auth)
	if m == nil {
		return fail("bad auth value")
	}
	if !strings.EqualFold(m[1], "bearer") {
		return fail("auth scheme is not Bearer")
	}
	out.token = m[2]
	return out, nil
}

// oauthServer is one OAUTHBEARER exchange.
type oauthServer struct {
	validator tokenValidator
	now       func() time.Time
	// errStatus is the JSON status sent after a refused token; the
	// client's \x01 then fails the exchange with it. errReason is why,
	// for the broker's log only.
	errStatus, errReason string
	token                bearerToken
	done                 bool
}

func (s *oauthServer) mechanism() string { return MechanismOAuthBearer }

func (s *oauthServer) user() string { return s.token.principal }

// credentialExpiry is when the token expires: Kafka's
// CREDENTIAL.LIFETIME.MS negotiated property, which caps the session
// lifetime (KIP-368).
func (s *oauthServer) credentialExpiry() (time.Time, bool) { return s.token.expiry, s.done }

func (s *oauthServer) next(msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fmt.Errorf("%w: OAUTHBEARER exchange already ended", ErrAuthentication)
	}
	if s.errStatus != "" && len(msg) == 1 && msg[0] == 1 {
		return nil, false, fmt.Errorf("%s: %w", s.errReason, saslFailure{s.errStatus})
	}
	// Anything else after a refusal starts over, as in Kafka.
	s.errStatus, s.errReason = "", ""
	cr, err := parseOAuthClientResponse(msg)
	if err != nil {
		return nil, false, err
	}
	tok, err := s.validator.validate(cr.token, s.now())
	if err != nil {
		te, ok := err.(*tokenError)
		if !ok {
			te = invalidToken("%v", err)
		}
		s.errStatus, s.errReason = te.jsonStatus(), te.Error()
		return []byte(s.errStatus), false, nil
	}
	if cr.authzid != "" && cr.authzid != tok.principal {
		return nil, false, saslFailure{fmt.Sprintf("Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)",
			cr.authzid, tok.principal)}
	}
	s.token = tok
	s.done = true
	return []byte{}, true, nil
}

// splitJWS splits a JWS compact serialization into its three
// base64url parts and decodes the first two as JSON objects.
func splitJWS(token string) (header, claims map[string]any, parts [3]string, err error) {
	p := strings.Split(token, ".")
	if len(p) != 3 {
		return nil, nil, parts, invalidToken("a JWS compact serialization has 3 dot-separated parts, got %d", len(p))
	}
	copy(parts[:], p)
	if header, err = decodeJSONPart(p[0]); err != nil {
		return nil, nil, parts, invalidToken("JWS header: %v", err)
	}
	if claims, err = decodeJSONPart(p[1]); err != nil {
		return nil, nil, parts, invalidToken("JWT claims: %v", err)
	}
	return header, claims, parts, nil
}

// maxJWSPart bounds a token part, so a hostile token costs little.
const maxJWSPart = 64 << 10

func decodeJSONPart(part string) (map[string]any, error) {
	if len(part) > maxJWSPart {
		return nil, fmt.Errorf("%d bytes long", len(part))
	}
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return nil, fmt.Errorf("base64url: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return m, nil
}

// numericClaim reads a NumericDate claim (seconds since the epoch, maybe
// fractional) as a time; ok is false when absent.
func numericClaim(claims map[string]any, name string) (t time.Time, ok bool, err error) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, false, invalidToken("claim %q is not a number", name)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, false, invalidToken("claim %q is not a usable time: %s", name, n)
	}
	return time.UnixMilli(int64(math.Round(f * 1000))), true, nil
}

// stringClaim reads a claim that must be a non-empty string.
func stringClaim(claims map[string]any, name string) (string, error) {
	v, ok := claims[name]
	if !ok {
		return "", invalidToken("no %q claim", name)
	}
	s, ok := v.(string)
	if !ok || strings.TrimSpace(s) == "" {
		return "", invalidToken("claim %q is not a non-empty string", name)
	}
	return s, nil
}

// scopeClaim reads a scope claim: a list of strings, or a string that is
// one scope element (Kafka's validators do not split it at spaces); absent
// means no scope.
func scopeClaim(claims map[string]any, name string) ([]string, error) {
	switch v := claims[name].(type) {
	case nil:
		return nil, nil
	case string:
		if v = strings.TrimSpace(v); v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, invalidToken("claim %q holds a non-string", name)
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, invalidToken("claim %q is neither a string nor a list", name)
}

// unsecuredValidator is Kafka's OAuthBearerUnsecuredValidatorCallbackHandler.
type unsecuredValidator struct {
	principalClaim, scopeClaim string
	requiredScope              []string
	skew                       time.Duration
}

func newUnsecuredValidator(o OAuthBearerConfig) *unsecuredValidator {
	return &unsecuredValidator{principalClaim: o.UnsecuredPrincipalClaimName, scopeClaim: o.UnsecuredScopeClaimName,
		requiredScope: o.UnsecuredRequiredScope, skew: o.UnsecuredClockSkew}
}

func (v *unsecuredValidator) validate(token string, now time.Time) (bearerToken, error) {
	header, claims, parts, err := splitJWS(token)
	if err != nil {
		return bearerToken{}, err
	}
	if alg, _ := header["alg"].(string); alg != "none" {
		return bearerToken{}, invalidToken("an unsecured JWS must have 'none' for an algorithm")
	}
	if parts[2] != "" {
		return bearerToken{}, invalidToken("an unsecured JWS must have an empty signature")
	}
	principal, err := stringClaim(claims, v.principalClaim)
	if err != nil {
		return bearerToken{}, err
	}
	exp, ok, err := numericClaim(claims, "exp")
	if err != nil {
		return bearerToken{}, err
	}
	if !ok {
		return bearerToken{}, invalidToken("no expiration time in the token")
	}
	iat, hasIat, err := numericClaim(claims, "iat")
	if err != nil {
		return bearerToken{}, err
	}
	if hasIat && iat.After(now.Add(v.skew)) {
		return bearerToken{}, invalidToken("issued at %v, after now plus the allowable clock skew", iat)
	}
	if !now.Add(-v.skew).Before(exp) {
		return bearerToken{}, invalidToken("expired at %v", exp)
	}
	if hasIat && !exp.After(iat) {
		return bearerToken{}, invalidToken("expiration %v not after issued at %v", exp, iat)
	}
	scope, err := scopeClaim(claims, v.scopeClaim)
	if err != nil {
		return bearerToken{}, err
	}
	for _, r := range v.requiredScope {
		if !slices.Contains(scope, r) {
			// The scope is written as Kafka writes it: Java's List.toString.
			return bearerToken{}, &tokenError{status: "insufficient_scope", scope: "[" + strings.Join(v.requiredScope, ", ") + "]",
				reason: fmt.Sprintf("required scope %q not in the token's scope %v", r, scope)}
		}
	}
	return bearerToken{principal: principal, scope: scope, expiry: exp}, nil
}

// startOAuth builds the OAUTHBEARER validator when the mechanism is
// enabled. With a JWKS endpoint the key set is fetched once now; a failure
// is logged, not fatal (the identity provider may come up later: the
// periodic refresh and the first token with a kid retry it).
func (b *Broker) startOAuth() error {
	if !slices.Contains(b.cfg.SASLMechanisms, MechanismOAuthBearer) {
		return nil
	}
	o := b.cfg.OAuthBearer
	if o.JWKSEndpointURL == "" {
		b.oauth = newUnsecuredValidator(o)
		return nil
	}
	src, err := newJWKSSource(b.ctx, o, b.log)
	if err != nil {
		return err
	}
	if err := src.fetch(); err != nil {
		b.log.Warn("OAUTHBEARER: initial JWKS fetch failed; tokens are refused until it succeeds", "url", src.u.Redacted(), "err", err)
	}
	b.oauth = newSecuredValidator(o, src)
	return nil
}

// oauthKeys returns the JWKS source of the secured validator, if any.
func (b *Broker) oauthKeys() (*jwksSource, bool) {
	if v, ok := b.oauth.(*securedValidator); ok {
		src, ok := v.src.(*jwksSource)
		return src, ok
	}
	return nil, false
}
