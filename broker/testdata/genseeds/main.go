// Command genseeds writes the checked-in fuzz seed corpora of package broker
// (testdata/fuzz/FuzzRequestPath and FuzzValidateBatch). Run it from the
// module root after changing the seeds: go run ./broker/testdata/genseeds
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/storage"
)

const dir = "broker/testdata/fuzz"

func main() {
	reqs := map[string][]byte{}
	add := func(name string, version int16, r kmsg.Request) {
		r.SetVersion(version)
		reqs[name] = kmsg.NewRequestFormatter(kmsg.FormatterClientID("seed")).AppendRequest(nil, r, 1)
	}
	av := kmsg.NewPtrApiVersionsRequest()
	add("apiversions-v0", 0, av)
	av3 := kmsg.NewPtrApiVersionsRequest()
	av3.ClientSoftwareName, av3.ClientSoftwareVersion = "seed", "1.0"
	add("apiversions-v3", 3, av3)
	bad := kmsg.NewPtrApiVersionsRequest()
	bad.ClientSoftwareName, bad.ClientSoftwareVersion = "-bad name", "?"
	add("apiversions-v3-bad-software", 3, bad)
	add("apiversions-v9-unsupported", 0, kmsg.NewPtrApiVersionsRequest())
	reqs["apiversions-v9-unsupported"][5] = 9 // version field of the header

	md := kmsg.NewPtrMetadataRequest()
	add("metadata-v1-all", 1, md)
	md2 := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fuzz-auto")
	md2.Topics = append(md2.Topics, mt)
	md2.AllowAutoTopicCreation = true
	add("metadata-v12-autocreate", 12, md2)

	ct := kmsg.NewPtrCreateTopicsRequest()
	for _, n := range []string{"fz-new", "fz-new", "bad/name"} {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = n, 2, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
		t.Configs = append(t.Configs, c)
		ct.Topics = append(ct.Topics, t)
	}
	add("createtopics-v7", 7, ct)

	batch := storage.BuildBatch(storage.BatchHeader{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, BaseTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(), LastOffsetDelta: 1},
		[]storage.Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("v2"), OffsetDelta: 1}})
	for _, acks := range []int16{-1, 0, 1} {
		pr := kmsg.NewPtrProduceRequest()
		pr.Acks, pr.TimeoutMillis = acks, 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = "fuzz"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = batch
		t.Partitions = append(t.Partitions, p)
		pr.Topics = append(pr.Topics, t)
		add("produce-v9-acks"+strconv.Itoa(int(acks)), 9, pr)
	}
	old := kmsg.NewPtrProduceRequest()
	old.Acks = 1
	ot := kmsg.NewProduceRequestTopic()
	ot.Topic = "fuzz"
	op := kmsg.NewProduceRequestTopicPartition()
	op.Records = append(make([]byte, 16), 1, 0, 0, 0, 0) // offset, size, crc... magic 1
	ot.Partitions = append(ot.Partitions, op)
	old.Topics = append(old.Topics, ot)
	add("produce-v2-magic1", 2, old)

	fr := kmsg.NewPtrFetchRequest()
	fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes, fr.SessionEpoch = 5000, 1, 1<<20, 0
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	add("fetch-v12-session-longpoll", 12, fr)
	fr2 := kmsg.NewPtrFetchRequest()
	fr2.SessionID, fr2.SessionEpoch = 12345, 3
	add("fetch-v12-unknown-session", 12, fr2)

	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "fuzz"
	for i, ts := range []int64{-1, -2, -3, 0} {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = int32(i%2), ts
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	add("listoffsets-v7", 7, lo)
	lo0 := kmsg.NewPtrListOffsetsRequest()
	lo0.Topics = lo.Topics
	add("listoffsets-v0", 0, lo0)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		t kmsg.ConfigResourceType
		n string
	}{{kmsg.ConfigResourceTypeTopic, "fuzz"}, {kmsg.ConfigResourceTypeBroker, "1"}, {kmsg.ConfigResourceTypeBroker, ""}, {kmsg.ConfigResourceTypeBrokerLogger, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.t, r.n
		dc.Resources = append(dc.Resources, rr)
	}
	dc.IncludeSynonyms, dc.IncludeDocumentation = true, true
	add("describeconfigs-v4", 4, dc)

	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ir := kmsg.NewIncrementalAlterConfigsRequestResource()
	ir.ResourceType, ir.ResourceName = kmsg.ConfigResourceTypeTopic, "fuzz"
	for i, c := range []struct {
		n, v string
		op   kmsg.IncrementalAlterConfigOp
	}{{"retention.ms", "60000", kmsg.IncrementalAlterConfigOpSet}, {"cleanup.policy", "compact", kmsg.IncrementalAlterConfigOpAppend}, {"segment.ms", "", kmsg.IncrementalAlterConfigOpDelete}} {
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Name, rc.Op = c.n, c.op
		if i < 2 {
			rc.Value = kmsg.StringPtr(c.v)
		}
		ir.Configs = append(ir.Configs, rc)
	}
	ia.Resources = append(ia.Resources, ir)
	add("incrementalalterconfigs-v1", 1, ia)

	ac := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	arc := kmsg.NewAlterConfigsRequestResourceConfig()
	arc.Name, arc.Value = "log.retention.ms", kmsg.StringPtr("86400000")
	ar.Configs = append(ar.Configs, arc)
	ac.Resources = append(ac.Resources, ar)
	add("alterconfigs-v2-broker", 2, ac)

	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "fuzz"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = -1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	add("deleterecords-v2", 2, dr)

	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oet := kmsg.NewOffsetForLeaderEpochRequestTopic()
	oet.Topic = "fuzz"
	oep := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	oep.CurrentLeaderEpoch, oep.LeaderEpoch = 0, 0
	oet.Partitions = append(oet.Partitions, oep)
	oe.Topics = append(oe.Topics, oet)
	add("offsetforleaderepoch-v4", 4, oe)

	add("describelogdirs-v4", 4, kmsg.NewPtrDescribeLogDirsRequest())
	add("initproducerid-v4", 4, kmsg.NewPtrInitProducerIDRequest())
	add("describecluster-v1", 1, kmsg.NewPtrDescribeClusterRequest())
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.ResponsePartitionLimit = 1
	add("describetopicpartitions-v0", 0, dtp)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "fz-new", 3
	cp.Topics = append(cp.Topics, cpt)
	add("createpartitions-v3", 3, cp)
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"fz-new"}
	add("deletetopics-v5", 5, dt)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"group-a"}
	add("findcoordinator-v4", 4, fc)
	fc3 := kmsg.NewPtrFindCoordinatorRequest()
	fc3.CoordinatorKey, fc3.CoordinatorType = "txn", 1
	add("findcoordinator-v3", 3, fc3)
	dpr := kmsg.NewPtrDescribeProducersRequest()
	dpt := kmsg.NewDescribeProducersRequestTopic()
	dpt.Topic, dpt.Partitions = "fuzz", []int32{0, 1, 7}
	dpr.Topics = append(dpr.Topics, dpt)
	add("describeproducers-v0", 0, dpr)

	// Framing and header abuse.
	reqs["frame-negative-size"] = []byte{0xff, 0xff, 0xff, 0xf0, 1, 2, 3}
	reqs["frame-oversize"] = []byte{0x7f, 0, 0, 0, 0, 0}
	reqs["frame-short-header"] = []byte{0, 0, 0, 3, 0, 18, 0}
	reqs["unknown-api-key"] = []byte{0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff}
	reqs["garbage"] = []byte("\x00\x00\x00\x20this is not a kafka request at all")
	var pipelined []byte
	for _, k := range []string{"apiversions-v3", "metadata-v1-all", "produce-v9-acks1", "fetch-v12-session-longpoll", "listoffsets-v7"} {
		pipelined = append(pipelined, reqs[k]...)
	}
	reqs["pipelined"] = pipelined
	writeCorpus("FuzzRequestPath", reqs)

	batches := map[string][]byte{"uncompressed": batch}
	for name, codec := range map[string]int8{"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4} {
		batches[name] = recompress(batch, codec)
	}
	corrupt := bytes.Clone(batch)
	corrupt[len(corrupt)-1] ^= 0xff
	batches["bad-crc"] = corrupt
	batches["truncated"] = batch[:40]
	writeCorpus("FuzzValidateBatch", batches)
}

// recompress returns batch with its records section compressed by codec.
func recompress(batch []byte, codec int8) []byte {
	raw := batch[storage.BatchHeaderSize:]
	var payload []byte
	switch codec {
	case 1:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		w.Close()
		payload = buf.Bytes()
	case 2:
		payload = s2.EncodeSnappy(nil, raw)
	case 3:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		w.Write(raw)
		w.Close()
		payload = buf.Bytes()
	case 4:
		enc, _ := zstd.NewWriter(nil)
		payload = enc.EncodeAll(raw, nil)
	}
	out := append(bytes.Clone(batch[:storage.BatchHeaderSize]), payload...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	attrs := binary.BigEndian.Uint16(out[21:])&^7 | uint16(codec)
	binary.BigEndian.PutUint16(out[21:], attrs)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
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
