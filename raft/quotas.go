package raft

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Client quotas (KIP-13, KIP-55, KIP-257, KIP-546): per-entity rate limits
// that the brokers enforce, stored like Kafka's QuotaRecords: an entity
// (user, client-id, ip, or user with client-id) maps to its quota configs.

// QuotaNameKind says whether an entity component is absent, names one
// user/client/ip, or is Kafka's default entity (a null name,
// `<default>` in kafka-configs.sh).
type QuotaNameKind uint8

// Quota name kinds; the values are part of the log format.
const (
	QuotaAbsent  QuotaNameKind = 0
	QuotaNamed   QuotaNameKind = 1
	QuotaDefault QuotaNameKind = 2
)

// QuotaName is one component of a QuotaEntity. Name is set only for
// QuotaNamed (and is never empty then).
type QuotaName struct {
	Kind QuotaNameKind
	Name string
}

// Named returns the component naming name.
func Named(name string) QuotaName { return QuotaName{Kind: QuotaNamed, Name: name} }

// DefaultName is the default-entity component.
var DefaultName = QuotaName{Kind: QuotaDefault}

// QuotaEntity is whom a set of quotas applies to. It is comparable and is
// its own key in State.ClientQuotas.
//
// Invariant (validate): at least one component is present; IP is never
// combined with User or ClientID.
type QuotaEntity struct {
	User     QuotaName
	ClientID QuotaName
	IP       QuotaName
}

// Quota config keys, as Kafka names them.
const (
	QuotaProducerByteRate       = "producer_byte_rate"
	QuotaConsumerByteRate       = "consumer_byte_rate"
	QuotaRequestPercentage      = "request_percentage"
	QuotaControllerMutationRate = "controller_mutation_rate"
	QuotaConnectionCreationRate = "connection_creation_rate"
)

// quotaValueType is the Kafka config type of a quota key.
type quotaValueType uint8

const (
	quotaDouble quotaValueType = iota
	quotaLong
	quotaInt
)

// userClientQuotaKeys are the keys of user and client-id entities, with
// their Kafka types (QuotaConfig.userAndClientQuotaConfigs).
var userClientQuotaKeys = map[string]quotaValueType{
	QuotaProducerByteRate:       quotaLong,
	QuotaConsumerByteRate:       quotaLong,
	QuotaRequestPercentage:      quotaDouble,
	QuotaControllerMutationRate: quotaDouble,
}

func (n QuotaName) validate(what string) error {
	switch n.Kind {
	case QuotaAbsent, QuotaDefault:
		if n.Name != "" {
			return invalid("%s: name %q with kind %d", what, n.Name, n.Kind)
		}
	case QuotaNamed:
		if n.Name == "" {
			return invalid("empty %s not supported", what)
		}
	default:
		return invalid("%s: name kind %d", what, n.Kind)
	}
	return nil
}

// Validate checks the entity's shape as Kafka's ClientQuotaControlManager
// does; the error wraps ErrInvalidCommand and reads like Kafka's message.
func (e QuotaEntity) Validate() error {
	if err := e.User.validate("user"); err != nil {
		return err
	}
	if err := e.ClientID.validate("client-id"); err != nil {
		return err
	}
	if err := e.IP.validate("ip"); err != nil {
		return err
	}
	hasUser, hasClient, hasIP := e.User.Kind != QuotaAbsent, e.ClientID.Kind != QuotaAbsent, e.IP.Kind != QuotaAbsent
	if hasIP && (hasUser || hasClient) {
		return invalid("Invalid quota entity combination, IP entity should not be combined with User or ClientId")
	}
	if !hasUser && !hasClient && !hasIP {
		return invalid("Invalid empty client quota entity")
	}
	// Whether a named ip is an address is the proposer's check (Kafka
	// resolves host names, which apply must not: it has to be
	// deterministic).
	return nil
}

// ValidateQuota checks that key is a quota config of entity's type and
// that value suits it, in the order and with the messages of Kafka's
// ClientQuotaControlManager: a known key, a value above 0, within the
// key's integral type and without a fraction (beyond 1e-6). Non-finite
// values are refused too (Kafka stores an infinite or NaN double).
func (e QuotaEntity) ValidateQuota(key string, value float64) error {
	typ, ok := userClientQuotaKeys[key]
	if e.IP.Kind != QuotaAbsent {
		typ, ok = quotaInt, key == QuotaConnectionCreationRate
	}
	switch {
	case !ok:
		return invalid("Invalid configuration key %s", key)
	case math.IsNaN(value) || math.IsInf(value, 0):
		return invalid("Quota %s must be a finite number", key)
	case value <= 0:
		return invalid("Quota %s must be greater than 0", key)
	case typ == quotaInt && value > math.MaxInt32:
		return invalid("Proposed value for %s is too large for an INT.", key)
	case typ == quotaLong && value > math.MaxInt64:
		return invalid("Proposed value for %s is too large for a LONG.", key)
	case typ != quotaDouble && math.Abs(math.Mod(value, 1)) > 1e-6:
		return invalid("%s cannot be a fractional value.", key)
	}
	return nil
}

func compareQuotaName(a, b QuotaName) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
}

// CompareQuotaEntity orders entities for stable output (snapshots,
// DescribeClientQuotas).
func CompareQuotaEntity(a, b QuotaEntity) int {
	return cmp.Or(compareQuotaName(a.User, b.User), compareQuotaName(a.ClientID, b.ClientID), compareQuotaName(a.IP, b.IP))
}

// SortedQuotaEntities returns every entity with quotas, ordered (a fresh
// slice).
func (s *State) SortedQuotaEntities() []QuotaEntity {
	return slices.SortedFunc(maps.Keys(s.ClientQuotas), CompareQuotaEntity)
}

func encodeQuotaName(e *encoder, n QuotaName) {
	e.u8(uint8(n.Kind))
	if n.Kind == QuotaNamed {
		e.str(n.Name)
	}
}

func decodeQuotaName(d *decoder) QuotaName {
	n := QuotaName{Kind: QuotaNameKind(d.u8())}
	if n.Kind == QuotaNamed {
		n.Name = d.str()
	}
	return n
}

func encodeQuotaEntity(e *encoder, q QuotaEntity) {
	encodeQuotaName(e, q.User)
	encodeQuotaName(e, q.ClientID)
	encodeQuotaName(e, q.IP)
}

func decodeQuotaEntity(d *decoder) QuotaEntity {
	return QuotaEntity{User: decodeQuotaName(d), ClientID: decodeQuotaName(d), IP: decodeQuotaName(d)}
}

// QuotaChange alters one entity's quotas: keys in Delete are removed, then
// Set is applied, so a key in both ends up set.
type QuotaChange struct {
	Entity QuotaEntity
	Set    map[string]float64
	Delete []string
}

// AlterClientQuotas changes the quotas of one or more entities atomically
// (Kafka's AlterClientQuotas produces its QuotaRecords as one atomic
// batch). Every change is validated before any is applied; setting and
// deleting are idempotent. An entity left without quotas is removed.
type AlterClientQuotas struct {
	Changes []QuotaChange
}

// Type implements Command.
func (AlterClientQuotas) Type() CommandType { return CmdAlterClientQuotas }

func (c AlterClientQuotas) encode(e *encoder) {
	e.uvarint(uint64(len(c.Changes)))
	for _, ch := range c.Changes {
		encodeQuotaEntity(e, ch.Entity)
		encodeSortedMap(e, ch.Set, f64Values)
		e.strs(ch.Delete)
	}
}

// minQuotaChangeSize is the fewest bytes an encoded QuotaChange takes.
const minQuotaChangeSize = 5

func decodeAlterClientQuotas(d *decoder) Command {
	n := d.count(minQuotaChangeSize)
	if d.err != nil || n == 0 {
		return AlterClientQuotas{}
	}
	c := AlterClientQuotas{Changes: make([]QuotaChange, n)}
	for i := range c.Changes {
		c.Changes[i] = QuotaChange{Entity: decodeQuotaEntity(d), Set: decodeSortedMap(d, f64Values), Delete: d.strs()}
	}
	return c
}

func (c AlterClientQuotas) apply(t *txn, index uint64) (Result, error) {
	seen := make(map[QuotaEntity]bool, len(c.Changes))
	for _, ch := range c.Changes {
		if err := ch.Entity.Validate(); err != nil {
			return Result{}, err
		}
		if seen[ch.Entity] {
			return Result{}, invalid("entity %+v changed twice", ch.Entity)
		}
		seen[ch.Entity] = true
		for k, v := range ch.Set {
			if err := ch.Entity.ValidateQuota(k, v); err != nil {
				return Result{}, err
			}
		}
	}
	changed := false
	for _, ch := range c.Changes {
		old := t.s.ClientQuotas[ch.Entity]
		next := make(map[string]float64, len(old)+len(ch.Set))
		maps.Copy(next, old)
		for _, k := range ch.Delete {
			delete(next, k)
		}
		maps.Copy(next, ch.Set)
		if quotaValuesEqual(old, next) {
			continue
		}
		changed = true
		if len(next) == 0 {
			delete(t.clientQuotas(), ch.Entity)
		} else {
			t.clientQuotas()[ch.Entity] = next
		}
	}
	if changed {
		t.s.QuotasVersion = index
	}
	return Result{}, nil
}

func quotaValuesEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || math.Float64bits(w) != math.Float64bits(v) {
			return false
		}
	}
	return true
}

func (t *txn) clientQuotas() map[QuotaEntity]map[string]float64 {
	if !t.quotasOwned {
		t.s.ClientQuotas = maps.Clone(t.s.ClientQuotas)
		t.quotasOwned = true
	}
	return t.s.ClientQuotas
}

// checkQuotaInvariants verifies the ClientQuotas invariants of s.
func (s *State) checkQuotaInvariants() error {
	for e, m := range s.ClientQuotas {
		if err := e.Validate(); err != nil {
			return err
		}
		if len(m) == 0 {
			return fmt.Errorf("empty quota map for entity %+v", e)
		}
		for k, v := range m {
			if err := e.ValidateQuota(k, v); err != nil {
				return err
			}
		}
	}
	if len(s.ClientQuotas) > 0 && s.QuotasVersion == 0 {
		return fmt.Errorf("client quotas without a quotas version")
	}
	return nil
}

// encodeQuotaSection writes the snapshot's client quota section: the
// quotas version, then every entity with its values, sorted.
func encodeQuotaSection(e *encoder, s *State) {
	e.uvarint(s.QuotasVersion)
	ents := s.SortedQuotaEntities()
	e.uvarint(uint64(len(ents)))
	for _, q := range ents {
		encodeQuotaEntity(e, q)
		encodeSortedMap(e, s.ClientQuotas[q], f64Values)
	}
}

// decodeQuotaSection reads what encodeQuotaSection wrote into s. A section
// is only written for a non-empty set or before a later section, so an empty
// last one is corrupt (and the snapshot round trip stays exact).
func decodeQuotaSection(d *decoder, s *State) error {
	s.QuotasVersion = d.uvarint()
	n := d.count(4)
	if d.err != nil {
		return nil
	}
	if n == 0 && d.remaining() == 0 {
		// Empty only to make room for a later section.
		return fmt.Errorf("%w: empty client quota section", ErrCorruptSnapshot)
	}
	for range n {
		q := decodeQuotaEntity(d)
		m := decodeSortedMap(d, f64Values)
		if d.err != nil {
			return nil
		}
		if _, dup := s.ClientQuotas[q]; dup {
			return fmt.Errorf("%w: duplicate quota entity %+v", ErrCorruptSnapshot, q)
		}
		s.ClientQuotas[q] = m
	}
	return nil
}
