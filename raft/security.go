package raft

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// ACL is one Kafka ACL binding. The numeric fields use Kafka's codes
// (kmsg.ACLResourceType, ACLResourcePatternType, ACLOperation,
// ACLPermissionType); a stored binding is always concrete, never a filter:
// no UNKNOWN, ANY or MATCH values. ACL is comparable and is its own key in
// State.ACLs.
type ACL struct {
	ResourceType int8 // TOPIC 2, GROUP 3, CLUSTER 4, TRANSACTIONAL_ID 5, DELEGATION_TOKEN 6, USER 7
	ResourceName string
	PatternType  int8   // LITERAL 3, PREFIXED 4
	Principal    string // e.g. "User:alice"
	Host         string // "*" or an address
	Operation    int8   // ALL 2 .. DESCRIBE_TOKENS 14
	Permission   int8   // DENY 2, ALLOW 3
}

func (a ACL) validate() error {
	switch {
	case a.ResourceType < 2 || a.ResourceType > 7,
		a.PatternType != 3 && a.PatternType != 4,
		a.Operation < 2 || a.Operation > 14,
		a.Permission != 2 && a.Permission != 3,
		a.ResourceName == "", a.Principal == "", a.Host == "":
		return invalid("acl %+v", a)
	}
	return nil
}

func compareACL(a, b ACL) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// SortedACLs returns all ACL bindings in a stable order (a fresh slice).
func (s *State) SortedACLs() []ACL {
	return slices.SortedFunc(maps.Keys(s.ACLs), compareACL)
}

func encodeACL(e *encoder, a ACL) {
	e.u8(uint8(a.ResourceType))
	e.str(a.ResourceName)
	e.u8(uint8(a.PatternType))
	e.str(a.Principal)
	e.str(a.Host)
	e.u8(uint8(a.Operation))
	e.u8(uint8(a.Permission))
}

func decodeACL(d *decoder) ACL {
	return ACL{ResourceType: int8(d.u8()), ResourceName: d.str(), PatternType: int8(d.u8()), Principal: d.str(),
		Host: d.str(), Operation: int8(d.u8()), Permission: int8(d.u8())}
}

// minACLSize is the fewest bytes an encoded ACL takes.
const minACLSize = 7

func encodeACLs(e *encoder, acls []ACL) {
	e.uvarint(uint64(len(acls)))
	for _, a := range acls {
		encodeACL(e, a)
	}
}

func decodeACLs(d *decoder) []ACL {
	n := d.count(minACLSize)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]ACL, n)
	for i := range out {
		out[i] = decodeACL(d)
	}
	return out
}

// CreateACLs adds bindings; existing ones are left as they are, so the
// command is idempotent. All bindings are validated before any is added.
type CreateACLs struct {
	ACLs []ACL
}

// DeleteACLs removes exactly the given bindings; absent ones are ignored.
// The proposer resolves Kafka's delete filters against the state it sees
// and lists the matches, which keeps apply deterministic and idempotent.
type DeleteACLs struct {
	ACLs []ACL
}

// Type implements Command.
func (CreateACLs) Type() CommandType { return CmdCreateACLs }

// Type implements Command.
func (DeleteACLs) Type() CommandType { return CmdDeleteACLs }

func (c CreateACLs) encode(e *encoder) { encodeACLs(e, c.ACLs) }
func (c DeleteACLs) encode(e *encoder) { encodeACLs(e, c.ACLs) }

func decodeCreateACLs(d *decoder) Command { return CreateACLs{ACLs: decodeACLs(d)} }
func decodeDeleteACLs(d *decoder) Command { return DeleteACLs{ACLs: decodeACLs(d)} }

func (c CreateACLs) apply(t *txn, _ uint64) (Result, error) {
	for _, a := range c.ACLs {
		if err := a.validate(); err != nil {
			return Result{}, err
		}
	}
	for _, a := range c.ACLs {
		if _, ok := t.s.ACLs[a]; !ok {
			t.acls()[a] = struct{}{}
		}
	}
	return Result{}, nil
}

func (c DeleteACLs) apply(t *txn, _ uint64) (Result, error) {
	for _, a := range c.ACLs {
		if _, ok := t.s.ACLs[a]; ok {
			delete(t.acls(), a)
		}
	}
	return Result{}, nil
}

// SCRAMMechanism is Kafka's ScramMechanism code.
type SCRAMMechanism int8

// SCRAM mechanisms.
const (
	SCRAMSHA256 SCRAMMechanism = 1
	SCRAMSHA512 SCRAMMechanism = 2
)

// keyLen is the length of StoredKey and ServerKey for the mechanism's hash.
func (m SCRAMMechanism) keyLen() int {
	switch m {
	case SCRAMSHA256:
		return 32
	case SCRAMSHA512:
		return 64
	default:
		return 0
	}
}

// Kafka's bounds on SCRAM iterations.
const (
	minSCRAMIterations = 4096
	maxSCRAMIterations = 16384
)

// SCRAMKey names one credential: a user has at most one per mechanism.
type SCRAMKey struct {
	User      string
	Mechanism SCRAMMechanism
}

// SCRAMCredential is what the broker needs to verify a SCRAM login (RFC
// 5802): never the password, only the salt and the derived keys. The byte
// slices are shared by every State version and must not be modified.
type SCRAMCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// UpsertSCRAMCredential sets a user's credential for one mechanism
// (Kafka's AlterUserScramCredentials upsertion); setting the same value
// again changes nothing.
type UpsertSCRAMCredential struct {
	User       string
	Mechanism  SCRAMMechanism
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// DeleteSCRAMCredential removes a user's credential for one mechanism;
// removing one that does not exist fails with ErrUnknownSCRAMCredential.
type DeleteSCRAMCredential struct {
	User      string
	Mechanism SCRAMMechanism
}

// Type implements Command.
func (UpsertSCRAMCredential) Type() CommandType { return CmdUpsertSCRAMCredential }

// Type implements Command.
func (DeleteSCRAMCredential) Type() CommandType { return CmdDeleteSCRAMCredential }

func (c UpsertSCRAMCredential) encode(e *encoder) {
	e.str(c.User)
	e.u8(uint8(c.Mechanism))
	e.bytes(c.Salt)
	e.bytes(c.StoredKey)
	e.bytes(c.ServerKey)
	e.i32(c.Iterations)
}

func decodeUpsertSCRAMCredential(d *decoder) Command {
	return UpsertSCRAMCredential{User: d.str(), Mechanism: SCRAMMechanism(d.u8()), Salt: d.bytes(), StoredKey: d.bytes(),
		ServerKey: d.bytes(), Iterations: d.i32()}
}

func (c DeleteSCRAMCredential) encode(e *encoder) {
	e.str(c.User)
	e.u8(uint8(c.Mechanism))
}

func decodeDeleteSCRAMCredential(d *decoder) Command {
	return DeleteSCRAMCredential{User: d.str(), Mechanism: SCRAMMechanism(d.u8())}
}

func validateSCRAM(k SCRAMKey, c SCRAMCredential) error {
	kl := k.Mechanism.keyLen()
	switch {
	case k.User == "":
		return invalid("scram credential without user")
	case kl == 0:
		return invalid("scram mechanism %d", k.Mechanism)
	case c.Iterations < minSCRAMIterations || c.Iterations > maxSCRAMIterations:
		return invalid("scram iterations %d outside [%d, %d]", c.Iterations, minSCRAMIterations, maxSCRAMIterations)
	case len(c.Salt) == 0 || len(c.StoredKey) != kl || len(c.ServerKey) != kl:
		return invalid("scram credential of %q: salt %d bytes, keys %d and %d bytes, want %d", k.User, len(c.Salt), len(c.StoredKey), len(c.ServerKey), kl)
	}
	return nil
}

func (c UpsertSCRAMCredential) apply(t *txn, _ uint64) (Result, error) {
	k := SCRAMKey{User: c.User, Mechanism: c.Mechanism}
	cred := SCRAMCredential{Salt: slices.Clone(c.Salt), StoredKey: slices.Clone(c.StoredKey), ServerKey: slices.Clone(c.ServerKey), Iterations: c.Iterations}
	if err := validateSCRAM(k, cred); err != nil {
		return Result{}, err
	}
	if old, ok := t.s.SCRAM[k]; ok && scramEqual(old, cred) {
		return Result{}, nil
	}
	t.scram()[k] = cred
	return Result{}, nil
}

func (c DeleteSCRAMCredential) apply(t *txn, _ uint64) (Result, error) {
	k := SCRAMKey{User: c.User, Mechanism: c.Mechanism}
	if _, ok := t.s.SCRAM[k]; !ok {
		return Result{}, fmt.Errorf("%w: %q mechanism %d", ErrUnknownSCRAMCredential, c.User, c.Mechanism)
	}
	delete(t.scram(), k)
	return Result{}, nil
}

func scramEqual(a, b SCRAMCredential) bool {
	return a.Iterations == b.Iterations && string(a.Salt) == string(b.Salt) &&
		string(a.StoredKey) == string(b.StoredKey) && string(a.ServerKey) == string(b.ServerKey)
}

func compareSCRAMKey(a, b SCRAMKey) int {
	return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Mechanism, b.Mechanism))
}
