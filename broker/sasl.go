package broker

// SaslHandshake, versions 0-1, and SaslAuthenticate, versions 0-2: SASL
// authentication on SASL_PLAINTEXT and SASL_SSL listeners (KIP-43, KIP-152),
// with the mechanisms PLAIN (verified against the user's SCRAM credential,
// so one user database serves both), SCRAM-SHA-256 and SCRAM-SHA-512
// (scram.go) and OAUTHBEARER (oauth.go), as enabled by
// Config.SASLMechanisms.
//
// As in Kafka's SaslServerAuthenticator, a connection to a SASL listener
// first sends at most one ApiVersions, then SaslHandshake; after handshake
// v1 it sends SaslAuthenticate requests until the exchange ends, after
// handshake v0 the exchange's tokens as bare size-prefixed frames without
// Kafka headers (clients before KIP-152). Any other request before the
// exchange succeeded closes the connection without an answer. A failed
// exchange is answered SASL_AUTHENTICATION_FAILED with a message and then
// the connection is closed (with v0 framing it is closed without an
// answer); an unknown or disabled mechanism is answered
// UNSUPPORTED_SASL_MECHANISM with the enabled list, then closed. Until it
// is authenticated a connection's frames are limited to 512 KiB (Kafka's
// sasl.server.max.receive.size).
//
// Re-authentication (KIP-368): the successful SaslAuthenticate carries the
// session lifetime, Config.ConnectionsMaxReauth capped by the expiry of an
// OAUTHBEARER token (the token's lifetime alone when the config is 0; 0,
// no limit, for PLAIN and SCRAM then), computed as Kafka does. Once the
// session has expired, any request but SaslHandshake closes the
// connection. A connection whose session has an expiry may
// re-authenticate, at most once a second, by sending SaslHandshake and
// SaslAuthenticate again on the same connection; requests read before the
// handshake are answered in order as usual, and until the exchange ends
// only SaslAuthenticate may come. The mechanism and the principal must not
// change (Kafka's messages); a failed re-authentication closes the
// connection.
//
// On a listener without SASL, or after a successful exchange (outside a
// re-authentication), both requests are answered ILLEGAL_SASL_STATE, as
// Kafka's request handler does.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.SASLHandshakeRequest{}, 0, 1, (*Broker).handleSASLHandshake)
	register(&kmsg.SASLAuthenticateRequest{}, 0, 2, (*Broker).handleSASLAuthenticate)
}

// SASL mechanism names.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// minReauthInterval is the least time between two re-authentications of a
// connection (Kafka's MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS).
const minReauthInterval = time.Second

// saslMaxReceive bounds the frames of a connection that has not
// authenticated yet (sasl.server.max.receive.size).
const saslMaxReceive = 512 << 10

// saslState is where a connection is in its SASL exchange.
type saslState uint8

const (
	// saslOff: the listener does not use SASL.
	saslOff saslState = iota
	// saslStart: ApiVersions (once) or SaslHandshake may come.
	saslStart
	// saslHandshake: ApiVersions was answered; SaslHandshake must come.
	saslHandshake
	// saslAuthenticate: handshake v1 done; SaslAuthenticate requests carry
	// the exchange.
	saslAuthenticate
	// saslRawTokens: handshake v0 done; the exchange's tokens come as bare
	// frames.
	saslRawTokens
	// saslDone: authenticated; every request is served.
	saslDone
)

// authenticated reports whether the connection may send any request.
func (s saslState) authenticated() bool { return s == saslOff || s == saslDone }

// admits reports whether a request with API key key may come in state s;
// any other closes the connection.
func (s saslState) admits(key int16) bool {
	switch s {
	case saslStart:
		return key == apiVersionsKey || key == saslHandshakeKey
	case saslHandshake:
		return key == saslHandshakeKey
	case saslAuthenticate:
		return key == saslAuthenticateKey
	case saslRawTokens:
		return false
	}
	return true
}

const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

// saslServer is the server side of one mechanism's exchange. next takes the
// client's next message and returns the server's answer; done is set on
// the message that authenticated the client, after which user is valid. An
// error ends the exchange: a saslFailure's text may be shown to the
// client, any other error gets the generic message.
type saslServer interface {
	next(msg []byte) (out []byte, done bool, err error)
	user() string
	mechanism() string
}

// saslFailure is an authentication failure whose text is safe to show to
// the client (it leaks nothing about which users exist).
type saslFailure struct{ msg string }

func (f saslFailure) Error() string { return f.msg }

// Unwrap makes every saslFailure match ErrAuthentication.
func (f saslFailure) Unwrap() error { return ErrAuthentication }

// saslClientMessage is the error message a failed exchange sends: the
// failure's own text when it is safe, else Kafka's generic one.
func saslClientMessage(mechanism string, err error) string {
	var f saslFailure
	if errors.As(err, &f) {
		return f.msg
	}
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
}

// saslConn is a connection's SASL progress; only the read loop touches it.
type saslConn struct {
	state  saslState
	server saslServer // the exchange in progress (saslAuthenticate, saslRawTokens)
	// mechanism is the mechanism of the last successful exchange.
	mechanism string
	// expiry is when the session ends (KIP-368); zero: never.
	expiry time.Time
	// reauthStart is when the last re-authentication began; Kafka allows
	// one a second.
	reauthStart time.Time
	// reauth is set while a re-authentication runs (state
	// saslAuthenticate after saslDone).
	reauth bool
}

// credentialExpirer is a saslServer whose credential expires (Kafka's
// CREDENTIAL.LIFETIME.MS negotiated property): OAUTHBEARER.
type credentialExpirer interface {
	credentialExpiry() (time.Time, bool)
}

// sessionLifetime is the session lifetime of a completed exchange, as
// Kafka's SaslServerAuthenticator computes it: the max reauth time capped
// by the credential's expiry, either alone when the other is unset, 0 (no
// expiry) when both are.
func sessionLifetime(srv saslServer, maxReauth time.Duration, now time.Time) (lifetime time.Duration, expires bool) {
	var credLeft time.Duration
	hasCred := false
	if ce, ok := srv.(credentialExpirer); ok {
		if exp, ok := ce.credentialExpiry(); ok {
			credLeft, hasCred = exp.Sub(now), true
		}
	}
	switch {
	case hasCred && maxReauth > 0:
		lifetime = min(credLeft, maxReauth)
	case hasCred:
		lifetime = credLeft
	case maxReauth > 0:
		lifetime = maxReauth
	default:
		return 0, false
	}
	return max(lifetime, 0), true
}

// sessionExpired returns an error when the connection's SASL session has
// expired and the request (API key) is not the SaslHandshake that begins a
// re-authentication: Kafka then closes the connection.
func (c *conn) sessionExpired(key int16) error {
	if err := c.tokenGone(key); err != nil {
		return err
	}
	if c.sasl.expiry.IsZero() || c.sasl.state != saslDone || key == saslHandshakeKey || !time.Now().After(c.sasl.expiry) {
		return nil
	}
	return fmt.Errorf("%w: %s after the SASL session of %s expired at %s", ErrSessionExpired, kmsg.NameForKey(key), c.principal, c.sasl.expiry.Format(time.RFC3339Nano))
}

// failingServer is the exchange of a re-authentication that asked for
// another mechanism: its first message fails, with Kafka's message.
type failingServer struct{ mech, msg string }

func (s failingServer) next([]byte) ([]byte, bool, error) { return nil, false, saslFailure{s.msg} }
func (s failingServer) user() string                      { return "" }
func (s failingServer) mechanism() string                 { return s.mech }

// newSASLServer starts an exchange of an enabled mechanism; nil when the
// mechanism is unknown or not enabled.
func (b *Broker) newSASLServer(mechanism string) saslServer {
	if !slices.Contains(b.cfg.SASLMechanisms, mechanism) {
		return nil
	}
	if mechanism == MechanismPlain {
		return &plainServer{b: b}
	}
	if m := scramByName(mechanism); m != nil {
		return &scramServer{mech: m, lookup: b.scramCredential, fake: b.fakeSCRAMCredential, token: b.tokenCredential}
	}
	if mechanism == MechanismOAuthBearer && b.oauth != nil {
		return &oauthServer{validator: b.oauth, now: time.Now}
	}
	return nil
}

// scramCredential looks a user's credential up in the current raft state.
func (b *Broker) scramCredential(user string, m *scramMechanism) (raft.SCRAMCredential, bool) {
	c, ok := b.node.State().SCRAM[raft.SCRAMKey{User: user, Mechanism: m.code}]
	return c, ok
}

// fakeSCRAMCredential is the credential an unknown user is challenged
// with: derived from the broker's random secret and the name, so the salt
// a prober sees for a name never changes while the broker runs, and no
// proof matches its keys.
func (b *Broker) fakeSCRAMCredential(user string, m *scramMechanism) raft.SCRAMCredential {
	derive := func(label string, n int) []byte {
		h := hmac.New(sha256.New, b.authSecret[:])
		fmt.Fprintf(h, "%s\x00%s\x00%s", label, m.name, user)
		out := h.Sum(nil)
		for len(out) < n {
			out = append(out, out...)
		}
		return out[:n]
	}
	return raft.SCRAMCredential{Salt: derive("salt", 16), StoredKey: derive("stored", m.size),
		ServerKey: derive("server", m.size), Iterations: scramDefaultIterations}
}

// newAuthSecret returns the per-broker secret of fakeSCRAMCredential.
func newAuthSecret() (s [32]byte) {
	_, _ = rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}

// authenticated records a successful exchange: the connection now acts as
// the SASL user until the session lifetime it returns has passed (0 and
// zero expiry: no limit). A re-authentication must keep the principal;
// otherwise it fails with Kafka's message. Called on the read loop.
func (c *conn) authenticated(srv saslServer) (time.Duration, error) {
	principal := "User:" + srv.user()
	if c.sasl.reauth && principal != c.principal {
		return 0, saslFailure{fmt.Sprintf("Cannot change principals during re-authentication from %s: %s",
			kafkaPrincipalText(c.principal), kafkaPrincipalText(principal))}
	}
	now := time.Now()
	lifetime, expires := sessionLifetime(srv, c.b.cfg.ConnectionsMaxReauth, now)
	var expiry time.Time
	if expires {
		expiry = now.Add(lifetime)
	}
	c.log.Debug("authenticated", "mechanism", srv.mechanism(), "principal", principal, "reauthentication", c.sasl.reauth, "session_lifetime", lifetime)
	if c.sasl.reauth {
		c.b.reauthentications.Add(1)
	}
	if c.principal != principal {
		// Not rewritten on re-authentication: other goroutines (tests,
		// admin views) may read it.
		c.principal = principal
	}
	c.sasl = saslConn{state: saslDone, mechanism: srv.mechanism(), expiry: expiry, reauthStart: c.sasl.reauthStart}
	c.tokenID = ""
	if tl, ok := srv.(interface{ tokenLogin() (string, bool) }); ok {
		c.tokenID, _ = tl.tokenLogin()
	}
	return lifetime, nil
}

// kafkaPrincipalText writes "User:alice" as Kafka's re-authentication
// message does: "User.alice".
func kafkaPrincipalText(p string) string {
	typ, name, _ := strings.Cut(p, ":")
	return typ + "." + name
}

// authFailed logs a failed exchange (Kafka logs these at info: they are
// what an operator looks for when a client cannot connect) and drops it;
// the caller closes the connection.
func (c *conn) authFailed(srv saslServer, err error) {
	c.log.Info("failed authentication", "mechanism", srv.mechanism(), "host", c.host, "err", err)
	c.sasl.server = nil
}

func (b *Broker) handleSASLHandshake(rq *request, req *kmsg.SASLHandshakeRequest) reply {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = slices.Clone(b.cfg.SASLMechanisms)
	c := rq.c
	// As Kafka: a session without expiry cannot re-authenticate, nor can
	// one whose last re-authentication began less than a second ago; the
	// handshake is then an ordinary request in the wrong state.
	reauth := c.sasl.state == saslDone && !c.sasl.expiry.IsZero() && time.Since(c.sasl.reauthStart) >= minReauthInterval
	if c.sasl.state != saslStart && c.sasl.state != saslHandshake && !reauth {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return now(resp)
	}
	srv := b.newSASLServer(req.Mechanism)
	if reauth && srv != nil && req.Mechanism != c.sasl.mechanism {
		// As Kafka: the handshake succeeds, the exchange then fails.
		srv = failingServer{mech: req.Mechanism, msg: fmt.Sprintf("SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'",
			req.Mechanism, c.sasl.mechanism)}
	}
	if srv == nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.log.Info("failed authentication: unsupported SASL mechanism", "mechanism", req.Mechanism, "host", c.host)
		rep := now(resp)
		rep.closeConn = true
		return rep
	}
	c.sasl.server = srv
	c.sasl.reauth = reauth
	if reauth {
		c.sasl.reauthStart = time.Now()
	}
	if req.Version == 0 {
		c.sasl.state = saslRawTokens
	} else {
		c.sasl.state = saslAuthenticate
	}
	return now(resp)
}

func (b *Broker) handleSASLAuthenticate(rq *request, req *kmsg.SASLAuthenticateRequest) reply {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := rq.c
	if c.sasl.state != saslAuthenticate {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate request received after successful authentication"
		if c.sasl.state == saslOff {
			msg = "SaslAuthenticate request received on a listener without SASL"
		}
		resp.ErrorMessage = &msg
		return now(resp)
	}
	srv := c.sasl.server
	fail := func(err error) reply {
		c.authFailed(srv, err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := saslClientMessage(srv.mechanism(), err)
		if c.sasl.reauth {
			msg = saslClientReauthMessage(srv.mechanism(), err)
		}
		resp.ErrorMessage = &msg
		rep := now(resp)
		rep.closeConn = true
		return rep
	}
	out, done, err := srv.next(req.SASLAuthBytes)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		out = []byte{}
	}
	resp.SASLAuthBytes = out
	if done {
		lifetime, err := c.authenticated(srv)
		if err != nil {
			return fail(err)
		}
		resp.SessionLifetimeMillis = lifetime.Milliseconds()
	}
	return now(resp)
}

// saslClientReauthMessage is saslClientMessage for a failed
// re-authentication (Kafka names it so in its generic message).
func saslClientReauthMessage(mechanism string, err error) string {
	var f saslFailure
	if errors.As(err, &f) {
		return f.msg
	}
	return "Authentication failed during re-authentication due to invalid credentials with SASL mechanism " + mechanism
}

// handleRawToken runs one step of an exchange begun with handshake v0: the
// frame is the client's token and the answer a bare frame. A failure closes
// the connection without an answer, as in Kafka.
func (c *conn) handleRawToken(token []byte) (pending, error) {
	srv := c.sasl.server
	out, done, err := srv.next(token)
	if err != nil {
		c.authFailed(srv, err)
		return pending{}, fmt.Errorf("sasl %s (handshake v0): %w", srv.mechanism(), err)
	}
	if done {
		if _, err := c.authenticated(srv); err != nil {
			c.authFailed(srv, err)
			return pending{}, fmt.Errorf("sasl %s (handshake v0): %w", srv.mechanism(), err)
		}
	}
	if out == nil {
		out = []byte{}
	}
	return pending{rep: reply{token: out}}, nil
}

// plainServer is a SASL/PLAIN exchange (RFC 4616): one message, authzid NUL
// authcid NUL passwd. The password is checked against the user's SCRAM
// credential (SCRAM-SHA-256 when the user has one, else SCRAM-SHA-512) by
// deriving the salted password from the stored salt and iterations and
// comparing StoredKey; an unknown user costs the same derivation against a
// fake credential.
type plainServer struct {
	b        *Broker
	userName string
	ended    bool
}

func (s *plainServer) mechanism() string { return MechanismPlain }

func (s *plainServer) user() string { return s.userName }

// parsePlainMessage splits a PLAIN message into its three fields; the
// message must hold exactly two NULs.
func parsePlainMessage(msg []byte) (authzid, user, password string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: invalid SASL/PLAIN message: %d fields, want 3", ErrAuthentication, len(parts))
	}
	if len(parts[1]) == 0 {
		return "", "", "", fmt.Errorf("%w: SASL/PLAIN username not specified", ErrAuthentication)
	}
	if len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: SASL/PLAIN password not specified", ErrAuthentication)
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

func (s *plainServer) next(msg []byte) ([]byte, bool, error) {
	if s.ended {
		return nil, false, fmt.Errorf("%w: PLAIN exchange already ended", ErrAuthentication)
	}
	s.ended = true
	authzid, user, password, err := parsePlainMessage(msg)
	if err != nil {
		return nil, false, err
	}
	m := scramSHA256
	cred, known := s.b.scramCredential(user, m)
	if !known {
		m = scramSHA512
		if cred, known = s.b.scramCredential(user, m); !known {
			m = scramSHA256
			cred = s.b.fakeSCRAMCredential(user, m)
		}
	}
	salted, err := m.saltedPassword(password, cred.Salt, int(cred.Iterations))
	if err != nil {
		return nil, false, err
	}
	stored, _ := m.keys(salted)
	if subtle.ConstantTimeCompare(stored, cred.StoredKey) != 1 || !known {
		return nil, false, saslFailure{"Authentication failed: Invalid username or password"}
	}
	if authzid != "" && authzid != user {
		return nil, false, saslFailure{"Authentication failed: Client requested an authorization id that is different from username"}
	}
	s.userName = user
	return []byte{}, true, nil
}
