// Command gengroupseeds writes the checked-in fuzz seeds of the group
// coordinator: group-API request streams for FuzzRequestPath (files named
// group-*) and __consumer_offsets records for FuzzReplayRecord. Run it from
// the module root: go run ./broker/testdata/gengroupseeds
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const dir = "broker/testdata/fuzz"

func main() {
	reqs := map[string][]byte{}
	var stream []byte
	corr := int32(0)
	add := func(name string, version int16, r kmsg.Request) {
		r.SetVersion(version)
		corr++
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("seed")).AppendRequest(nil, r, corr)
		reqs[name] = frame
		stream = append(stream, frame...)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "fz-group"
	add("group-findcoordinator-v0", 0, fc)
	fc4 := kmsg.NewPtrFindCoordinatorRequest()
	fc4.CoordinatorKeys = []string{"fz-group", "other"}
	add("group-findcoordinator-v4", 4, fc4)

	join := func(member string) *kmsg.JoinGroupRequest {
		j := kmsg.NewPtrJoinGroupRequest()
		j.Group, j.MemberID, j.ProtocolType = "fz-group", member, "consumer"
		j.SessionTimeoutMillis, j.RebalanceTimeoutMillis = 6000, 6000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 1, 0, 4, 'f', 'u', 'z', 'z', 0, 0, 0, 0}
		j.Protocols = append(j.Protocols, p)
		return j
	}
	add("group-joingroup-v9-no-member", 9, join(""))
	add("group-joingroup-v2", 2, join(""))
	add("group-joingroup-v5-unknown", 5, join("seed-unknown"))

	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID, sg.Generation = "fz-group", "seed-unknown", 1
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = "seed-unknown", []byte{0, 0}
	sg.GroupAssignment = append(sg.GroupAssignment, a)
	add("group-syncgroup-v5", 5, sg)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "fz-group", "seed-unknown", 1
	add("group-heartbeat-v4", 4, hb)

	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = "fz-group"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = "seed-unknown"
	lv.Members = append(lv.Members, m)
	add("group-leavegroup-v5", 5, lv)

	commit := func(v int16) *kmsg.OffsetCommitRequest {
		c := kmsg.NewPtrOffsetCommitRequest()
		c.Group, c.Generation = "fz-simple", -1
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic = "fuzz"
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.Metadata = 1, 5, kmsg.StringPtr("m")
		t.Partitions = append(t.Partitions, p)
		c.Topics = append(c.Topics, t)
		return c
	}
	add("group-offsetcommit-v2", 2, commit(2))
	add("group-offsetcommit-v8", 8, commit(8))
	add("group-offsetcommit-v10", 10, commit(10))

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "fz-simple"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "fuzz", []int32{0, 1}
	of.Topics = append(of.Topics, ft)
	add("group-offsetfetch-v1", 1, of)
	of8 := kmsg.NewPtrOffsetFetchRequest()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = "fz-simple"
	of8.Groups = append(of8.Groups, g)
	add("group-offsetfetch-v8-all", 8, of8)
	add("group-offsetfetch-v10-all", 10, of8)

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"fz-group", "fz-simple"}
	add("group-describegroups-v6", 6, dg)
	lg := kmsg.NewPtrListGroupsRequest()
	lg.StatesFilter, lg.TypesFilter = []string{"Empty"}, []string{"classic"}
	add("group-listgroups-v5", 5, lg)

	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "fz-simple"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "fuzz"
	odt.Partitions = append(odt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
	od.Topics = append(od.Topics, odt)
	add("group-offsetdelete-v0", 0, od)
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"fz-simple", "fz-none"}
	add("group-deletegroups-v2", 2, del)
	reqs["group-stream"] = stream
	writeCorpus("FuzzRequestPath", reqs)

	recs := map[string][]byte{}
	okey := kmsg.NewOffsetCommitKey()
	okey.Version, okey.Group, okey.Topic, okey.Partition = 1, "g", "t", 3
	oval := kmsg.NewOffsetCommitValue()
	oval.Version, oval.Offset, oval.LeaderEpoch, oval.Metadata, oval.CommitTimestamp = 3, 42, 7, "meta", 1700000000000
	gkey := kmsg.NewGroupMetadataKey()
	gkey.Version, gkey.Group = 2, "g"
	gval := kmsg.NewGroupMetadataValue()
	gval.Version, gval.ProtocolType, gval.Generation = 3, "consumer", 4
	gval.Protocol, gval.Leader = kmsg.StringPtr("range"), kmsg.StringPtr("m-1")
	mem := kmsg.NewGroupMetadataValueMember()
	mem.MemberID, mem.ClientID, mem.ClientHost = "m-1", "c", "/127.0.0.1"
	mem.SessionTimeoutMillis, mem.RebalanceTimeoutMillis = 10000, 30000
	mem.Subscription, mem.Assignment = []byte{0, 1}, []byte{0, 2}
	gval.Members = append(gval.Members, mem)
	pair := func(k, v []byte) []byte {
		// The fuzz input is a 2-byte key length, the key, then the value.
		out := []byte{byte(len(k) >> 8), byte(len(k))}
		out = append(out, k...)
		return append(out, v...)
	}
	recs["offset-commit"] = pair(okey.AppendTo(nil), oval.AppendTo(nil))
	recs["offset-tombstone"] = pair(okey.AppendTo(nil), nil)
	recs["group-metadata"] = pair(gkey.AppendTo(nil), gval.AppendTo(nil))
	okey.Version = 0
	oval.Version = 1
	oval.ExpireTimestamp = 1800000000000
	recs["offset-commit-v1-expire"] = pair(okey.AppendTo(nil), oval.AppendTo(nil))
	recs["truncated"] = pair(gkey.AppendTo(nil), gval.AppendTo(nil)[:20])
	writeCorpus("FuzzReplayRecord", recs)
}

func writeCorpus(target string, seeds map[string][]byte) {
	d := filepath.Join(dir, target)
	if err := os.MkdirAll(d, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, data := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%s: %d seeds\n", target, len(seeds))
}
