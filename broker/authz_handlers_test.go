package broker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// The tests below run one broker with the authorizer on and no super
// users; their clients connect as User:ANONYMOUS, and ACLs for it are
// written straight into the raft state (grantACLs) between requests.

// authzBroker starts a broker with ACL checks on and returns it with a
// client for raw requests sent to it directly (no kgo sharding).
func authzBroker(t *testing.T, opts ...kgo.Opt) (*Broker, *kgo.Broker) {
	t.Helper()
	b := startTestBroker(t, func(c *Config) {
		withAuthorizer()(c)
		c.GroupInitialRebalanceDelay = 0
	})
	cl := newClient(t, b, opts...)
	return b, cl.Broker(int(b.cfg.NodeID))
}

// seedTopic creates a one-partition topic without going through the
// (authorized) CreateTopics API.
func seedTopic(t *testing.T, b *Broker, name string) *raft.Topic {
	t.Helper()
	tp, e, msg := b.createTopic(context.Background(), name, 1, 1, nil, nil, false)
	if e != nil {
		t.Fatalf("create topic %s: %v %s", name, e, msg)
	}
	return tp
}

// send issues req to the broker and fails the test on a transport error.
func authzSend[R kmsg.Response](t *testing.T, br *kgo.Broker, req kmsg.Request) R {
	t.Helper()
	resp, err := br.Request(testCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func authzProduceReq(tp *raft.Topic) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = tp.Name, tp.ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = mkBatch(1, time.Now().UnixMilli(), nil)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func authzFetchReq(tp *raft.Topic, replica int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID = replica, replica
	req.MaxBytes, req.SessionEpoch = 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = tp.Name, tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func authzMetadataReq(topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	req.IncludeTopicAuthorizedOperations = true
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, n := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, mt)
	}
	return req
}

func TestAuthzProduceFetchMetadata(t *testing.T) {
	t.Parallel()
	b, br := authzBroker(t)
	tp := seedTopic(t, b, "t")
	seedTopic(t, b, "secret")

	// Nothing granted: idempotent producers are refused (KIP-679 needs
	// IDEMPOTENT_WRITE on the cluster or WRITE on some topic).
	pid := authzSend[*kmsg.InitProducerIDResponse](t, br, kmsg.NewPtrInitProducerIDRequest())
	wantCode(t, "init producer id without rights", pid.ErrorCode, kerr.ClusterAuthorizationFailed)
	p := authzSend[*kmsg.ProduceResponse](t, br, authzProduceReq(tp))
	wantCode(t, "produce without WRITE", p.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	grantACLs(t, b, anonACL(resTopic, "t", opWrite))
	p = authzSend[*kmsg.ProduceResponse](t, br, authzProduceReq(tp))
	wantCode(t, "produce with WRITE", p.Topics[0].Partitions[0].ErrorCode, nil)
	pid = authzSend[*kmsg.InitProducerIDResponse](t, br, kmsg.NewPtrInitProducerIDRequest())
	wantCode(t, "init producer id with WRITE on a topic", pid.ErrorCode, nil)

	// WRITE implies DESCRIBE: listing shows t and hides secret; naming
	// secret is TOPIC_AUTHORIZATION_FAILED.
	md := authzSend[*kmsg.MetadataResponse](t, br, authzMetadataReq())
	var names []string
	for _, mt := range md.Topics {
		names = append(names, *mt.Topic)
	}
	if !slices.Equal(names, []string{"t"}) {
		t.Fatalf("metadata lists %q, want only t", names)
	}
	if got, want := md.Topics[0].AuthorizedOperations, int32(1<<opWrite|1<<opDescribe); got != want {
		t.Fatalf("authorized operations of t = %b, want %b", got, want)
	}
	md = authzSend[*kmsg.MetadataResponse](t, br, authzMetadataReq("secret"))
	wantCode(t, "metadata of secret", md.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Auto-creation needs CREATE on the cluster or the topic.
	grantACLs(t, b, anonACL(resTopic, "auto", opDescribe))
	md = authzSend[*kmsg.MetadataResponse](t, br, authzMetadataReq("auto"))
	wantCode(t, "auto-create without CREATE", md.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	if _, ok := b.node.State().Topics["auto"]; ok {
		t.Fatal("topic auto created without CREATE")
	}
	grantACLs(t, b, anonACL(resTopic, "auto", opCreate))
	md = authzSend[*kmsg.MetadataResponse](t, br, authzMetadataReq("auto"))
	wantCode(t, "auto-create with CREATE", md.Topics[0].ErrorCode, nil)

	// Fetch needs READ; a follower's fetch CLUSTER_ACTION.
	f := authzSend[*kmsg.FetchResponse](t, br, authzFetchReq(tp, -1))
	wantCode(t, "fetch without READ", f.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	grantACLs(t, b, anonACL(resTopic, "t", opRead))
	f = authzSend[*kmsg.FetchResponse](t, br, authzFetchReq(tp, -1))
	wantCode(t, "fetch with READ", f.Topics[0].Partitions[0].ErrorCode, nil)
	if len(f.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatal("fetch with READ returned no records")
	}
	f = authzSend[*kmsg.FetchResponse](t, br, authzFetchReq(tp, 7))
	wantCode(t, "replica fetch without CLUSTER_ACTION", f.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// ListOffsets needs DESCRIBE; DeleteRecords DELETE.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	for _, n := range []string{"t", "secret"} {
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = n
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
	}
	los := authzSend[*kmsg.ListOffsetsResponse](t, br, lo)
	wantCode(t, "list offsets of t", los.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "list offsets of secret", los.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "t"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = -1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	drs := authzSend[*kmsg.DeleteRecordsResponse](t, br, dr)
	wantCode(t, "delete records without DELETE", drs.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Configs: DESCRIBE_CONFIGS on the topic, on the cluster for brokers.
	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "t"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		dc.Resources = append(dc.Resources, rr)
	}
	dcs := authzSend[*kmsg.DescribeConfigsResponse](t, br, dc)
	wantCode(t, "describe topic configs", dcs.Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "describe broker configs", dcs.Resources[1].ErrorCode, kerr.ClusterAuthorizationFailed)
	grantACLs(t, b, anonACL(resTopic, "t", opAlterConfigs))
	dcs = authzSend[*kmsg.DescribeConfigsResponse](t, br, dc)
	wantCode(t, "describe topic configs with ALTER_CONFIGS", dcs.Resources[0].ErrorCode, nil)
}

func TestAuthzTopicAdmin(t *testing.T) {
	t.Parallel()
	b, br := authzBroker(t)
	create := func() *kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 1, 1
		req.Topics = append(req.Topics, rt)
		return &authzSend[*kmsg.CreateTopicsResponse](t, br, req).Topics[0]
	}
	del := func() int16 {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{"new"}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr("new")
		req.Topics = append(req.Topics, rt)
		return authzSend[*kmsg.DeleteTopicsResponse](t, br, req).Topics[0].ErrorCode
	}
	wantCode(t, "create without CREATE", create().ErrorCode, kerr.TopicAuthorizationFailed)
	grantACLs(t, b, anonACL(resCluster, clusterResource, opCreate))
	ct := create()
	wantCode(t, "create with CREATE on the cluster", ct.ErrorCode, nil)
	wantCode(t, "configs without DESCRIBE_CONFIGS", ct.ConfigErrorCode, kerr.TopicAuthorizationFailed)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "new", 2
	cp.Topics = append(cp.Topics, cpt)
	wantCode(t, "create partitions without ALTER", authzSend[*kmsg.CreatePartitionsResponse](t, br, cp).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)

	wantCode(t, "delete without DELETE", del(), kerr.TopicAuthorizationFailed)
	grantACLs(t, b, anonACL(resTopic, "new", opDelete))
	wantCode(t, "delete with DELETE", del(), nil)
	// Existence is revealed only to those who may describe the topic.
	wantCode(t, "delete a deleted topic with DELETE", del(), kerr.UnknownTopicOrPartition)
	revokeACLs(t, b, anonACL(resTopic, "new", opDelete))
	wantCode(t, "delete a deleted topic without DESCRIBE", del(), kerr.TopicAuthorizationFailed)

	seedTopic(t, b, "cfg")
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iar := kmsg.NewIncrementalAlterConfigsRequestResource()
	iar.ResourceType, iar.ResourceName = kmsg.ConfigResourceTypeTopic, "cfg"
	iac.Resources = append(iac.Resources, iar)
	wantCode(t, "alter configs without ALTER_CONFIGS", authzSend[*kmsg.IncrementalAlterConfigsResponse](t, br, iac).Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	grantACLs(t, b, anonACL(resTopic, "cfg", opAlterConfigs))
	wantCode(t, "alter configs with ALTER_CONFIGS", authzSend[*kmsg.IncrementalAlterConfigsResponse](t, br, iac).Resources[0].ErrorCode, nil)

	apa := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	apt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	apt.Topic = "cfg"
	app := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	app.Replicas = []int32{1}
	apt.Partitions = append(apt.Partitions, app)
	apa.Topics = append(apa.Topics, apt)
	apas := authzSend[*kmsg.AlterPartitionAssignmentsResponse](t, br, apa)
	wantCode(t, "reassign without ALTER", apas.ErrorCode, kerr.ClusterAuthorizationFailed)
	wantCode(t, "reassign partition without ALTER", apas.Topics[0].Partitions[0].ErrorCode, kerr.ClusterAuthorizationFailed)

	// Cluster-level admin APIs.
	el := kmsg.NewPtrElectLeadersRequest()
	wantCode(t, "elect leaders without ALTER", authzSend[*kmsg.ElectLeadersResponse](t, br, el).ErrorCode, kerr.ClusterAuthorizationFailed)
	ub := kmsg.NewPtrUnregisterBrokerRequest()
	ub.BrokerID = 9
	wantCode(t, "unregister broker without ALTER", authzSend[*kmsg.UnregisterBrokerResponse](t, br, ub).ErrorCode, kerr.ClusterAuthorizationFailed)
	lr := kmsg.NewPtrListPartitionReassignmentsRequest()
	wantCode(t, "list reassignments without DESCRIBE", authzSend[*kmsg.ListPartitionReassignmentsResponse](t, br, lr).ErrorCode, kerr.ClusterAuthorizationFailed)
	ld := kmsg.NewPtrDescribeLogDirsRequest()
	lds := authzSend[*kmsg.DescribeLogDirsResponse](t, br, ld)
	if lds.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(lds.Dirs) != 0 {
		t.Fatalf("describe log dirs without DESCRIBE: %v, %d dirs", kerr.ErrorForCode(lds.ErrorCode), len(lds.Dirs))
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	dcs := authzSend[*kmsg.DescribeClusterResponse](t, br, dc)
	if dcs.ErrorCode != 0 || dcs.ClusterAuthorizedOperations != 0 {
		t.Fatalf("describe cluster without DESCRIBE: %v, operations %b", kerr.ErrorForCode(dcs.ErrorCode), dcs.ClusterAuthorizedOperations)
	}
	grantACLs(t, b, anonACL(resCluster, clusterResource, opAlter))
	dcs = authzSend[*kmsg.DescribeClusterResponse](t, br, dc)
	if want := int32(1<<opCreate | 1<<opAlter | 1<<opDescribe); dcs.ClusterAuthorizedOperations != want {
		t.Fatalf("cluster authorized operations %b, want %b", dcs.ClusterAuthorizedOperations, want)
	}
	wantCode(t, "list reassignments with ALTER", authzSend[*kmsg.ListPartitionReassignmentsResponse](t, br, lr).ErrorCode, nil)
	wantCode(t, "unregister an unknown broker with ALTER", authzSend[*kmsg.UnregisterBrokerResponse](t, br, ub).ErrorCode, kerr.BrokerIDNotRegistered)
}

func TestAuthzGroups(t *testing.T) {
	t.Parallel()
	b, br := authzBroker(t)
	ids := map[string][16]byte{"t": seedTopic(t, b, "t").ID, "secret": seedTopic(t, b, "secret").ID}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
	fcs := authzSend[*kmsg.FindCoordinatorResponse](t, br, fc)
	wantCode(t, "find coordinator without DESCRIBE", fcs.Coordinators[0].ErrorCode, kerr.GroupAuthorizationFailed)

	commit := func(group string, topics ...string) *kmsg.OffsetCommitResponse {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		for _, n := range topics {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = n, ids[n]
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = 1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		return authzSend[*kmsg.OffsetCommitResponse](t, br, req)
	}
	oc := commit("g", "t")
	wantCode(t, "commit without READ on the group", oc.Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	// SyncGroup v5+ without protocol type and name fails before the
	// authorization check, as in Kafka.
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID = "g", "m"
	wantCode(t, "sync group without protocol", authzSend[*kmsg.SyncGroupResponse](t, br, sg).ErrorCode, kerr.InconsistentGroupProtocol)
	sg.ProtocolType, sg.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	wantCode(t, "sync group without READ", authzSend[*kmsg.SyncGroupResponse](t, br, sg).ErrorCode, kerr.GroupAuthorizationFailed)
	grantACLs(t, b, anonACL(resGroup, "g", opRead), anonACL(resTopic, "t", opRead))
	fcs = authzSend[*kmsg.FindCoordinatorResponse](t, br, fc)
	wantCode(t, "find coordinator with READ", fcs.Coordinators[0].ErrorCode, nil)
	oc = commit("g", "t", "secret")
	wantCode(t, "commit t", oc.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "commit secret", oc.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// A second group the client cannot see, made while it could.
	grantACLs(t, b, anonACL(resGroup, "hidden", opRead))
	wantCode(t, "commit to hidden", commit("hidden", "t").Topics[0].Partitions[0].ErrorCode, nil)
	revokeACLs(t, b, anonACL(resGroup, "hidden", opRead))

	of := kmsg.NewPtrOffsetFetchRequest()
	ofg := kmsg.NewOffsetFetchRequestGroup()
	ofg.Group = "g"
	ofg.Topics = nil // all committed offsets
	of.Group, of.Groups = "g", append(of.Groups, ofg)
	ofs := authzSend[*kmsg.OffsetFetchResponse](t, br, of)
	if g := ofs.Groups[0]; g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].TopicID != ids["t"] {
		t.Fatalf("offset fetch of g: %v %+v, want only t", kerr.ErrorForCode(g.ErrorCode), g.Topics)
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g", "hidden"}
	dg.IncludeAuthorizedOperations = true
	dgs := authzSend[*kmsg.DescribeGroupsResponse](t, br, dg)
	wantCode(t, "describe g", dgs.Groups[0].ErrorCode, nil)
	if want := int32(1<<opRead | 1<<opDescribe); dgs.Groups[0].AuthorizedOperations != want {
		t.Fatalf("group authorized operations %b, want %b", dgs.Groups[0].AuthorizedOperations, want)
	}
	wantCode(t, "describe hidden", dgs.Groups[1].ErrorCode, kerr.GroupAuthorizationFailed)

	lg := authzSend[*kmsg.ListGroupsResponse](t, br, kmsg.NewPtrListGroupsRequest())
	if len(lg.Groups) != 1 || lg.Groups[0].Group != "g" {
		t.Fatalf("list groups: %+v, want only g", lg.Groups)
	}
	grantACLs(t, b, anonACL(resCluster, clusterResource, opDescribe))
	lg = authzSend[*kmsg.ListGroupsResponse](t, br, kmsg.NewPtrListGroupsRequest())
	if len(lg.Groups) != 2 {
		t.Fatalf("list groups with DESCRIBE on the cluster: %+v, want g and hidden", lg.Groups)
	}

	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	for _, n := range []string{"t", "secret"} {
		odt := kmsg.NewOffsetDeleteRequestTopic()
		odt.Topic = n
		odt.Partitions = append(odt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
		od.Topics = append(od.Topics, odt)
	}
	wantCode(t, "offset delete without DELETE on the group", authzSend[*kmsg.OffsetDeleteResponse](t, br, od).ErrorCode, kerr.GroupAuthorizationFailed)

	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g848", 0, 10000
	hb.SubscribedTopicNames = []string{"t", "secret"}
	wantCode(t, "consumer heartbeat without READ on the group", authzSend[*kmsg.ConsumerGroupHeartbeatResponse](t, br, hb).ErrorCode, kerr.GroupAuthorizationFailed)
	grantACLs(t, b, anonACL(resGroup, "g848", opRead))
	wantCode(t, "consumer heartbeat subscribing to secret", authzSend[*kmsg.ConsumerGroupHeartbeatResponse](t, br, hb).ErrorCode, kerr.TopicAuthorizationFailed)

	dp := kmsg.NewPtrDescribeProducersRequest()
	for _, n := range []string{"t", "secret"} {
		dpt := kmsg.NewDescribeProducersRequestTopic()
		dpt.Topic, dpt.Partitions = n, []int32{0}
		dp.Topics = append(dp.Topics, dpt)
	}
	dps := authzSend[*kmsg.DescribeProducersResponse](t, br, dp)
	wantCode(t, "describe producers of t", dps.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "describe producers of secret", dps.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	wantCode(t, "delete group without DELETE", authzSend[*kmsg.DeleteGroupsResponse](t, br, del).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	grantACLs(t, b, anonACL(resGroup, "g", opDelete))
	ods := authzSend[*kmsg.OffsetDeleteResponse](t, br, od)
	wantCode(t, "offset delete with DELETE", ods.ErrorCode, nil)
	wantCode(t, "offset delete of t", ods.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "offset delete of secret", ods.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "delete group with DELETE", authzSend[*kmsg.DeleteGroupsResponse](t, br, del).Groups[0].ErrorCode, nil)

	// A real consumer group works with READ on group and topic.
	grantACLs(t, b, anonACL(resGroup, "g2", opRead), anonACL(resTopic, "t", opWrite))
	cl := newClient(t, b, kgo.ConsumerGroup("g2"), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err := newClient(t, b).ProduceSync(testCtx(t), &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	ctx := testCtx(t)
	for got := 0; got == 0; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("consumer group read nothing")
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func TestAuthzTransactions(t *testing.T) {
	t.Parallel()
	// AddPartitionsToTxn v3 is the client form; v4+ is brokers'.
	vs := kversion.V4_0_0()
	vs.SetMaxKeyVersion(24, 3)
	b, br := authzBroker(t, kgo.MaxVersions(vs))
	seedTopic(t, b, "t")
	seedTopic(t, b, "u")

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
	wantCode(t, "init tx without WRITE", authzSend[*kmsg.InitProducerIDResponse](t, br, ip).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKeys = coordinatorTxn, []string{"tx"}
	wantCode(t, "find txn coordinator without DESCRIBE", authzSend[*kmsg.FindCoordinatorResponse](t, br, fc).Coordinators[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	grantACLs(t, b, anonACL(resTxnID, "tx", opWrite), anonACL(resTopic, "t", opWrite))
	wantCode(t, "find txn coordinator with WRITE", authzSend[*kmsg.FindCoordinatorResponse](t, br, fc).Coordinators[0].ErrorCode, nil)
	var ips *kmsg.InitProducerIDResponse
	for range 100 { // the new __transaction_state partition is loading
		if ips = authzSend[*kmsg.InitProducerIDResponse](t, br, ip); ips.ErrorCode != kerr.NotCoordinator.Code && ips.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, "init tx with WRITE", ips.ErrorCode, nil)

	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = "tx", ips.ProducerID, ips.ProducerEpoch
	for _, n := range []string{"t", "u"} {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = n, []int32{0}
		ap.Topics = append(ap.Topics, rt)
	}
	aps := authzSend[*kmsg.AddPartitionsToTxnResponse](t, br, ap)
	wantCode(t, "add allowed partition next to a denied one", aps.Topics[0].Partitions[0].ErrorCode, kerr.OperationNotAttempted)
	wantCode(t, "add denied partition", aps.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	if s := b.txns.describeTxnForTest("tx"); !strings.HasSuffix(s, "parts=[]") {
		t.Fatalf("transaction after a denied add: %s", s)
	}

	// A transactional batch needs WRITE on the request's transactional id.
	txnBatch := func(id *string) *kmsg.ProduceRequest {
		req := authzProduceReq(b.node.State().Topics["t"])
		req.TransactionID = id
		req.Topics[0].Partitions[0].Records = mkBatch(1, time.Now().UnixMilli(), func(h *storage.BatchHeader, _ []storage.Record) {
			h.Attributes |= 0x10
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = ips.ProducerID, ips.ProducerEpoch, 0
		})
		return req
	}
	for _, id := range []*string{nil, kmsg.StringPtr("other")} {
		ps := authzSend[*kmsg.ProduceResponse](t, br, txnBatch(id))
		wantCode(t, "transactional produce without WRITE on the id", ps.Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	}

	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID = "other"
	wantCode(t, "end txn of another id", authzSend[*kmsg.EndTxnResponse](t, br, et).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mkt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mkt.Topic, mkt.Partitions = "t", []int32{0}
	mk.Topics = append(mk.Topics, mkt)
	wm.Markers = append(wm.Markers, mk)
	wantCode(t, "write markers without CLUSTER_ACTION", authzSend[*kmsg.WriteTxnMarkersResponse](t, br, wm).Markers[0].Topics[0].Partitions[0].ErrorCode, kerr.ClusterAuthorizationFailed)

	// A transactional producer works end to end with WRITE on id and topic.
	pcl := newClient(t, b, kgo.TransactionalID("tx2"), kgo.DefaultProduceTopic("t"))
	ctx := testCtx(t)
	err := pcl.BeginTransaction()
	if err == nil {
		err = pcl.ProduceSync(ctx, kgo.StringRecord("denied")).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transactional produce without WRITE on tx2: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
	pcl.Close()
	grantACLs(t, b, anonACL(resTxnID, "tx2", opWrite))
	pcl = newClient(t, b, kgo.TransactionalID("tx2"), kgo.DefaultProduceTopic("t"))
	if err := pcl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := pcl.ProduceSync(ctx, kgo.StringRecord("ok")).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := pcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}

	lt := authzSend[*kmsg.ListTransactionsResponse](t, br, kmsg.NewPtrListTransactionsRequest())
	var ids []string
	for _, s := range lt.TransactionStates {
		ids = append(ids, s.TransactionalID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"tx", "tx2"}) {
		t.Fatalf("listed transactions %q, want tx and tx2", ids)
	}
	// DescribeTransactions hides topics the client may not describe.
	ap.Topics = ap.Topics[:1]
	wantCode(t, "add t", authzSend[*kmsg.AddPartitionsToTxnResponse](t, br, ap).Topics[0].Partitions[0].ErrorCode, nil)
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{"tx", "nope"}
	dts := authzSend[*kmsg.DescribeTransactionsResponse](t, br, dt)
	wantCode(t, "describe tx", dts.TransactionStates[0].ErrorCode, nil)
	wantCode(t, "describe nope", dts.TransactionStates[1].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	if len(dts.TransactionStates[0].Topics) != 1 {
		t.Fatalf("tx lists topics %+v, want t", dts.TransactionStates[0].Topics)
	}
	revokeACLs(t, b, anonACL(resTopic, "t", opWrite))
	if dts = authzSend[*kmsg.DescribeTransactionsResponse](t, br, dt); len(dts.TransactionStates[0].Topics) != 0 {
		t.Fatalf("tx lists topics %+v without DESCRIBE on t, want none", dts.TransactionStates[0].Topics)
	}

	revokeACLs(t, b, anonACL(resTxnID, "tx2", opWrite))
	lt = authzSend[*kmsg.ListTransactionsResponse](t, br, kmsg.NewPtrListTransactionsRequest())
	if len(lt.TransactionStates) != 1 || lt.TransactionStates[0].TransactionalID != "tx" {
		t.Fatalf("listed transactions %+v after revoking tx2, want only tx", lt.TransactionStates)
	}
}

// TestAuthzCluster runs three brokers with the authorizer on and
// User:ANONYMOUS, the principal brokers reach each other as, among the super
// users: replication (follower fetches need CLUSTER_ACTION) and a
// transaction across partitions led by different brokers (markers and the
// broker form of AddPartitionsToTxn need CLUSTER_ACTION) work as without
// ACLs.
func TestAuthzCluster(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, withAuthorizer(anonymous))
	createReplicated(t, c, "acl-r", 3, "2")
	produceSeq(t, c.client(), "acl-r", 0, 30)
	for p := range int32(3) {
		c.waitInSync("acl-r", p, 3)
	}
	pcl := c.client(kgo.TransactionalID("acl-tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	if err := pcl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := range int32(3) {
		recs = append(recs, &kgo.Record{Topic: "acl-r", Partition: p, Value: []byte("txn")})
	}
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := pcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	got := consumeValues(t, c, "acl-r", 33)
	if n := len(got); n != 33 {
		t.Fatalf("read %d records, want 33", n)
	}
}
