package broker

// SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server
// side, as Kafka's ScramSaslServer serves them, against the credentials in
// the raft state (raft.State.SCRAM: salt, iterations, StoredKey, ServerKey;
// never a password).
//
// Differences from Apache Kafka:
//   - An unknown user is not refused at the client-first message (Kafka
//     answers "Invalid user credentials" there, which tells a prober the
//     user does not exist). The exchange goes on with a fake credential
//     derived from a per-broker secret and the user name, so the same name
//     always sees the same salt, and fails at the proof exactly as a wrong
//     password does. The fake shows 4096 iterations (the kafka-configs.sh
//     default), so a real user created with other iterations remains
//     distinguishable by them.
//   - The channel binding of the client-final message must be the base64 of
//     the gs2 header the client sent first (RFC 5802 section 5.1; Kafka does
//     not check it). Every client sends it so.
//   - A mandatory extension ("m=") fails the exchange, as the RFC says;
//     Kafka ignores it.
//   - The auth message is built from the messages as received, not
//     re-assembled from their parsed fields.
//   - With the extension tokenauth=true the user name is a delegation token
//     id and the credential derives from the token's HMAC (tokens.go).
//   - User names may be any UTF-8 without NUL, not only ASCII.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stromhq/strom/raft"
)

// scramMechanism is one SCRAM hash family.
type scramMechanism struct {
	name string // SASL mechanism name, e.g. "SCRAM-SHA-256"
	code raft.SCRAMMechanism
	hash func() hash.Hash
	size int // hash output size: the length of keys and proofs
}

var (
	scramSHA256 = &scramMechanism{name: "SCRAM-SHA-256", code: raft.SCRAMSHA256, hash: sha256.New, size: sha256.Size}
	scramSHA512 = &scramMechanism{name: "SCRAM-SHA-512", code: raft.SCRAMSHA512, hash: sha512.New, size: sha512.Size}
)

// scramByName returns the mechanism of a SASL mechanism name, or nil.
func scramByName(name string) *scramMechanism {
	switch name {
	case scramSHA256.name:
		return scramSHA256
	case scramSHA512.name:
		return scramSHA512
	}
	return nil
}

// scramByCode returns the mechanism of Kafka's ScramMechanism code (1 or 2),
// or nil.
func scramByCode(code int8) *scramMechanism {
	switch raft.SCRAMMechanism(code) {
	case raft.SCRAMSHA256:
		return scramSHA256
	case raft.SCRAMSHA512:
		return scramSHA512
	}
	return nil
}

// Kafka's bounds on SCRAM iterations (ScramMechanism.minIterations and
// ScramControlManager.MAX_ITERATIONS); the default is kafka-configs.sh's.
const (
	scramMinIterations     = 4096
	scramMaxIterations     = 16384
	scramDefaultIterations = 4096
)

func (m *scramMechanism) hmac(key []byte, msg string) []byte {
	h := hmac.New(m.hash, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func (m *scramMechanism) digest(b []byte) []byte {
	h := m.hash()
	h.Write(b)
	return h.Sum(nil)
}

// saltedPassword is RFC 5802's Hi(password, salt, i): PBKDF2 with HMAC over
// the mechanism's hash.
func (m *scramMechanism) saltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	k, err := pbkdf2.Key(m.hash, password, salt, iterations, m.size)
	if err != nil {
		return nil, fmt.Errorf("derive %s salted password: %w", m.name, err)
	}
	return k, nil
}

// keys derives StoredKey and ServerKey from a salted password; the broker
// keeps only these (AlterUserScramCredentials sends the salted password).
func (m *scramMechanism) keys(salted []byte) (storedKey, serverKey []byte) {
	clientKey := m.hmac(salted, "Client Key")
	return m.digest(clientKey), m.hmac(salted, "Server Key")
}

// credential derives a complete credential from a password.
func (m *scramMechanism) credential(password string, salt []byte, iterations int) (raft.SCRAMCredential, error) {
	salted, err := m.saltedPassword(password, salt, iterations)
	if err != nil {
		return raft.SCRAMCredential{}, err
	}
	stored, server := m.keys(salted)
	return raft.SCRAMCredential{Salt: salt, StoredKey: stored, ServerKey: server, Iterations: int32(iterations)}, nil
}

// scramClientFirst is a parsed client-first-message:
//
//	gs2-header [reserved-mext ","] username "," nonce ["," extensions]
//
// with gs2-header = "n," [ "a=" saslname ] ",".
type scramClientFirst struct {
	gs2Header  string            // as received, e.g. "n,,"; the channel binding must repeat it
	authzid    string            // decoded; "" when absent
	user       string            // decoded saslname
	nonce      string            // the client's nonce
	extensions map[string]string // "key=value" attributes after the nonce
	bare       string            // client-first-message-bare as received (for the auth message)
}

// scramClientFinal is a parsed client-final-message:
//
//	channel-binding "," nonce ["," extensions] "," proof
type scramClientFinal struct {
	channelBinding []byte // decoded c=
	nonce          string
	proof          []byte // decoded p=
	withoutProof   string // the message up to ",p=" (for the auth message)
}

// decodeSASLName undoes RFC 5802's saslname escaping ("=2C" is ',' and
// "=3D" is '='); any other '=' and any ',' are invalid, as are NUL, an
// empty name and invalid UTF-8.
func decodeSASLName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty name", errSCRAMFormat)
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, ",\x00") {
		return "", fmt.Errorf("%w: invalid name %q", errSCRAMFormat, s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in name %q", errSCRAMFormat, s)
		}
		i += 2
	}
	return b.String(), nil
}

// encodeSASLName escapes a user name for a SCRAM message.
func encodeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// validNonce reports whether s is RFC 5802's printable: 0x21-0x7E except
// ',', at least one character.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// parseSCRAMExtensions parses "key=value" attributes: keys are letters,
// values non-empty without ',' or NUL; a repeated key is invalid.
func parseSCRAMExtensions(attrs []string) (map[string]string, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(attrs))
	for _, a := range attrs {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: bad extension %q", errSCRAMFormat, a)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i] | 0x20; c < 'a' || c > 'z' {
				return nil, fmt.Errorf("%w: bad extension name %q", errSCRAMFormat, k)
			}
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: extension %q twice", errSCRAMFormat, k)
		}
		out[k] = v
	}
	return out, nil
}

// parseSCRAMClientFirst parses a client-first-message. Only gs2 flag "n"
// (no channel binding) is accepted, as in Kafka.
func parseSCRAMClientFirst(msg []byte) (scramClientFirst, error) {
	var m scramClientFirst
	s := string(msg)
	if !utf8.ValidString(s) {
		return m, fmt.Errorf("%w: client-first message is not UTF-8", errSCRAMFormat)
	}
	rest, ok := strings.CutPrefix(s, "n,")
	if !ok {
		return m, fmt.Errorf("%w: client-first message must start with gs2 flag \"n,\"", errSCRAMFormat)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return m, fmt.Errorf("%w: client-first message without gs2 header end", errSCRAMFormat)
	}
	if authz != "" {
		name, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return m, fmt.Errorf("%w: bad authzid %q", errSCRAMFormat, authz)
		}
		var err error
		if m.authzid, err = decodeSASLName(name); err != nil {
			return m, err
		}
	}
	m.gs2Header = s[:len(s)-len(bare)]
	m.bare = bare
	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return m, fmt.Errorf("%w: mandatory extension %q not supported", errSCRAMFormat, attrs[0])
	}
	if len(attrs) < 2 {
		return m, fmt.Errorf("%w: client-first message needs n= and r=", errSCRAMFormat)
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return m, fmt.Errorf("%w: client-first message without n=", errSCRAMFormat)
	}
	var err error
	if m.user, err = decodeSASLName(name); err != nil {
		return m, err
	}
	if m.nonce, ok = strings.CutPrefix(attrs[1], "r="); !ok || !validNonce(m.nonce) {
		return m, fmt.Errorf("%w: client-first message without a valid r=", errSCRAMFormat)
	}
	if m.extensions, err = parseSCRAMExtensions(attrs[2:]); err != nil {
		return m, err
	}
	return m, nil
}

// decodeBase64 decodes RFC 5802's base64: padded standard encoding and
// nothing else (encoding/base64 skips line breaks even in strict mode).
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: line break in base64", errSCRAMFormat)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSCRAMFormat, err)
	}
	return b, nil
}

// parseSCRAMClientFinal parses a client-final-message.
func parseSCRAMClientFinal(msg []byte) (scramClientFinal, error) {
	var m scramClientFinal
	s := string(msg)
	if !utf8.ValidString(s) {
		return m, fmt.Errorf("%w: client-final message is not UTF-8", errSCRAMFormat)
	}
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return m, fmt.Errorf("%w: client-final message without p=", errSCRAMFormat)
	}
	m.withoutProof = s[:i]
	proof, err := decodeBase64(s[i+3:])
	if err != nil || len(proof) == 0 {
		return m, fmt.Errorf("%w: client-final message proof is not base64", errSCRAMFormat)
	}
	m.proof = proof
	attrs := strings.Split(m.withoutProof, ",")
	if len(attrs) < 2 {
		return m, fmt.Errorf("%w: client-final message needs c=, r= and p=", errSCRAMFormat)
	}
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return m, fmt.Errorf("%w: client-final message without c=", errSCRAMFormat)
	}
	if m.channelBinding, err = decodeBase64(cb); err != nil {
		return m, fmt.Errorf("%w: client-final channel binding is not base64", errSCRAMFormat)
	}
	if m.nonce, ok = strings.CutPrefix(attrs[1], "r="); !ok || !validNonce(m.nonce) {
		return m, fmt.Errorf("%w: client-final message without a valid r=", errSCRAMFormat)
	}
	if _, err := parseSCRAMExtensions(attrs[2:]); err != nil {
		return m, err
	}
	return m, nil
}

// scramServerFirst formats the server-first-message.
func scramServerFirst(nonce string, salt []byte, iterations int32) string {
	return "r=" + nonce + ",s=" + base64.StdEncoding.EncodeToString(salt) + ",i=" + strconv.Itoa(int(iterations))
}

// scramNonce returns a fresh server nonce: 24 printable characters from 18
// random bytes.
func scramNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// scramLookup finds a user's credential for a mechanism; ok is false for an
// unknown user.
type scramLookup func(user string, m *scramMechanism) (cred raft.SCRAMCredential, ok bool)

// scramServer is one SCRAM exchange; it implements saslServer. Owned by the
// connection's read loop.
type scramServer struct {
	mech   *scramMechanism
	lookup scramLookup
	// fake derives the credential presented for unknown users.
	fake func(user string, m *scramMechanism) raft.SCRAMCredential
	// token finds the credential of a delegation token (tokenauth=true);
	// nil refuses token logins.
	token func(tokenID string, m *scramMechanism) (raft.SCRAMCredential, raft.DelegationToken, bool)
	// isToken is set when the exchange authenticates a delegation token;
	// tok is the token then (when known).
	isToken bool
	tok     raft.DelegationToken

	step       int // 0: expect client-first; 1: expect client-final; 2: done or failed
	first      scramClientFirst
	cred       raft.SCRAMCredential
	known      bool   // cred is the user's real credential
	nonce      string // client nonce + server nonce
	serverMsg1 string // the server-first-message sent
	userName   string
}

func (s *scramServer) mechanism() string { return s.mech.name }

func (s *scramServer) user() string { return s.userName }

// tokenAuthenticated reports whether the exchange logged in with a
// delegation token (Kafka's KafkaPrincipal.tokenAuthenticated).
func (s *scramServer) tokenAuthenticated() bool { return s.isToken && s.userName != "" }

// tokenLogin returns the id of the delegation token the exchange logged in
// with.
func (s *scramServer) tokenLogin() (string, bool) {
	if !s.tokenAuthenticated() {
		return "", false
	}
	return s.tok.TokenID, true
}

// credentialExpiry implements credentialExpirer: a token login's session
// ends when the token expires, as Kafka's ScramSaslServer reports the
// token expiry as the credential lifetime.
func (s *scramServer) credentialExpiry() (time.Time, bool) {
	if !s.tokenAuthenticated() {
		return time.Time{}, false
	}
	return time.UnixMilli(s.tok.ExpiryMs), true
}

// next implements saslServer.
func (s *scramServer) next(msg []byte) (out []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step = 2 // until this message is accepted
		first, err := parseSCRAMClientFirst(msg)
		if err != nil {
			return nil, false, err
		}
		if first.authzid != "" && first.authzid != first.user {
			return nil, false, saslFailure{"Authentication failed: Client requested an authorization id that is different from username"}
		}
		s.isToken = strings.EqualFold(first.extensions["tokenauth"], "true")
		if s.isToken && s.token == nil {
			return nil, false, fmt.Errorf("%w: delegation tokens are not supported", ErrAuthentication)
		}
		s.first = first
		if s.isToken {
			s.cred, s.tok, s.known = s.token(first.user, s.mech)
		} else {
			s.cred, s.known = s.lookup(first.user, s.mech)
		}
		if !s.known {
			s.cred = s.fake(first.user, s.mech)
		}
		s.nonce = first.nonce + scramNonce()
		s.serverMsg1 = scramServerFirst(s.nonce, s.cred.Salt, s.cred.Iterations)
		s.step = 1
		return []byte(s.serverMsg1), false, nil
	case 1:
		s.step = 2
		final, err := parseSCRAMClientFinal(msg)
		if err != nil {
			return nil, false, err
		}
		if final.nonce != s.nonce {
			return nil, false, fmt.Errorf("%w: nonce of the client-final message differs", ErrAuthentication)
		}
		if string(final.channelBinding) != s.first.gs2Header {
			return nil, false, fmt.Errorf("%w: channel binding does not repeat the gs2 header", ErrAuthentication)
		}
		if len(final.proof) != s.mech.size {
			return nil, false, fmt.Errorf("%w: proof of %d bytes", ErrAuthentication, len(final.proof))
		}
		authMsg := s.first.bare + "," + s.serverMsg1 + "," + final.withoutProof
		sig := s.mech.hmac(s.cred.StoredKey, authMsg)
		clientKey := make([]byte, len(sig))
		subtle.XORBytes(clientKey, final.proof, sig)
		ok := subtle.ConstantTimeCompare(s.mech.digest(clientKey), s.cred.StoredKey) == 1
		if !ok || !s.known {
			return nil, false, fmt.Errorf("%w: invalid client proof for user %q", ErrAuthentication, s.first.user)
		}
		s.userName = s.first.user
		if s.isToken {
			_, s.userName = splitPrincipal(s.tok.Owner)
		}
		return []byte("v=" + base64.StdEncoding.EncodeToString(s.mech.hmac(s.cred.ServerKey, authMsg))), true, nil
	default:
		return nil, false, fmt.Errorf("%w: SCRAM exchange already ended", ErrAuthentication)
	}
}
