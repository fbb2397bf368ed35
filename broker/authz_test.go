package broker

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stromhq/strom/raft"
)

// acl builds a binding for tests: host "*" unless given after the permission.
func acl(rt int8, name string, pat int8, principal string, op, perm int8, host ...string) raft.ACL {
	h := "*"
	if len(host) > 0 {
		h = host[0]
	}
	return raft.ACL{ResourceType: rt, ResourceName: name, PatternType: pat, Principal: principal, Host: h, Operation: op, Permission: perm}
}

func aclSet(acls ...raft.ACL) *aclIndex {
	m := map[raft.ACL]struct{}{}
	for _, a := range acls {
		m[a] = struct{}{}
	}
	return newACLIndex(m)
}

func TestAuthorize(t *testing.T) {
	const alice, bob = "User:alice", "User:bob"
	on := authzPolicy{enabled: true}
	open := authzPolicy{enabled: true, allowIfNoACL: true}
	super := authzPolicy{enabled: true, superUsers: map[string]bool{"User:admin": true}}
	tests := []struct {
		name      string
		p         authzPolicy
		acls      []raft.ACL
		principal string
		host      string
		op, rt    int8
		res       string
		want      bool
	}{
		{"authorizer off allows", authzPolicy{}, nil, alice, "1.2.3.4", opWrite, resTopic, "t", true},
		{"no acls denies", on, nil, alice, "h", opRead, resTopic, "t", false},
		{"no acls with allow.everyone", open, nil, alice, "h", opRead, resTopic, "t", true},
		{"acl for someone else closes the resource", open, []raft.ACL{acl(resTopic, "t", patLiteral, bob, opRead, permAllow)}, alice, "h", opRead, resTopic, "t", false},
		{"acl on another resource keeps it open", open, []raft.ACL{acl(resTopic, "u", patLiteral, bob, opRead, permAllow)}, alice, "h", opRead, resTopic, "t", true},
		{"acl of another type keeps it open", open, []raft.ACL{acl(resGroup, "t", patLiteral, bob, opRead, permAllow)}, alice, "h", opRead, resTopic, "t", true},
		{"literal allow", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "t", true},
		{"literal allow other op", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow)}, alice, "h", opWrite, resTopic, "t", false},
		{"literal is not a prefix", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "tt", false},
		{"other principal", on, []raft.ACL{acl(resTopic, "t", patLiteral, bob, opRead, permAllow)}, alice, "h", opRead, resTopic, "t", false},
		{"wildcard principal", on, []raft.ACL{acl(resTopic, "t", patLiteral, "User:*", opRead, permAllow)}, alice, "h", opRead, resTopic, "t", true},
		{"wildcard resource", on, []raft.ACL{acl(resTopic, "*", patLiteral, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "anything", true},
		{"prefixed star is not a wildcard", on, []raft.ACL{acl(resTopic, "*", patPrefixed, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "anything", false},
		{"prefix allow", on, []raft.ACL{acl(resTopic, "pay", patPrefixed, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "payments", true},
		{"prefix equal name", on, []raft.ACL{acl(resTopic, "pay", patPrefixed, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "pay", true},
		{"prefix mismatch", on, []raft.ACL{acl(resTopic, "pay", patPrefixed, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "pa", false},
		{"host match", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow, "10.0.0.1")}, alice, "10.0.0.1", opRead, resTopic, "t", true},
		{"host mismatch", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow, "10.0.0.1")}, alice, "10.0.0.2", opRead, resTopic, "t", false},
		{"deny beats allow", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opRead, permAllow),
			acl(resTopic, "t", patLiteral, alice, opRead, permDeny),
		}, alice, "h", opRead, resTopic, "t", false},
		{"prefix deny beats literal allow", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opAll, permAllow),
			acl(resTopic, "t", patPrefixed, "User:*", opWrite, permDeny),
		}, alice, "h", opWrite, resTopic, "t", false},
		{"wildcard deny beats allow", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opRead, permAllow),
			acl(resTopic, "*", patLiteral, alice, opRead, permDeny, "h"),
		}, alice, "h", opRead, resTopic, "t", false},
		{"deny from another host does not apply", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opRead, permAllow),
			acl(resTopic, "t", patLiteral, alice, opRead, permDeny, "9.9.9.9"),
		}, alice, "h", opRead, resTopic, "t", true},
		{"deny other op does not apply", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opAll, permAllow),
			acl(resTopic, "t", patLiteral, alice, opWrite, permDeny),
		}, alice, "h", opRead, resTopic, "t", true},
		{"all allows everything", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opAll, permAllow)}, alice, "h", opAlterConfigs, resTopic, "t", true},
		{"deny all denies everything", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opRead, permAllow),
			acl(resTopic, "t", patLiteral, alice, opAll, permDeny),
		}, alice, "h", opRead, resTopic, "t", false},
		{"read implies describe", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow)}, alice, "h", opDescribe, resTopic, "t", true},
		{"write implies describe", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opWrite, permAllow)}, alice, "h", opDescribe, resTopic, "t", true},
		{"delete implies describe", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opDelete, permAllow)}, alice, "h", opDescribe, resTopic, "t", true},
		{"alter implies describe", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opAlter, permAllow)}, alice, "h", opDescribe, resTopic, "t", true},
		{"create does not imply describe", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opCreate, permAllow)}, alice, "h", opDescribe, resTopic, "t", false},
		{"describe does not imply read", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opDescribe, permAllow)}, alice, "h", opRead, resTopic, "t", false},
		{"alter configs implies describe configs", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opAlterConfigs, permAllow)}, alice, "h", opDescribeConfigs, resTopic, "t", true},
		{"alter does not imply describe configs", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opAlter, permAllow)}, alice, "h", opDescribeConfigs, resTopic, "t", false},
		{"deny read does not deny describe", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opDescribe, permAllow),
			acl(resTopic, "t", patLiteral, alice, opRead, permDeny),
		}, alice, "h", opDescribe, resTopic, "t", true},
		{"super user ignores deny", super, []raft.ACL{acl(resTopic, "t", patLiteral, "User:admin", opAll, permDeny)}, "User:admin", "h", opRead, resTopic, "t", true},
		{"super user list is exact", super, nil, "User:Admin", "h", opRead, resTopic, "t", false},
		{"cluster resource", on, []raft.ACL{acl(resCluster, clusterResource, patLiteral, alice, opAlter, permAllow)}, alice, "h", opAlter, resCluster, clusterResource, true},
		{"group is separate from topic", on, []raft.ACL{acl(resTopic, "g", patLiteral, alice, opRead, permAllow)}, alice, "h", opRead, resGroup, "g", false},
		{"resource literally named *", on, []raft.ACL{acl(resTopic, "*", patLiteral, alice, opRead, permAllow)}, alice, "h", opRead, resTopic, "*", true},
		{"deny on a shorter prefix", on, []raft.ACL{
			acl(resTopic, "pay-eu", patPrefixed, alice, opRead, permAllow),
			acl(resTopic, "pay", patPrefixed, alice, opRead, permDeny),
		}, alice, "h", opRead, resTopic, "pay-eu-1", false},
		{"allow on a longer prefix", on, []raft.ACL{
			acl(resTopic, "p", patPrefixed, bob, opRead, permAllow),
			acl(resTopic, "pay-eu", patPrefixed, alice, opRead, permAllow),
		}, alice, "h", opRead, resTopic, "pay-eu-1", true},
		{"allow.everyone still honours deny", open, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opWrite, permDeny)}, alice, "h", opRead, resTopic, "t", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.authorize(aclSet(tt.acls...), tt.principal, tt.host, tt.op, tt.rt, tt.res); got != tt.want {
				t.Fatalf("authorize(%s@%s op %d on %d:%s) = %v, want %v", tt.principal, tt.host, tt.op, tt.rt, tt.res, got, tt.want)
			}
		})
	}
}

func TestAuthorizeAny(t *testing.T) {
	const alice = "User:alice"
	on := authzPolicy{enabled: true}
	tests := []struct {
		name string
		p    authzPolicy
		acls []raft.ACL
		want bool
	}{
		{"nothing", on, nil, false},
		{"no acls with allow.everyone", authzPolicy{enabled: true, allowIfNoACL: true}, nil, true},
		{"super user", authzPolicy{enabled: true, superUsers: map[string]bool{alice: true}}, nil, true},
		{"one literal", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opWrite, permAllow)}, true},
		{"all counts", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opAll, permAllow)}, true},
		{"implied op does not count", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opRead, permAllow)}, false},
		{"other host", on, []raft.ACL{acl(resTopic, "t", patLiteral, alice, opWrite, permAllow, "9.9.9.9")}, false},
		{"other type", on, []raft.ACL{acl(resGroup, "t", patLiteral, alice, opWrite, permAllow)}, false},
		{"literal denied", on, []raft.ACL{
			acl(resTopic, "t", patLiteral, alice, opWrite, permAllow),
			acl(resTopic, "t", patLiteral, alice, opWrite, permDeny),
		}, false},
		{"prefix deny shadows", on, []raft.ACL{
			acl(resTopic, "team-a", patPrefixed, alice, opWrite, permAllow),
			acl(resTopic, "team", patPrefixed, alice, opWrite, permDeny),
		}, false},
		{"longer prefix deny does not shadow", on, []raft.ACL{
			acl(resTopic, "team", patPrefixed, alice, opWrite, permAllow),
			acl(resTopic, "team-a", patPrefixed, alice, opWrite, permDeny),
		}, true},
		{"wildcard deny", on, []raft.ACL{
			acl(resTopic, "*", patLiteral, alice, opWrite, permAllow),
			acl(resTopic, "*", patLiteral, alice, opWrite, permDeny),
		}, false},
		{"wildcard allow", on, []raft.ACL{
			acl(resTopic, "*", patLiteral, alice, opWrite, permAllow),
			acl(resTopic, "t", patLiteral, alice, opWrite, permDeny),
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.authorizeAny(aclSet(tt.acls...), alice, "h", opWrite, resTopic); got != tt.want {
				t.Fatalf("authorizeAny = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthorizedOps(t *testing.T) {
	const alice = "User:alice"
	on := authzPolicy{enabled: true}
	acls := aclSet(acl(resTopic, "t", patLiteral, alice, opRead, permAllow), acl(resTopic, "t", patLiteral, alice, opAlterConfigs, permAllow))
	want := int32(1<<opRead | 1<<opDescribe | 1<<opDescribeConfigs | 1<<opAlterConfigs)
	if got := on.authorizedOps(acls, alice, "h", resTopic, "t"); got != want {
		t.Fatalf("topic ops = %b, want %b", got, want)
	}
	all := int32(1<<opRead | 1<<opDescribe | 1<<opDelete)
	if got := (authzPolicy{}).authorizedOps(nil, alice, "h", resGroup, "g"); got != all {
		t.Fatalf("group ops with authorizer off = %b, want %b", got, all)
	}
}

func TestParseSuperUsers(t *testing.T) {
	got := ParseSuperUsers(" User:admin ;User:broker;;")
	if len(got) != 2 || got[0] != "User:admin" || got[1] != "User:broker" {
		t.Fatalf("ParseSuperUsers = %q", got)
	}
}

// authorizeLinear is the reference for TestAuthorizeMatchesReference: the
// rules applied to every binding in turn, without the index.
func authorizeLinear(p authzPolicy, acls []raft.ACL, principal, host string, op, rt int8, name string) bool {
	if !p.enabled || p.superUsers[principal] {
		return true
	}
	var allowed, found bool
	for _, a := range acls {
		applies := a.ResourceType == rt && (a.PatternType == patLiteral && (a.ResourceName == name || a.ResourceName == wildcard) ||
			a.PatternType == patPrefixed && strings.HasPrefix(name, a.ResourceName))
		if !applies {
			continue
		}
		found = true
		if !aclMatchesIdentity(a, principal, host) || !aclOpMatches(a, op) {
			continue
		}
		if a.Permission == permDeny {
			return false
		}
		allowed = true
	}
	return allowed || !found && p.allowIfNoACL
}

// TestAuthorizeMatchesReference compares the indexed authorizer with the
// linear reference on random binding sets and requests over a small
// alphabet of names, so prefixes, wildcards and collisions are frequent.
func TestAuthorizeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"*", "a", "ab", "abc", "b", "ba"}
	principals := []string{"User:alice", "User:bob", wildcardPrincipal}
	hosts := []string{"*", "10.0.0.1", "10.0.0.2"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for round := range 2000 {
		var acls []raft.ACL
		for range rng.IntN(8) {
			acls = append(acls, raft.ACL{
				ResourceType: resTopic + int8(rng.IntN(2)), ResourceName: pick(names), PatternType: patLiteral + int8(rng.IntN(2)),
				Principal: pick(principals), Host: pick(hosts), Operation: opAll + int8(rng.IntN(int(opIdempotentWrite-opAll)+1)),
				Permission: permDeny + int8(rng.IntN(2)),
			})
		}
		p := authzPolicy{enabled: true, allowIfNoACL: rng.IntN(2) == 0}
		x := aclSet(acls...)
		for range 20 {
			principal, host := pick(principals[:2]), pick(hosts[1:])
			op, rt, name := opRead+int8(rng.IntN(int(opIdempotentWrite-opRead)+1)), resTopic+int8(rng.IntN(2)), pick(names)
			if got, want := p.authorize(x, principal, host, op, rt, name), authorizeLinear(p, acls, principal, host, op, rt, name); got != want {
				t.Fatalf("round %d: authorize(%s@%s op %d on %d:%q) = %v, reference %v; acls %+v", round, principal, host, op, rt, name, got, want, acls)
			}
		}
	}
}

// BenchmarkAuthorize checks one topic against 10,000 bindings spread over
// 1,000 topics (literal and prefixed), the cost every authorized request
// pays per resource.
func BenchmarkAuthorize(b *testing.B) {
	m := map[raft.ACL]struct{}{}
	for i := range 1000 {
		name := "topic-" + strconv.Itoa(i)
		for j := range 9 {
			m[acl(resTopic, name, patLiteral, "User:u"+strconv.Itoa(j), opRead, permAllow)] = struct{}{}
		}
		m[acl(resTopic, name[:len(name)-1], patPrefixed, "User:p", opWrite, permAllow)] = struct{}{}
	}
	x := newACLIndex(m)
	p := authzPolicy{enabled: true}
	b.ResetTimer()
	for i := range b.N {
		p.authorize(x, "User:u3", "10.0.0.1", opRead, resTopic, "topic-"+strconv.Itoa(i%1000))
	}
}
