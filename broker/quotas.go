package broker

// DescribeClientQuotas v0-1 and AlterClientQuotas v0-1 (KIP-546): the
// client quotas in the raft metadata state, served as Kafka's
// ClientQuotasImage and ClientQuotaControlManager serve them. Enforcement
// is in quota_enforce.go.
//
// Entities are user, client-id and ip components, each a name or the
// default entity (a null name, `<default>` in kafka-configs.sh); user and
// client-id combine, ip stands alone. Keys: producer_byte_rate,
// consumer_byte_rate (integral), request_percentage,
// controller_mutation_rate for users and client ids;
// connection_creation_rate (integral) for ips.
//
// Alter validates each entry on its own, as Kafka does: an unknown entity
// type, an empty name, ip mixed with user or client-id, a named ip that is
// not an address, an unknown key, a value not above 0, a fractional or too
// large value for an integral key and a key twice in one entry are
// INVALID_REQUEST for that entry (Kafka 4.3's checks and messages). The
// valid entries
// are applied together as one raft command (atomic, like Kafka's record
// batch); validate_only stops before it. Describe filters with match types
// exact/default/any and strict as Kafka's image does: an entity type twice,
// an exact match without a name or a default/any match with one is
// INVALID_REQUEST, an unknown entity type UNSUPPORTED_VERSION, ip combined
// with user or client-id INVALID_REQUEST.
//
// Differences from Kafka: results and entries come in request order and in
// entity order (Kafka's follow hash maps); an entity repeated in one Alter
// request is applied once, its later entries answered INVALID_REQUEST
// (Kafka answers the entity once, with that error); a named ip must be an
// address literal (Kafka also accepts a resolvable host name).
//
// ACLs: Describe needs DESCRIBE_CONFIGS on the cluster (else a top-level
// CLUSTER_AUTHORIZATION_FAILED), Alter ALTER_CONFIGS on the cluster (else
// every entry gets CLUSTER_AUTHORIZATION_FAILED), as in Kafka.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.DescribeClientQuotasRequest{}, 0, 1, (*Broker).handleDescribeClientQuotas)
	register(&kmsg.AlterClientQuotasRequest{}, 0, 1, (*Broker).handleAlterClientQuotas)
}

// Kafka's quota entity types.
const (
	quotaEntityUser     = "user"
	quotaEntityClientID = "client-id"
	quotaEntityIP       = "ip"
)

// quotaComponent returns the entity component of the given type.
func quotaComponent(e *raft.QuotaEntity, typ string) *raft.QuotaName {
	switch typ {
	case quotaEntityUser:
		return &e.User
	case quotaEntityClientID:
		return &e.ClientID
	case quotaEntityIP:
		return &e.IP
	}
	return nil
}

// quotaEntityString renders an entity as Kafka's ClientQuotaEntity does
// in messages.
func quotaEntityString(e raft.QuotaEntity) string {
	var parts []string
	for _, typ := range []string{quotaEntityUser, quotaEntityClientID, quotaEntityIP} {
		n := *quotaComponent(&e, typ)
		switch n.Kind {
		case raft.QuotaNamed:
			parts = append(parts, typ+"="+n.Name)
		case raft.QuotaDefault:
			parts = append(parts, typ+"=null")
		}
	}
	return "ClientQuotaEntity(entries={" + strings.Join(parts, ", ") + "})"
}

// parseQuotaEntity builds the entity of an AlterClientQuotas entry. A type
// named twice keeps the last name, as Kafka's request parsing does.
func parseQuotaEntity(ents []kmsg.AlterClientQuotasRequestEntryEntity) (raft.QuotaEntity, string) {
	var e raft.QuotaEntity
	for _, ent := range ents {
		c := quotaComponent(&e, ent.Type)
		if c == nil {
			return e, "Unhandled client quota entity type: " + ent.Type
		}
		switch {
		case ent.Name == nil:
			*c = raft.DefaultName
		case *ent.Name == "":
			return e, "Empty " + ent.Type + " not supported"
		default:
			*c = raft.Named(*ent.Name)
		}
	}
	if err := e.Validate(); err != nil {
		return e, "Invalid empty client quota entity"
	}
	if e.IP.Kind == raft.QuotaNamed {
		if _, err := netip.ParseAddr(e.IP.Name); err != nil {
			return e, e.IP.Name + " is not a valid IP or resolvable host."
		}
	}
	return e, ""
}

// quotaErrMessage strips the raft sentinel's prefix from a validation
// error, leaving Kafka's message.
func quotaErrMessage(err error) string {
	return strings.TrimPrefix(err.Error(), raft.ErrInvalidCommand.Error()+": ")
}

func (b *Broker) handleAlterClientQuotas(rq *request, req *kmsg.AlterClientQuotasRequest) reply {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	type result struct {
		code *kerr.Error
		msg  string
	}
	results := make([]result, len(req.Entries))
	allowed := b.authorizedCluster(rq, opAlterConfigs)
	var cmd raft.AlterClientQuotas
	var applied []int // entries whose change is in cmd
	seen := map[raft.QuotaEntity]bool{}
	for i, entry := range req.Entries {
		if !allowed {
			results[i] = result{kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description}
			continue
		}
		e, bad := parseQuotaEntity(entry.Entity)
		if bad != "" {
			results[i] = result{kerr.InvalidRequest, bad}
			continue
		}
		if seen[e] {
			results[i] = result{kerr.InvalidRequest, "Ignoring duplicate entity " + quotaEntityString(e)}
			continue
		}
		seen[e] = true
		ch := raft.QuotaChange{Entity: e}
		keys := map[string]bool{}
		for _, op := range entry.Ops {
			if keys[op.Key] {
				bad = "Duplicate quota key " + op.Key + " not updating quota for this entity " + quotaEntityString(e)
				break
			}
			keys[op.Key] = true
			if op.Remove {
				ch.Delete = append(ch.Delete, op.Key)
				continue
			}
			if err := e.ValidateQuota(op.Key, op.Value); err != nil {
				bad = quotaErrMessage(err)
				break
			}
			if ch.Set == nil {
				ch.Set = map[string]float64{}
			}
			ch.Set[op.Key] = op.Value
		}
		if bad != "" {
			results[i] = result{kerr.InvalidRequest, bad}
			continue
		}
		cmd.Changes = append(cmd.Changes, ch)
		applied = append(applied, i)
	}
	if len(cmd.Changes) > 0 && !req.ValidateOnly {
		ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
		_, err := b.node.Apply(ctx, cmd)
		cancel()
		if err != nil {
			code := metaErr(err)
			if errors.Is(err, raft.ErrInvalidCommand) {
				code = kerr.InvalidRequest
			}
			for _, i := range applied {
				results[i] = result{code, err.Error()}
			}
		} else {
			b.log.Info("altered client quotas", "entities", len(cmd.Changes), "principal", rq.c.principal)
		}
	}
	for i, entry := range req.Entries {
		r := kmsg.NewAlterClientQuotasResponseEntry()
		for _, ent := range entry.Entity {
			re := kmsg.NewAlterClientQuotasResponseEntryEntity()
			re.Type, re.Name = ent.Type, ent.Name
			r.Entity = append(r.Entity, re)
		}
		if results[i].code != nil {
			r.ErrorCode = results[i].code.Code
			r.ErrorMessage = kmsg.StringPtr(results[i].msg)
		}
		resp.Entries = append(resp.Entries, r)
	}
	return now(resp)
}

// quotaFilter is a parsed DescribeClientQuotas filter: exact holds the
// components that must equal a name or the default, typed the entity
// types that must be present with any name.
type quotaFilter struct {
	exact  map[string]raft.QuotaName
	typed  map[string]bool
	strict bool
}

// parseQuotaFilter validates the components as Kafka's ClientQuotasImage
// does; a failure is the top-level error and message.
func parseQuotaFilter(req *kmsg.DescribeClientQuotasRequest) (quotaFilter, *kerr.Error, string) {
	f := quotaFilter{exact: map[string]raft.QuotaName{}, typed: map[string]bool{}, strict: req.Strict}
	for _, c := range req.Components {
		if c.EntityType == "" {
			return f, kerr.InvalidRequest, "Invalid empty entity type."
		}
		if _, dup := f.exact[c.EntityType]; dup || f.typed[c.EntityType] {
			return f, kerr.InvalidRequest, "Entity type " + c.EntityType + " cannot appear more than once in the filter."
		}
		if c.EntityType != quotaEntityUser && c.EntityType != quotaEntityClientID && c.EntityType != quotaEntityIP {
			return f, kerr.UnsupportedVersion, "Unsupported entity type " + c.EntityType
		}
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if c.Match == nil {
				return f, kerr.InvalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null."
			}
			f.exact[c.EntityType] = raft.Named(*c.Match)
		case kmsg.QuotasMatchTypeDefault:
			if c.Match != nil {
				return f, kerr.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
			}
			f.exact[c.EntityType] = raft.DefaultName
		case kmsg.QuotasMatchTypeAny:
			if c.Match != nil {
				return f, kerr.InvalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
			}
			f.typed[c.EntityType] = true
		default:
			return f, kerr.InvalidRequest, fmt.Sprintf("Unknown match type %d", c.MatchType)
		}
	}
	_, ipExact := f.exact[quotaEntityIP]
	_, userExact := f.exact[quotaEntityUser]
	_, clientExact := f.exact[quotaEntityClientID]
	if (ipExact || f.typed[quotaEntityIP]) && (userExact || f.typed[quotaEntityUser] || clientExact || f.typed[quotaEntityClientID]) {
		return f, kerr.InvalidRequest, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."
	}
	return f, nil, ""
}

// matches reports whether the filter selects e. With no components a
// non-strict filter selects everything and a strict one nothing, as in
// Kafka.
func (f *quotaFilter) matches(e raft.QuotaEntity) bool {
	if len(f.exact) == 0 && len(f.typed) == 0 {
		return !f.strict
	}
	for typ, want := range f.exact {
		// Exact names never equal an empty (absent) component: Kafka
		// indexes entities by the components they have.
		if *quotaComponent(&e, typ) != want {
			return false
		}
	}
	for typ := range f.typed {
		if quotaComponent(&e, typ).Kind == raft.QuotaAbsent {
			return false
		}
	}
	if f.strict {
		n := 0
		for _, c := range []raft.QuotaName{e.User, e.ClientID, e.IP} {
			if c.Kind != raft.QuotaAbsent {
				n++
			}
		}
		return n == len(f.exact)+len(f.typed)
	}
	return true
}

func (b *Broker) handleDescribeClientQuotas(rq *request, req *kmsg.DescribeClientQuotasRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !b.authorizedCluster(rq, opDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return now(resp)
	}
	f, e, msg := parseQuotaFilter(req)
	if e != nil {
		resp.ErrorCode = e.Code
		resp.ErrorMessage = kmsg.StringPtr(msg)
		return now(resp)
	}
	st := b.node.State()
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	for _, ent := range st.SortedQuotaEntities() {
		if !f.matches(ent) {
			continue
		}
		out := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, typ := range []string{quotaEntityUser, quotaEntityClientID, quotaEntityIP} {
			c := *quotaComponent(&ent, typ)
			if c.Kind == raft.QuotaAbsent {
				continue
			}
			oe := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			oe.Type = typ
			if c.Kind == raft.QuotaNamed {
				oe.Name = kmsg.StringPtr(c.Name)
			}
			out.Entity = append(out.Entity, oe)
		}
		values := st.ClientQuotas[ent]
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, values[k]
			out.Values = append(out.Values, v)
		}
		resp.Entries = append(resp.Entries, out)
	}
	return now(resp)
}
