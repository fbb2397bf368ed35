package broker

// The ACL authorizer: Kafka's StandardAuthorizer rules evaluated over the ACL
// bindings of the raft state.
//
// A request's principal and client host are matched against every binding of
// the resource type:
//   - a binding applies to a resource when it is LITERAL with the same name,
//     LITERAL "*" (every resource of the type), or PREFIXED with a name that
//     is a prefix of the resource name;
//   - its principal must be the connection's or the wildcard "User:*", its
//     host "*" or the client's address;
//   - an ALLOW binding for READ, WRITE, DELETE or ALTER also allows DESCRIBE,
//     one for ALTER_CONFIGS also allows DESCRIBE_CONFIGS, and ALL allows
//     everything; DENY bindings imply nothing beyond ALL;
//   - any matching DENY wins over every ALLOW. Without a matching binding the
//     answer is DENIED, unless the resource has no binding at all (for anyone)
//     and allow.everyone.if.no.acl.found is set.
//
// Super users are allowed everything whatever the bindings say. With the
// authorizer off (the default, as Kafka without authorizer.class.name) every
// request is allowed and the ACL APIs answer SECURITY_DISABLED.
//
// A check looks only at the bindings that can apply to its resource: they
// are indexed by resource type, literal name and prefix (aclIndex), once per
// raft state version, so its cost grows with the length of the resource name
// and the bindings on that resource, not with the whole ACL set.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// clusterResource is the one name of Kafka's CLUSTER resource.
const clusterResource = "kafka-cluster"

// wildcardPrincipal matches every principal in an ACL binding.
const wildcardPrincipal = "User:*"

// wildcard is the resource name and host that match everything.
const wildcard = "*"

// Kafka's ACL codes, typed as the ACL bindings of the raft state store them.
const (
	opAll             = int8(kmsg.ACLOperationAll)
	opRead            = int8(kmsg.ACLOperationRead)
	opWrite           = int8(kmsg.ACLOperationWrite)
	opCreate          = int8(kmsg.ACLOperationCreate)
	opDelete          = int8(kmsg.ACLOperationDelete)
	opAlter           = int8(kmsg.ACLOperationAlter)
	opDescribe        = int8(kmsg.ACLOperationDescribe)
	opClusterAction   = int8(kmsg.ACLOperationClusterAction)
	opDescribeConfigs = int8(kmsg.ACLOperationDescribeConfigs)
	opAlterConfigs    = int8(kmsg.ACLOperationAlterConfigs)
	opIdempotentWrite = int8(kmsg.ACLOperationIdempotentWrite)

	resTopic   = int8(kmsg.ACLResourceTypeTopic)
	resGroup   = int8(kmsg.ACLResourceTypeGroup)
	resCluster = int8(kmsg.ACLResourceTypeCluster)
	resTxnID   = int8(kmsg.ACLResourceTypeTransactionalId)

	patLiteral  = int8(kmsg.ACLResourcePatternTypeLiteral)
	patPrefixed = int8(kmsg.ACLResourcePatternTypePrefixed)

	permDeny  = int8(kmsg.ACLPermissionTypeDeny)
	permAllow = int8(kmsg.ACLPermissionTypeAllow)
)

// authzPolicy is the static part of authorization: whether ACLs are checked
// at all, who bypasses them, and the answer for resources without bindings.
// It is immutable after the broker starts.
type authzPolicy struct {
	enabled      bool
	superUsers   map[string]bool
	allowIfNoACL bool
}

func newAuthzPolicy(cfg Config) authzPolicy {
	p := authzPolicy{enabled: cfg.Authorizer, allowIfNoACL: cfg.AllowEveryoneIfNoACLFound, superUsers: map[string]bool{}}
	for _, u := range cfg.SuperUsers {
		p.superUsers[u] = true
	}
	return p
}

// ParseSuperUsers splits Kafka's super.users value, a semicolon-separated
// list of principals such as "User:admin;User:broker"; blanks are dropped.
func ParseSuperUsers(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ";") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// aclIndex holds the ACL bindings of one raft state by resource type, and
// within a type by literal name and by prefix. It is immutable once built.
type aclIndex struct {
	// state is the raft state the index was built from (nil in tests).
	state  *raft.State
	byType map[int8]*typeACLs
}

// typeACLs are the bindings of one resource type.
type typeACLs struct {
	literal  map[string][]raft.ACL // by resource name; "*" is the wildcard
	prefixed map[string][]raft.ACL // by prefix
	// maxPrefix is the length of the longest prefix in prefixed.
	maxPrefix int
}

// newACLIndex indexes acls.
func newACLIndex(acls map[raft.ACL]struct{}) *aclIndex {
	x := &aclIndex{byType: map[int8]*typeACLs{}}
	for a := range acls {
		t := x.byType[a.ResourceType]
		if t == nil {
			t = &typeACLs{literal: map[string][]raft.ACL{}, prefixed: map[string][]raft.ACL{}}
			x.byType[a.ResourceType] = t
		}
		switch a.PatternType {
		case patLiteral:
			t.literal[a.ResourceName] = append(t.literal[a.ResourceName], a)
		case patPrefixed:
			t.prefixed[a.ResourceName] = append(t.prefixed[a.ResourceName], a)
			t.maxPrefix = max(t.maxPrefix, len(a.ResourceName))
		}
	}
	return x
}

// matching calls f with every binding that applies to the resource (rt,
// name): a literal one with the same name, the literal wildcard, or a
// prefixed one whose name is a prefix of name. It stops when f returns
// false.
func (x *aclIndex) matching(rt int8, name string, f func(raft.ACL) bool) {
	t := x.byType[rt]
	if t == nil {
		return
	}
	each := func(as []raft.ACL) bool {
		for _, a := range as {
			if !f(a) {
				return false
			}
		}
		return true
	}
	if !each(t.literal[name]) {
		return
	}
	if name != wildcard && !each(t.literal[wildcard]) {
		return
	}
	for i := 1; i <= min(len(name), t.maxPrefix); i++ {
		if !each(t.prefixed[name[:i]]) {
			return
		}
	}
}

// all calls f with every binding of resource type rt.
func (x *aclIndex) all(rt int8, f func(raft.ACL)) {
	t := x.byType[rt]
	if t == nil {
		return
	}
	for _, as := range t.literal {
		for _, a := range as {
			f(a)
		}
	}
	for _, as := range t.prefixed {
		for _, a := range as {
			f(a)
		}
	}
}

// aclOpMatches reports whether binding a speaks about operation op, with the
// implications Kafka grants ALLOW bindings only.
func aclOpMatches(a raft.ACL, op int8) bool {
	if a.Operation == opAll || a.Operation == op {
		return true
	}
	if a.Permission != permAllow {
		return false
	}
	switch op {
	case opDescribe:
		switch a.Operation {
		case opRead, opWrite, opDelete, opAlter:
			return true
		}
	case opDescribeConfigs:
		return a.Operation == opAlterConfigs
	}
	return false
}

// aclMatchesIdentity reports whether binding a applies to principal
// connecting from host.
func aclMatchesIdentity(a raft.ACL, principal, host string) bool {
	return (a.Principal == principal || a.Principal == wildcardPrincipal) && (a.Host == wildcard || a.Host == host)
}

// authorize decides whether principal, connecting from host, may perform op
// on the resource (rt, name) given the bindings acls. It is pure: the same
// inputs always give the same answer.
func (p authzPolicy) authorize(acls *aclIndex, principal, host string, op, rt int8, name string) bool {
	if !p.enabled || p.superUsers[principal] {
		return true
	}
	var allowed, denied, hasResourceACLs bool
	acls.matching(rt, name, func(a raft.ACL) bool {
		hasResourceACLs = true
		if !aclMatchesIdentity(a, principal, host) || !aclOpMatches(a, op) {
			return true
		}
		if a.Permission == permDeny {
			denied = true
			return false
		}
		allowed = true
		return true
	})
	switch {
	case denied:
		return false
	case allowed:
		return true
	}
	return !hasResourceACLs && p.allowIfNoACL
}

// authorizeAny decides whether principal may perform op on at least one
// resource of type rt, possibly one that does not exist yet: Kafka's
// authorizeByResourceType, which lets producers with WRITE on any topic be
// idempotent (KIP-679). It is allowed when the answer for an unnamed resource
// is already ALLOW (super users, no bindings with allow.everyone), or an ALLOW
// binding for op (or ALL) names some resource that no DENY binding of the
// principal covers: a literal "*" ALLOW, or a literal or prefix ALLOW that
// neither an equal literal DENY nor a DENY prefix of its name shadows; a
// literal "*" DENY denies everything.
func (p authzPolicy) authorizeAny(acls *aclIndex, principal, host string, op, rt int8) bool {
	if p.authorize(acls, principal, host, op, rt, "hardcode") {
		return true
	}
	denyLiteral := map[string]bool{}
	denyPrefix := map[string]bool{}
	var allows []raft.ACL
	wildcardDeny := false
	acls.all(rt, func(a raft.ACL) {
		if !aclMatchesIdentity(a, principal, host) || (a.Operation != op && a.Operation != opAll) {
			return
		}
		switch {
		case a.Permission == permDeny && a.PatternType == patLiteral && a.ResourceName == wildcard:
			wildcardDeny = true
		case a.Permission == permDeny && a.PatternType == patLiteral:
			denyLiteral[a.ResourceName] = true
		case a.Permission == permDeny && a.PatternType == patPrefixed:
			denyPrefix[a.ResourceName] = true
		case a.Permission == permAllow:
			allows = append(allows, a)
		}
	})
	if wildcardDeny {
		return false
	}
	for _, a := range allows {
		if a.PatternType == patLiteral && a.ResourceName == wildcard {
			return true
		}
	}
	for _, a := range allows {
		if a.PatternType == patLiteral && denyLiteral[a.ResourceName] {
			continue
		}
		shadowed := false
		for i := 1; i <= len(a.ResourceName); i++ {
			if denyPrefix[a.ResourceName[:i]] {
				shadowed = true
				break
			}
		}
		if !shadowed {
			return true
		}
	}
	return false
}

// supportedOps are the operations Kafka reports in authorized-operations
// fields, per resource type (AclEntry.supportedOperations).
var supportedOps = map[int8][]int8{
	resTopic:   {opRead, opWrite, opCreate, opDescribe, opDelete, opAlter, opDescribeConfigs, opAlterConfigs},
	resGroup:   {opRead, opDescribe, opDelete},
	resCluster: {opCreate, opClusterAction, opDescribeConfigs, opAlterConfigs, opIdempotentWrite, opAlter, opDescribe},
}

// authorizedOps is the bit field of authorized-operations response fields:
// bit n is set when operation code n is allowed on the resource. With the
// authorizer off every supported operation is set, as in Kafka.
func (p authzPolicy) authorizedOps(acls *aclIndex, principal, host string, rt int8, name string) int32 {
	var bits int32
	for _, op := range supportedOps[rt] {
		if p.authorize(acls, principal, host, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// authorized reports whether rq's connection may perform op on the resource
// (rt, name) under the current ACLs.
func (b *Broker) authorized(rq *request, op, rt int8, name string) bool {
	if !b.authz.enabled {
		return true
	}
	ok := b.authz.authorize(b.acls(), rq.c.principal, rq.c.host, op, rt, name)
	if !ok {
		// Kafka's kafka.authorizer.logger line, at debug level here.
		rq.c.log.Debug("authorization denied", "principal", rq.c.principal, "host", rq.c.host,
			"operation", kmsg.ACLOperation(op).String(), "resource_type", kmsg.ACLResourceType(rt).String(),
			"resource", name, "api", kmsg.NameForKey(rq.key))
	}
	return ok
}

// acls returns the index of the current raft state's ACL bindings, built at
// most once per state version (racing builders build equal indexes; the
// last stored wins).
func (b *Broker) acls() *aclIndex {
	st := b.node.State()
	if x := b.aclIdx.Load(); x != nil && x.state == st {
		return x
	}
	x := newACLIndex(st.ACLs)
	x.state = st
	b.aclIdx.Store(x)
	return x
}

// authorizedCluster is authorized on the CLUSTER resource.
func (b *Broker) authorizedCluster(rq *request, op int8) bool {
	return b.authorized(rq, op, resCluster, clusterResource)
}

// authorizedOps is the authorized-operations bit field of rq's connection
// for the resource (rt, name).
func (b *Broker) authorizedOps(rq *request, rt int8, name string) int32 {
	return b.authz.authorizedOps(b.acls(), rq.c.principal, rq.c.host, rt, name)
}
