package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/integration/harness"
)

// toolACLs is kafka-acls (Kafka 4.x main class).
const toolACLs harness.Tool = "org.apache.kafka.tools.AclCommand"

// TestACLsCLI runs kafka-acls --add, --list and --remove --force against
// Apache Kafka 4.3.1 with the StandardAuthorizer and against Strom with
// --authorizer, both with User:ANONYMOUS (the tool's and the brokers' own
// PLAINTEXT principal) as super user, and requires the same listings from
// both after every step (lines compared as sets: the tools print resources
// in the broker's iteration order).
func TestACLsCLI(t *testing.T) {
	v := harness.DefaultKafkaVersion
	kafka := harness.StartKafka(t,
		harness.BrokerConfig("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
		harness.BrokerConfig("super.users", "User:ANONYMOUS"))
	strom := harness.StartStrom(t, harness.StromArgs("--authorizer", "--super-users", "User:ANONYMOUS"))

	steps := []struct {
		name string
		args []string
		list bool // compare the tool's output (a listing)
	}{
		{"add read", []string{"--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"}, false},
		{"add prefixed deny", []string{"--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "Write",
			"--topic", "pay", "--resource-pattern-type", "prefixed"}, false},
		{"add consumer", []string{"--add", "--allow-principal", "User:carol", "--consumer", "--topic", "orders", "--group", "g"}, false},
		{"add cluster", []string{"--add", "--allow-principal", "User:ops", "--operation", "Describe", "--cluster"}, false},
		{"add transactional", []string{"--add", "--allow-principal", "User:alice", "--producer", "--topic", "t", "--transactional-id", "tx"}, false},
		{"list all", []string{"--list"}, true},
		{"list topic t", []string{"--list", "--topic", "t"}, true},
		{"list by principal", []string{"--list", "--principal", "User:alice"}, true},
		{"list match payments", []string{"--list", "--topic", "payments", "--resource-pattern-type", "match"}, true},
		{"remove read", []string{"--remove", "--force", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"}, false},
		{"remove group acls", []string{"--remove", "--force", "--group", "g"}, false},
		{"list after remove", []string{"--list"}, true},
	}
	for _, st := range steps {
		outs := map[string][]string{}
		// Kafka's broker learns ACLs from the metadata log shortly after the
		// controller commits them: a listing that differs is taken again
		// (at most three times) before it counts.
		for attempt := 0; attempt < 3; attempt++ {
			for name, c := range map[string]harness.Cluster{"kafka": kafka, "strom": strom} {
				args := append([]string{"--bootstrap-server", c.Bootstrap()}, st.args...)
				outs[name] = aclLines(harness.RunKafkaTool(t, v, toolACLs, args...))
			}
			if !st.list || slices.Equal(outs["kafka"], outs["strom"]) {
				break
			}
		}
		if st.list && !slices.Equal(outs["kafka"], outs["strom"]) {
			t.Fatalf("%s: listings differ\nkafka:\n%s\nstrom:\n%s", st.name, strings.Join(outs["kafka"], "\n"), strings.Join(outs["strom"], "\n"))
		}
		if st.list && len(outs["strom"]) == 0 && st.name != "list match payments" {
			t.Fatalf("%s: empty listing", st.name)
		}
	}
	// The last listing holds bob's deny, carol's topic ACLs, ops' cluster
	// ACL and alice's producer ACLs, but neither alice's READ nor group g.
	last := strings.Join(aclLines(harness.RunKafkaTool(t, v, toolACLs, "--bootstrap-server", strom.Bootstrap(), "--list")), "\n")
	for _, want := range []string{"principal=User:bob, host=10.0.0.1, operation=WRITE, permissionType=DENY",
		"resourceType=CLUSTER, name=kafka-cluster", "resourceType=TRANSACTIONAL_ID, name=tx"} {
		if !strings.Contains(last, want) {
			t.Fatalf("final listing lacks %q:\n%s", want, last)
		}
	}
	for _, gone := range []string{"principal=User:alice, host=*, operation=READ", "resourceType=GROUP"} {
		if strings.Contains(last, gone) {
			t.Fatalf("final listing still has %q:\n%s", gone, last)
		}
	}
}

// aclLines returns the non-blank lines of a kafka-acls output, trimmed and
// sorted.
func aclLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// TestACLEnforcement sends the same requests to Apache Kafka 4.3.1 and to
// Strom, both with the authorizer on, no super users and
// allow.everyone.if.no.acl.found (so the brokers' own PLAINTEXT traffic,
// which touches no resource with ACLs, keeps working), and requires the
// same error codes. The client is User:ANONYMOUS; ACLs for another user on
// a topic and a group close those resources to it, while resources without
// ACLs stay open.
func TestACLEnforcement(t *testing.T) {
	kafka := harness.StartKafka(t,
		harness.BrokerConfig("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
		harness.BrokerConfig("allow.everyone.if.no.acl.found", "true"))
	strom := harness.StartStrom(t, harness.StromArgs("--authorizer", "--allow-everyone-if-no-acl-found"))
	got := map[string]map[string]string{}
	for name, c := range map[string]harness.Cluster{"kafka": kafka, "strom": strom} {
		got[name] = aclEnforcementScenario(t, c)
	}
	keys := slices.Sorted(maps.Keys(got["kafka"]))
	if len(keys) == 0 {
		t.Fatal("no steps recorded")
	}
	for _, k := range keys {
		t.Logf("%s: %s", k, got["kafka"][k])
		if got["kafka"][k] != got["strom"][k] {
			t.Errorf("%s: kafka %s, strom %s", k, got["kafka"][k], got["strom"][k])
		}
	}
	// The scenario must have exercised denials, not only successes. (The
	// deletes succeed on both: the cluster resource has no ACL, so DELETE
	// on it is allowed to everyone, which allows deleting any topic.)
	for _, k := range []string{"produce locked", "fetch locked", "metadata locked", "commit go locked", "produce pre-x", "describe configs pre-x"} {
		if got["strom"][k] != kerr.TopicAuthorizationFailed.Message {
			t.Errorf("%s: %s, want TOPIC_AUTHORIZATION_FAILED", k, got["strom"][k])
		}
	}
	if got["strom"]["metadata lists locked"] != "" {
		t.Error("metadata lists locked")
	}
}

// aclEnforcementScenario runs the steps of TestACLEnforcement against c and
// returns each step's error name ("NONE" for success).
func aclEnforcementScenario(t *testing.T, c harness.Cluster) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vs := kversion.V4_0_0()
	vs.SetMaxKeyVersion(0, 12) // Produce by topic name
	vs.SetMaxKeyVersion(1, 12) // Fetch by topic name
	vs.SetMaxKeyVersion(8, 9)  // OffsetCommit by topic name
	cl := newClient(t, c, kgo.MaxVersions(vs), kgo.DisableIdempotentWrite(), kgo.RecordRetries(2),
		kgo.RetryTimeout(5*time.Second))
	adm := kadm.NewClient(cl)
	out := map[string]string{}
	code := func(step string, v int16) { out[step] = codeString(v) }
	errStr := func(step string, err error) {
		var ke *kerr.Error
		switch {
		case err == nil:
			out[step] = "NONE"
		case errors.As(err, &ke):
			out[step] = ke.Message
		default:
			t.Fatalf("%s: %v", step, err)
		}
	}
	// Kafka's brokers learn new ACLs from the metadata log after the
	// controller committed them: wait (bounded) until this broker describes
	// n bindings, so it also enforces them.
	allACLs := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	syncACLs := func(n int) {
		t.Helper()
		have := -1
		for range 200 {
			res, err := adm.DescribeACLs(ctx, allACLs)
			if err == nil && len(res) == 1 && res[0].Err == nil {
				if have = len(res[0].Described); have == n {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("broker describes %d ACL bindings, want %d", have, n)
	}
	for _, topic := range []string{"open", "locked"} {
		createTopic(ctx, t, adm, topic, 1, 1, nil)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("locked").Groups("gl").Operations(kadm.OpAll))
	if err != nil {
		t.Fatalf("create acls: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create acl: %v", r.Err)
		}
	}
	syncACLs(2)

	// Metadata: listing hides locked; naming it is denied.
	md := kmsg.NewPtrMetadataRequest()
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range mresp.Topics {
		if mt.Topic != nil && (*mt.Topic == "open" || *mt.Topic == "locked") {
			out["metadata lists "+*mt.Topic] = "yes"
		}
	}
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("locked")}, {Topic: kmsg.StringPtr("open")}}
	if mresp, err = md.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	for _, mt := range mresp.Topics {
		code("metadata "+*mt.Topic, mt.ErrorCode)
	}

	for _, topic := range []string{"open", "locked"} {
		errStr("produce "+topic, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr())

		f := kmsg.NewPtrFetchRequest()
		f.ReplicaID, f.MaxBytes, f.SessionEpoch = -1, 1<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LastFetchedEpoch = 1<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		fresp, err := f.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		code("fetch "+topic, fresp.Topics[0].Partitions[0].ErrorCode)

		lo := kmsg.NewPtrListOffsetsRequest()
		lo.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		loresp, err := cl.Broker(1).Request(ctx, lo)
		if err != nil {
			t.Fatal(err)
		}
		code("list offsets "+topic, loresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode)
	}

	for _, group := range []string{"go", "gl"} {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = group, []string{group}
		// Kafka creates __consumer_offsets on the first lookup and answers
		// COORDINATOR_NOT_AVAILABLE meanwhile: retry that (bounded).
		var fcresp *kmsg.FindCoordinatorResponse
		for range 100 {
			r, err := cl.Broker(1).Request(ctx, fc)
			if err != nil {
				t.Fatal(err)
			}
			fcresp = r.(*kmsg.FindCoordinatorResponse)
			if e := fcresp.Coordinators[0].ErrorCode; e != kerr.CoordinatorNotAvailable.Code && e != kerr.CoordinatorLoadInProgress.Code {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		code("find coordinator "+group, fcresp.Coordinators[0].ErrorCode)
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation = group, -1
		for _, topic := range []string{"open", "locked"} {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = 0
			rt.Partitions = append(rt.Partitions, rp)
			oc.Topics = append(oc.Topics, rt)
		}
		// Straight to the one broker: kgo would look the coordinator up
		// first and stop at its error.
		var ocresp *kmsg.OffsetCommitResponse
		for range 100 {
			r, err := cl.Broker(1).Request(ctx, oc)
			if err != nil {
				t.Fatal(err)
			}
			ocresp = r.(*kmsg.OffsetCommitResponse)
			if !slices.ContainsFunc(ocresp.Topics, func(rt kmsg.OffsetCommitResponseTopic) bool {
				e := rt.Partitions[0].ErrorCode
				return e == kerr.NotCoordinator.Code || e == kerr.CoordinatorLoadInProgress.Code
			}) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, rt := range ocresp.Topics {
			code("commit "+group+" "+rt.Topic, rt.Partitions[0].ErrorCode)
		}
	}

	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, topic := range []string{"open", "locked"} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		dc.Resources = append(dc.Resources, r)
	}
	dcresp, err := dc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range dcresp.Resources {
		code("describe configs "+r.ResourceName, r.ErrorCode)
	}

	// Group listings and descriptions.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"go", "gl"}
	if r, err := cl.Broker(1).Request(ctx, dg); err != nil {
		t.Fatal(err)
	} else {
		for _, g := range r.(*kmsg.DescribeGroupsResponse).Groups {
			code("describe group "+g.Group, g.ErrorCode)
		}
	}
	lg, err := cl.Broker(1).Request(ctx, kmsg.NewPtrListGroupsRequest())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range lg.(*kmsg.ListGroupsResponse).Groups {
		if g.Group == "go" || g.Group == "gl" {
			out["list groups has "+g.Group] = "yes"
		}
	}

	// A transactional id with an ACL for someone else.
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").TransactionalIDs("txl").Operations(kadm.OpAll)); err != nil {
		t.Fatal(err)
	}
	syncACLs(3)
	for _, id := range []string{"txl"} {
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr(id), 60000
		r, err := cl.Broker(1).Request(ctx, ip)
		if err != nil {
			t.Fatal(err)
		}
		code("init producer id "+id, r.(*kmsg.InitProducerIDResponse).ErrorCode)
	}

	// Group membership and transaction APIs on the closed group and id.
	one := func(step string, req kmsg.Request, codeOf func(kmsg.Response) int16) {
		r, err := cl.Broker(1).Request(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		code(step, codeOf(r))
	}
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = "gl", 30000, 30000, "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	one("join group gl", jg, func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode })
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "gl", "m"
	one("heartbeat gl", hb, func(r kmsg.Response) int16 { return r.(*kmsg.HeartbeatResponse).ErrorCode })
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID, sg.ProtocolType, sg.Protocol = "gl", "m", kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	one("sync group gl", sg, func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode })
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "gl", "m"
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	one("leave group gl", lv, func(r kmsg.Response) int16 { return r.(*kmsg.LeaveGroupResponse).ErrorCode })
	of := kmsg.NewPtrOffsetFetchRequest()
	ofg := kmsg.NewOffsetFetchRequestGroup()
	ofg.Group = "go"
	for _, topic := range []string{"open", "locked"} {
		ofg.Topics = append(ofg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: topic, Partitions: []int32{0}})
	}
	of.Groups = []kmsg.OffsetFetchRequestGroup{ofg}
	if r, err := cl.Broker(1).Request(ctx, of); err != nil {
		t.Fatal(err)
	} else {
		for _, g := range r.(*kmsg.OffsetFetchResponse).Groups {
			code("offset fetch "+g.Group, g.ErrorCode)
			for _, rt := range g.Topics {
				code("offset fetch "+g.Group+" "+rt.Topic, rt.Partitions[0].ErrorCode)
			}
		}
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.Group = "txl", "go"
	one("add offsets txl", ao, func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode })
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID = "txl"
	one("end txn txl", et, func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode })
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group = "txl", "go"
	toc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "open", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0}}}}
	one("txn offset commit txl", toc, func(r kmsg.Response) int16 {
		return r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	})
	dtx := kmsg.NewPtrDescribeTransactionsRequest()
	dtx.TransactionalIDs = []string{"txl"}
	one("describe transactions txl", dtx, func(r kmsg.Response) int16 {
		return r.(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode
	})
	dgr := kmsg.NewPtrDeleteGroupsRequest()
	dgr.Groups = []string{"gl"}
	one("delete group gl", dgr, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode })

	// CreateAcls validation, one creation per case (none on the cluster
	// resource: an ACL there would close it to the brokers' own traffic).
	cr := kmsg.NewPtrCreateACLsRequest()
	cases := []struct {
		name string
		mod  func(*kmsg.CreateACLsRequestCreation)
	}{
		{"valid", func(*kmsg.CreateACLsRequestCreation) {}},
		{"prefixed", func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypePrefixed }},
		{"cluster misnamed", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceType = kmsg.ACLResourceTypeCluster }},
		{"empty name", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceName = "" }},
		{"resource any", func(c *kmsg.CreateACLsRequestCreation) { c.ResourceType = kmsg.ACLResourceTypeAny }},
		{"pattern match", func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch }},
		{"pattern any", func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypeAny }},
		{"operation any", func(c *kmsg.CreateACLsRequestCreation) { c.Operation = kmsg.ACLOperationAny }},
		{"permission any", func(c *kmsg.CreateACLsRequestCreation) { c.PermissionType = kmsg.ACLPermissionTypeAny }},
		{"principal without type", func(c *kmsg.CreateACLsRequestCreation) { c.Principal = "alice" }},
	}
	for _, cc := range cases {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, "valid", "User:alice", "*"
		c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		cc.mod(&c)
		cr.Creations = []kmsg.CreateACLsRequestCreation{c}
		crr, err := cl.Broker(1).Request(ctx, cr)
		if err != nil {
			t.Fatal(err)
		}
		code("create acl "+cc.name, crr.(*kmsg.CreateACLsResponse).Results[0].ErrorCode)
	}
	syncACLs(5) // the valid literal and prefixed creations

	// DescribeAcls and DeleteAcls filters, answers flattened.
	all := allACLs
	match := kadm.NewACLs().Topics("validity").ResourcePatternType(kadm.ACLPatternMatch).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	for name, f := range map[string]*kadm.ACLBuilder{"all": all, "match validity": match} {
		res, err := adm.DescribeACLs(ctx, f)
		if err != nil {
			t.Fatalf("describe acls %s: %v", name, err)
		}
		var lines []string
		for _, r := range res {
			for _, d := range r.Described {
				lines = append(lines, fmt.Sprintf("%s/%s/%s/%s/%s/%s/%s", d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation, d.Permission))
			}
		}
		slices.Sort(lines)
		out["describe acls "+name] = strings.Join(lines, " ")
	}
	del := kadm.NewACLs().Topics("valid").ResourcePatternType(kadm.ACLPatternMatch).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	dres, err := adm.DeleteACLs(ctx, del)
	if err != nil {
		t.Fatalf("delete acls: %v", err)
	}
	var deleted []string
	for _, r := range dres {
		for _, d := range r.Deleted {
			deleted = append(deleted, fmt.Sprintf("%s/%s/%s", d.Type, d.Name, d.Pattern))
		}
	}
	slices.Sort(deleted)
	out["delete acls match valid"] = strings.Join(deleted, " ")
	syncACLs(3)

	// Prefixed, wildcard-principal and host rules: everyone may do
	// anything on pre*, but this client may not write there, nor describe
	// the configs of pre-x from 127.0.0.1.
	createTopic(ctx, t, adm, "pre-x", 1, 1, nil)
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:*").Topics("pre").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll),
		kadm.NewACLs().Deny("User:ANONYMOUS").Topics("pre").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
		kadm.NewACLs().Deny("User:ANONYMOUS").DenyHosts("127.0.0.1").Topics("pre-x").Operations(kadm.OpDescribeConfigs),
	} {
		if _, err := adm.CreateACLs(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	syncACLs(6)
	errStr("produce pre-x", cl.ProduceSync(ctx, &kgo.Record{Topic: "pre-x", Value: []byte("v")}).FirstErr())
	mdo := kmsg.NewPtrMetadataRequest()
	mdo.IncludeTopicAuthorizedOperations = true
	mdo.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("pre-x")}, {Topic: kmsg.StringPtr("open")}}
	mresp, err = mdo.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range mresp.Topics {
		code("metadata "+*mt.Topic, mt.ErrorCode)
		out["authorized operations "+*mt.Topic] = fmt.Sprintf("%b", mt.AuthorizedOperations)
	}
	dcx := kmsg.NewPtrDescribeConfigsRequest()
	rx := kmsg.NewDescribeConfigsRequestResource()
	rx.ResourceType, rx.ResourceName = kmsg.ConfigResourceTypeTopic, "pre-x"
	dcx.Resources = append(dcx.Resources, rx)
	if r, err := dcx.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		code("describe configs pre-x", r.Resources[0].ErrorCode)
	}
	dcl := kmsg.NewPtrDescribeClusterRequest()
	dcl.IncludeClusterAuthorizedOperations = true
	if r, err := dcl.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		out["cluster authorized operations"] = fmt.Sprintf("%b", r.ClusterAuthorizedOperations)
	}
	var ipi *kmsg.InitProducerIDResponse
	for range 100 { // Kafka's producer id manager may still be loading
		r, err := cl.Broker(1).Request(ctx, kmsg.NewPtrInitProducerIDRequest())
		if err != nil {
			t.Fatal(err)
		}
		if ipi = r.(*kmsg.InitProducerIDResponse); ipi.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	code("init idempotent producer", ipi.ErrorCode)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"locked", "open"}
	for _, n := range dt.TopicNames {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		dt.Topics = append(dt.Topics, rt)
	}
	dtresp, err := dt.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range dtresp.Topics {
		code("delete topic "+*rt.Topic, rt.ErrorCode)
	}
	return out
}

// codeString names a Kafka error code ("NONE" for 0).
func codeString(v int16) string {
	if v == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(v).(*kerr.Error); ok {
		return e.Message
	}
	return fmt.Sprint(v)
}
