package replicate

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/replicate/verify"
)

// PartitionReport is verify's result for one partition.
type PartitionReport struct {
	Topic, DestTopic string
	Partition        int32
	verify.Result
}

// VerifyReport is the result of Verify: one entry per source partition, and the first difference.
type VerifyReport struct {
	Partitions []PartitionReport
	// First is the first partition (in topic, partition order) that differs, nil when all match.
	First *PartitionReport
}

// Verify compares every selected source partition with its destination partition over the whole
// readable range of both (log start to last stable offset, committed records only), using
// Config.Source, Dest, Topics, Exclude, Rename and AllowDuplicates. Source records that came from the
// destination (strom.origin = destination cluster id) are left out. It returns ErrDifferent (with the
// report) when anything differs.
func Verify(ctx context.Context, cfg Config, out io.Writer) (VerifyReport, error) {
	var rep VerifyReport
	sel, err := cfg.selector()
	if err != nil {
		return rep, err
	}
	src, err := connect(ctx, cfg.Source, cfg.RetryTimeout)
	if err != nil {
		return rep, err
	}
	defer src.close()
	dst, err := connect(ctx, cfg.Dest, cfg.RetryTimeout)
	if err != nil {
		return rep, err
	}
	defer dst.close()
	topics, err := listTopics(ctx, src, dst, sel)
	if err != nil {
		return rep, err
	}
	if len(topics) == 0 {
		return rep, fmt.Errorf("source cluster %s: %q: %w", cfg.Source.Bootstrap, cfg.Topics, ErrNoTopics)
	}
	dstNames := make([]string, 0, len(topics))
	for _, ti := range topics {
		dstNames = append(dstNames, ti.dst)
	}
	dstMeta, err := dst.adm.ListTopics(ctx, dstNames...)
	if err != nil {
		return rep, fmt.Errorf("destination cluster: list topics: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		ti := topics[name]
		dd, ok := dstMeta[ti.dst]
		for p := int32(0); p < ti.partitions; p++ {
			pr := PartitionReport{Topic: name, DestTopic: ti.dst, Partition: p}
			srcDigests, err := readDigests(ctx, src, name, ti.srcID, p, ti.leaders[p], dst.id)
			if err != nil {
				return rep, err
			}
			var dstDigests []verify.Digest
			if ok && dd.Err == nil && int(p) < len(dd.Partitions) {
				if dstDigests, err = readDigests(ctx, dst, ti.dst, dd.ID, p, dd.Partitions[p].Leader, ""); err != nil {
					return rep, err
				}
			}
			pr.Result = verify.Compare(srcDigests, dstDigests, cfg.AllowDuplicates)
			rep.Partitions = append(rep.Partitions, pr)
			if out != nil {
				status := "ok"
				if pr.First != nil {
					status = "DIFFERENT: " + pr.First.String()
				}
				fmt.Fprintf(out, "%s/%d -> %s/%d: source %d records, destination %d (duplicates %d), hash %x: %s\n",
					name, p, ti.dst, p, pr.SrcCount, pr.DstCount, pr.Duplicates, pr.DstHash[:8], status)
			}
			if pr.First != nil && rep.First == nil {
				first := pr
				rep.First = &first
			}
		}
	}
	if rep.First != nil {
		f := rep.First
		return rep, fmt.Errorf("%s/%d (destination %s/%d): %s: %w", f.Topic, f.Partition, f.DestTopic, f.Partition,
			f.First, ErrDifferent)
	}
	return rep, nil
}

// readDigests digests the committed records of one partition from its log start to its last stable
// offset. Records whose origin is skipOrigin are left out (they were copied from the other side).
func readDigests(ctx context.Context, c *cluster, topic string, id [16]byte, p, leader int32, skipOrigin string) ([]verify.Digest, error) {
	starts, err := c.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("%s cluster: start offsets of %s: %w", c.name, topic, err)
	}
	ends, err := c.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("%s cluster: end offsets of %s: %w", c.name, topic, err)
	}
	s, ok1 := starts.Lookup(topic, p)
	e, ok2 := ends.Lookup(topic, p)
	if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
		return nil, fmt.Errorf("%s cluster: offsets of %s/%d unknown: %v %v", c.name, topic, p, s.Err, e.Err)
	}
	var out []verify.Digest
	rd := partitionReader{cl: c.cl, topic: topic, topicID: id, partition: p, leader: leader}
	_, err = rd.read(ctx, s.Offset, e.Offset, func(r *kgo.Record) error {
		hs := make([]verify.Header, 0, len(r.Headers))
		for _, h := range r.Headers {
			if skipOrigin != "" && h.Key == OriginHeader && string(h.Value) == skipOrigin {
				return nil
			}
			hs = append(hs, verify.Header{Key: h.Key, Value: h.Value})
		}
		out = append(out, verify.Record(r.Offset, r.Key, r.Value, hs, r.Timestamp.UnixMilli()))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s cluster: read %s/%d: %w", c.name, topic, p, err)
	}
	return out, nil
}
