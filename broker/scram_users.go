package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/stromhq/strom/raft"
)

// SCRAMUser is a SCRAM credential created when the broker starts and the
// user has none for the mechanism yet (`strom serve --add-scram`, the
// syntax of Kafka's `kafka-storage format --add-scram`). Either Password,
// or Salt and SaltedPassword, is set.
type SCRAMUser struct {
	// Mechanism is "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism string
	Name      string
	// Iterations defaults to 4096 when 0.
	Iterations     int
	Password       string
	Salt           []byte
	SaltedPassword []byte
}

// ParseSCRAMUser parses MECHANISM=[key=value,...] with the keys name
// (required), password, or salt and saltedpassword (base64), and
// iterations. A value may be wrapped in double quotes; as in Kafka, values
// cannot hold commas.
func ParseSCRAMUser(s string) (SCRAMUser, error) {
	var u SCRAMUser
	s = strings.TrimSpace(s)
	mech, conf, ok := strings.Cut(s, "=")
	if !ok {
		return u, fmt.Errorf("%w: no '=' in %q", ErrInvalidSCRAMUser, s)
	}
	if scramByName(mech) == nil {
		return u, fmt.Errorf("%w: mechanism %q (want SCRAM-SHA-256 or SCRAM-SHA-512)", ErrInvalidSCRAMUser, mech)
	}
	u.Mechanism = mech
	if len(conf) < 2 || conf[0] != '[' || conf[len(conf)-1] != ']' {
		return u, fmt.Errorf("%w: %q: want %s=[key=value,...]", ErrInvalidSCRAMUser, s, mech)
	}
	inner := conf[1 : len(conf)-1]
	seen := map[string]bool{}
	var saltStr, saltedStr string
	var hasName, hasPassword bool
	for _, item := range strings.Split(inner, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return u, fmt.Errorf("%w: no '=' in %q", ErrInvalidSCRAMUser, item)
		}
		k = strings.TrimSpace(k)
		if len(v) >= 2 && strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) {
			v = v[1 : len(v)-1]
		}
		if seen[k] {
			return u, fmt.Errorf("%w: %q given twice", ErrInvalidSCRAMUser, k)
		}
		seen[k] = true
		switch k {
		case "name":
			u.Name, hasName = v, true
		case "password":
			u.Password, hasPassword = v, true
		case "salt":
			saltStr = v
		case "saltedpassword":
			saltedStr = v
		case "iterations":
			n, err := strconv.Atoi(v)
			if err != nil {
				return u, fmt.Errorf("%w: iterations %q: %w", ErrInvalidSCRAMUser, v, err)
			}
			u.Iterations = n
		default:
			return u, fmt.Errorf("%w: unknown key %q", ErrInvalidSCRAMUser, k)
		}
	}
	if !hasName {
		return u, fmt.Errorf("%w: %q has no name", ErrInvalidSCRAMUser, s)
	}
	var err error
	if seen["salt"] {
		if u.Salt, err = base64.StdEncoding.DecodeString(saltStr); err != nil {
			return u, fmt.Errorf("%w: salt %q: %w", ErrInvalidSCRAMUser, saltStr, err)
		}
	}
	if seen["saltedpassword"] {
		if u.SaltedPassword, err = base64.StdEncoding.DecodeString(saltedStr); err != nil {
			return u, fmt.Errorf("%w: saltedpassword %q: %w", ErrInvalidSCRAMUser, saltedStr, err)
		}
	}
	if !hasPassword && !seen["saltedpassword"] {
		return u, fmt.Errorf("%w: %q needs password or saltedpassword", ErrInvalidSCRAMUser, s)
	}
	if hasPassword && seen["saltedpassword"] {
		return u, fmt.Errorf("%w: %q has both password and saltedpassword", ErrInvalidSCRAMUser, s)
	}
	if seen["saltedpassword"] && !seen["salt"] {
		return u, fmt.Errorf("%w: %q: saltedpassword needs salt", ErrInvalidSCRAMUser, s)
	}
	return u, u.validate()
}

// String formats u in ParseSCRAMUser's syntax with the secret hidden.
func (u SCRAMUser) String() string {
	return fmt.Sprintf("%s=[name=%s,iterations=%d,...]", u.Mechanism, u.Name, u.iterations())
}

func (u SCRAMUser) iterations() int {
	if u.Iterations == 0 {
		return scramDefaultIterations
	}
	return u.Iterations
}

func (u SCRAMUser) validate() error {
	m := scramByName(u.Mechanism)
	switch {
	case m == nil:
		return fmt.Errorf("%w: mechanism %q", ErrInvalidSCRAMUser, u.Mechanism)
	case u.Name == "":
		return fmt.Errorf("%w: empty user name", ErrInvalidSCRAMUser)
	case u.iterations() < scramMinIterations || u.iterations() > scramMaxIterations:
		return fmt.Errorf("%w: iterations %d outside [%d, %d]", ErrInvalidSCRAMUser, u.iterations(), scramMinIterations, scramMaxIterations)
	case u.SaltedPassword == nil && u.Password == "":
		return fmt.Errorf("%w: user %s: empty password", ErrInvalidSCRAMUser, u.Name)
	case u.SaltedPassword != nil && (len(u.Salt) == 0 || len(u.SaltedPassword) == 0):
		return fmt.Errorf("%w: user %s: empty salt or salted password", ErrInvalidSCRAMUser, u.Name)
	}
	return nil
}

// credential derives the stored form of u (a random salt when none given).
func (u SCRAMUser) credential() (raft.SCRAMCredential, error) {
	m := scramByName(u.Mechanism)
	salt := u.Salt
	if len(salt) == 0 {
		salt = make([]byte, 32)
		_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	}
	if u.SaltedPassword != nil {
		stored, server := m.keys(u.SaltedPassword)
		return raft.SCRAMCredential{Salt: salt, StoredKey: stored, ServerKey: server, Iterations: int32(u.iterations())}, nil
	}
	return m.credential(u.Password, salt, u.iterations())
}

// bootstrapSCRAM creates the configured SCRAMUsers that have no credential
// for their mechanism yet; existing ones are left alone, so a password
// changed with AlterUserScramCredentials survives restarts.
func (b *Broker) bootstrapSCRAM(ctx context.Context) error {
	for _, u := range b.cfg.SCRAMUsers {
		m := scramByName(u.Mechanism)
		if _, ok := b.node.State().SCRAM[raft.SCRAMKey{User: u.Name, Mechanism: m.code}]; ok {
			continue
		}
		cred, err := u.credential()
		if err != nil {
			return fmt.Errorf("bootstrap SCRAM credential %s: %w", u, err)
		}
		if _, err := b.node.Apply(ctx, raft.UpsertSCRAMCredential{User: u.Name, Mechanism: m.code, Salt: cred.Salt,
			StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: cred.Iterations}); err != nil {
			return fmt.Errorf("bootstrap SCRAM credential %s: %w", u, err)
		}
		b.log.Info("created SCRAM credential", "user", u.Name, "mechanism", u.Mechanism)
	}
	return nil
}
