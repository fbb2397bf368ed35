package broker

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// withAuthorizer turns the authorizer on with the given super users.
func withAuthorizer(super ...string) func(*Config) {
	return func(c *Config) {
		c.Authorizer = true
		c.SuperUsers = super
	}
}

// grantACLs writes bindings straight into the raft state, bypassing the
// CreateAcls API and its CLUSTER ALTER check, so tests can set up ACLs for
// the anonymous principal their clients connect as.
func grantACLs(t testing.TB, b *Broker, acls ...raft.ACL) {
	t.Helper()
	if _, err := b.apply(testCtx(t), raft.CreateACLs{ACLs: acls}); err != nil {
		t.Fatalf("grant acls: %v", err)
	}
}

func revokeACLs(t testing.TB, b *Broker, acls ...raft.ACL) {
	t.Helper()
	if _, err := b.apply(testCtx(t), raft.DeleteACLs{ACLs: acls}); err != nil {
		t.Fatalf("revoke acls: %v", err)
	}
}

// anonACL is an ALLOW binding for the anonymous principal from any host.
func anonACL(rt int8, name string, op int8) raft.ACL {
	return acl(rt, name, patLiteral, anonymous, op, permAllow)
}

func TestACLAPIsSecurityDisabled(t *testing.T) {
	b := startTestBroker(t, nil)
	cl := newClient(t, b)
	ctx := testCtx(t)

	cr := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, "t", "User:alice", "*"
	c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	cr.Creations = append(cr.Creations, c)
	crResp, err := cr.RequestWith(ctx, cl)
	if err != nil || len(crResp.Results) != 1 || crResp.Results[0].ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("create acls without authorizer: %+v, %v; want SECURITY_DISABLED", crResp, err)
	}
	dr := kmsg.NewPtrDescribeACLsRequest()
	dr.ResourceType, dr.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	dr.Operation, dr.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	drResp, err := dr.RequestWith(ctx, cl)
	if err != nil || drResp.ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("describe acls without authorizer: %+v, %v; want SECURITY_DISABLED", drResp, err)
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	delResp, err := del.RequestWith(ctx, cl)
	if err != nil || len(delResp.Results) != 1 || delResp.Results[0].ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("delete acls without authorizer: %+v, %v; want SECURITY_DISABLED", delResp, err)
	}
}

// describedKeys flattens kadm describe results into comparable strings.
func describedKeys(t *testing.T, adm *kadm.Client, f *kadm.ACLBuilder) []string {
	t.Helper()
	res, err := adm.DescribeACLs(testCtx(t), f)
	if err != nil {
		t.Fatalf("describe acls: %v", err)
	}
	var out []string
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("describe acls filter: %v (%s)", r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			out = append(out, d.Type.String()+"/"+d.Name+"/"+d.Pattern.String()+"/"+d.Principal+"/"+d.Host+"/"+d.Operation.String()+"/"+d.Permission.String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestACLAPIsRoundTrip(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, withAuthorizer(anonymous))
	adm := newAdmin(t, b)
	ctx := testCtx(t)

	create := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:bob").AllowHosts("10.0.0.1").Topics("pay").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
		kadm.NewACLs().Deny("User:*").Topics("*").Operations(kadm.OpDelete),
		kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpDescribe),
	}
	for _, c := range create {
		res, err := adm.CreateACLs(ctx, c)
		if err != nil {
			t.Fatalf("create acls: %v", err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create acl %+v: %v (%s)", r, r.Err, r.ErrMessage)
			}
		}
	}
	// Creating again changes nothing (Kafka answers success).
	if res, err := adm.CreateACLs(ctx, create[0]); err != nil || res[0].Err != nil {
		t.Fatalf("create existing acl: %v %+v", err, res)
	}

	all := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	got := describedKeys(t, adm, all)
	want := []string{
		"CLUSTER/kafka-cluster/LITERAL/User:alice/*/DESCRIBE/ALLOW",
		"GROUP/g/LITERAL/User:alice/*/READ/ALLOW",
		"TOPIC/*/LITERAL/User:*/*/DELETE/DENY",
		"TOPIC/pay/PREFIXED/User:bob/10.0.0.1/WRITE/ALLOW",
		"TOPIC/t/LITERAL/User:alice/*/DESCRIBE/ALLOW",
		"TOPIC/t/LITERAL/User:alice/*/READ/ALLOW",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("described all:\n got %q\nwant %q", got, want)
	}

	// MATCH selects what applies to a resource: prefixes and the wildcard.
	match := kadm.NewACLs().Topics("payments").ResourcePatternType(kadm.ACLPatternMatch).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	got = describedKeys(t, adm, match)
	want = []string{"TOPIC/*/LITERAL/User:*/*/DELETE/DENY", "TOPIC/pay/PREFIXED/User:bob/10.0.0.1/WRITE/ALLOW"}
	if !slices.Equal(got, want) {
		t.Fatalf("described MATCH payments:\n got %q\nwant %q", got, want)
	}
	// A literal filter on "payments" matches nothing.
	lit := kadm.NewACLs().Topics("payments").ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	if got = describedKeys(t, adm, lit); len(got) != 0 {
		t.Fatalf("described LITERAL payments: %q, want none", got)
	}

	// Delete everything of alice's.
	delAlice := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny).
		Allow("User:alice").AllowHosts()
	dres, err := adm.DeleteACLs(ctx, delAlice)
	if err != nil {
		t.Fatalf("delete acls: %v", err)
	}
	deleted := 0
	for _, r := range dres {
		if r.Err != nil {
			t.Fatalf("delete filter: %v (%s)", r.Err, r.ErrMessage)
		}
		deleted += len(r.Deleted)
	}
	if deleted != 4 {
		t.Fatalf("deleted %d acls of alice, want 4: %+v", deleted, dres)
	}
	got = describedKeys(t, adm, all)
	want = []string{"TOPIC/*/LITERAL/User:*/*/DELETE/DENY", "TOPIC/pay/PREFIXED/User:bob/10.0.0.1/WRITE/ALLOW"}
	if !slices.Equal(got, want) {
		t.Fatalf("described after delete:\n got %q\nwant %q", got, want)
	}
}

func TestCreateACLsValidation(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, withAuthorizer(anonymous))
	cl := newClient(t, b)
	ctx := testCtx(t)
	base := func() kmsg.CreateACLsRequestCreation {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, "t", "User:alice", "*"
		c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		return c
	}
	tests := []struct {
		name string
		mod  func(*kmsg.CreateACLsRequestCreation)
		want *kerr.Error
	}{
		{"ok", func(*kmsg.CreateACLsRequestCreation) {}, nil},
		{"prefixed ok", func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypePrefixed }, nil},
		{"cluster ok", func(c *kmsg.CreateACLsRequestCreation) {
			c.ResourceType, c.ResourceName = kmsg.ACLResourceTypeCluster, "kafka-cluster"
		}, nil},
		{"cluster misnamed", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceType = kmsg.ACLResourceTypeCluster }, kerr.InvalidRequest},
		{"empty name", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceName = "" }, kerr.InvalidRequest},
		{"principal without type", func(c *kmsg.CreateACLsRequestCreation) { c.Principal = "alice" }, kerr.InvalidRequest},
		{"empty host", func(c *kmsg.CreateACLsRequestCreation) { c.Host = "" }, kerr.InvalidRequest},
		// Filter-only codes fail the whole request, as in Kafka.
		{"resource any", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceType = kmsg.ACLResourceTypeAny }, kerr.UnknownServerError},
		{"resource unknown code", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceType = 42 }, kerr.UnknownServerError},
		{"pattern match", func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch }, kerr.UnknownServerError},
		{"pattern any", func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypeAny }, kerr.UnknownServerError},
		{"operation any", func(c *kmsg.CreateACLsRequestCreation) { c.Operation = kmsg.ACLOperationAny }, kerr.UnknownServerError},
		{"operation unknown", func(c *kmsg.CreateACLsRequestCreation) { c.Operation = 99 }, kerr.UnknownServerError},
		{"permission any", func(c *kmsg.CreateACLsRequestCreation) { c.PermissionType = kmsg.ACLPermissionTypeAny }, kerr.UnknownServerError},
	}
	codeOf := func(e *kerr.Error) int16 {
		if e == nil {
			return 0
		}
		return e.Code
	}
	// One request per case, then all in one: a valid creation next to a
	// request-failing one fails too, and the request stores nothing.
	all := kmsg.NewPtrCreateACLsRequest()
	for _, tt := range tests {
		c := base()
		tt.mod(&c)
		all.Creations = append(all.Creations, c)
		req := kmsg.NewPtrCreateACLsRequest()
		req.Creations = []kmsg.CreateACLsRequestCreation{c}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Results) != 1 {
			t.Fatalf("%s: %v, %+v", tt.name, err, resp)
		}
		if got := resp.Results[0].ErrorCode; got != codeOf(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, kerr.ErrorForCode(got), tt.want)
		}
	}
	if n := len(b.node.State().ACLs); n != 3 {
		t.Fatalf("%d acls stored, want the 3 valid ones", n)
	}
	revokeACLs(t, b, b.node.State().SortedACLs()...)
	resp, err := all.RequestWith(ctx, cl)
	if err != nil || len(resp.Results) != len(tests) {
		t.Fatalf("create acls: %v, %+v", err, resp)
	}
	for i, r := range resp.Results {
		if r.ErrorCode != kerr.UnknownServerError.Code {
			t.Errorf("%s in a failing request: got %v, want UNKNOWN_SERVER_ERROR", tests[i].name, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if n := len(b.node.State().ACLs); n != 0 {
		t.Fatalf("%d acls stored by a failed request", n)
	}
}

func TestACLAPIsNeedClusterAccess(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, withAuthorizer())
	cl := newClient(t, b)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	builder := kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead)
	all := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()

	res, err := adm.CreateACLs(ctx, builder)
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("create without ALTER on cluster: %v %+v", err, res)
	}
	if dres, err := adm.DescribeACLs(ctx, all); err != nil || len(dres) != 1 || !errors.Is(dres[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("describe without DESCRIBE on cluster: %v %+v", err, dres)
	}
	dres, err := adm.DeleteACLs(ctx, all)
	if err != nil || len(dres) != 1 || !errors.Is(dres[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("delete without ALTER on cluster: %v %+v", err, dres)
	}

	// ALTER on the cluster allows create and delete, and implies DESCRIBE.
	grantACLs(t, b, anonACL(resCluster, clusterResource, opAlter))
	if res, err := adm.CreateACLs(ctx, builder); err != nil || res[0].Err != nil {
		t.Fatalf("create with ALTER on cluster: %v %+v", err, res)
	}
	if got := describedKeys(t, adm, all); len(got) != 2 {
		t.Fatalf("described %q, want the 2 bindings", got)
	}
}

func TestACLFilterMatches(t *testing.T) {
	str := func(s string) *string { return &s }
	lit := acl(resTopic, "orders", patLiteral, "User:alice", opRead, permAllow)
	star := acl(resTopic, "*", patLiteral, "User:alice", opRead, permAllow)
	pre := acl(resTopic, "ord", patPrefixed, "User:alice", opRead, permAllow, "10.0.0.1")
	anyF := aclFilter{resourceType: aclAny, patternType: aclAny, operation: aclAny, permission: aclAny}
	tests := []struct {
		name string
		mod  func(*aclFilter)
		acl  raft.ACL
		want bool
	}{
		{"any matches literal", func(*aclFilter) {}, lit, true},
		{"any matches prefixed", func(*aclFilter) {}, pre, true},
		{"type", func(f *aclFilter) { f.resourceType = resGroup }, lit, false},
		{"any pattern exact name", func(f *aclFilter) { f.name = str("orders") }, lit, true},
		{"any pattern does not expand wildcard", func(f *aclFilter) { f.name = str("orders") }, star, false},
		{"any pattern does not expand prefix", func(f *aclFilter) { f.name = str("orders") }, pre, false},
		{"literal pattern", func(f *aclFilter) { f.patternType = patLiteral }, pre, false},
		{"prefixed pattern by name", func(f *aclFilter) { f.patternType, f.name = patPrefixed, str("ord") }, pre, true},
		{"match literal", func(f *aclFilter) { f.patternType, f.name = patMatch, str("orders") }, lit, true},
		{"match wildcard", func(f *aclFilter) { f.patternType, f.name = patMatch, str("orders") }, star, true},
		{"match prefix", func(f *aclFilter) { f.patternType, f.name = patMatch, str("orders") }, pre, true},
		{"match prefix too long", func(f *aclFilter) { f.patternType, f.name = patMatch, str("or") }, pre, false},
		{"match other literal", func(f *aclFilter) { f.patternType, f.name = patMatch, str("order") }, lit, false},
		{"principal", func(f *aclFilter) { f.principal = str("User:bob") }, lit, false},
		{"principal is exact", func(f *aclFilter) { f.principal = str("User:*") }, lit, false},
		{"host", func(f *aclFilter) { f.host = str("10.0.0.1") }, pre, true},
		{"host mismatch", func(f *aclFilter) { f.host = str("*") }, pre, false},
		{"operation", func(f *aclFilter) { f.operation = opWrite }, lit, false},
		{"operation is exact", func(f *aclFilter) { f.operation = opDescribe }, lit, false},
		{"permission", func(f *aclFilter) { f.permission = permDeny }, lit, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := anyF
			tt.mod(&f)
			if got := f.matches(tt.acl); got != tt.want {
				t.Fatalf("%+v matches %+v = %v, want %v", f, tt.acl, got, tt.want)
			}
		})
	}
}
