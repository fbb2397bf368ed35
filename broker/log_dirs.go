package broker

// DescribeLogDirs, versions 0-5.
//
// One log directory: the data dir (absolute path), with total and usable
// bytes from statfs (v4+) and, per hosted partition, its size on disk and an
// offset lag of log end minus high watermark (0 on a single node). Null
// topics mean every hosted partition. Never cordoned (v5). Differences from
// Kafka: no future (reassignment) logs. With the authorizer on it needs
// DESCRIBE on the cluster; without, the answer is empty with
// CLUSTER_AUTHORIZATION_FAILED (v3+ top-level error), as in Kafka.

import (
	"path/filepath"
	"sort"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(&kmsg.DescribeLogDirsRequest{}, 0, 5, (*Broker).handleDescribeLogDirs) }

func (b *Broker) handleDescribeLogDirs(rq *request, req *kmsg.DescribeLogDirsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !b.authorizedCluster(rq, opDescribe) {
		if req.Version >= 3 {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return now(resp)
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.cfg.DataDir
	if abs, err := filepath.Abs(b.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(b.cfg.DataDir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * int64(fs.Bsize)
		dir.UsableBytes = int64(fs.Bavail) * int64(fs.Bsize)
	}
	want := func(string, int32) bool { return true }
	if req.Topics != nil {
		set := map[string]map[int32]bool{}
		for _, t := range req.Topics {
			if set[t.Topic] == nil {
				set[t.Topic] = map[int32]bool{}
			}
			for _, p := range t.Partitions {
				set[t.Topic][p] = true
			}
		}
		want = func(topic string, p int32) bool { return set[topic][p] }
	}
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	for _, p := range b.parts.all() {
		if !want(p.topic, p.index) {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.index
		dp.Size = p.log.Size()
		if lag := p.log.EndOffset() - p.log.HighWatermark(); lag > 0 {
			dp.OffsetLag = lag
		}
		byTopic[p.topic] = append(byTopic[p.topic], dp)
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = n
		dt.Partitions = byTopic[n]
		sort.Slice(dt.Partitions, func(i, j int) bool { return dt.Partitions[i].Partition < dt.Partitions[j].Partition })
		dir.Topics = append(dir.Topics, dt)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return now(resp)
}
