package replicate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// syncGroups translates the committed offsets of the selected source groups and commits them to the
// destination groups of the same name. A destination group with members is left alone (its consumers own
// its offsets), and a destination offset never moves backwards. Source offsets beyond what was copied are
// skipped until the copy reaches them. Failures are logged, not fatal: group sync retries next interval;
// it reports whether any group failed.
func (s *session) syncGroups(ctx context.Context) (failed bool) {
	r := s.r
	if r.sel.groups == nil {
		return false
	}
	log := r.cfg.Logger
	listed, err := r.src.adm.ListGroups(ctx)
	if err != nil {
		log.Warn("group sync: list source groups", "err", err)
		return true
	}
	var groups []string
	for _, g := range slices.Sorted(maps.Keys(listed)) {
		if r.sel.groups.MatchString(g) && g != r.cfg.Name {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return false
	}
	described, err := r.dst.adm.DescribeGroups(ctx, groups...)
	if err != nil {
		log.Warn("group sync: describe destination groups", "err", err)
		return true
	}
	for _, g := range groups {
		if d, ok := described[g]; ok && d.Err == nil && len(d.Members) > 0 {
			continue // active on the destination: its consumers own the offsets
		}
		srcOffs, err := r.src.adm.FetchOffsets(ctx, g)
		if err != nil {
			log.Warn("group sync: fetch source offsets", "group", g, "err", err)
			failed = true
			continue
		}
		dstOffs, err := r.dst.adm.FetchOffsets(ctx, g)
		if err != nil {
			log.Warn("group sync: fetch destination offsets", "group", g, "err", err)
			failed = true
			continue
		}
		commit := kadm.Offsets{}
		srcOffs.Each(func(o kadm.OffsetResponse) {
			ti := s.topics[o.Topic]
			if o.Err != nil || ti == nil || o.At < 0 {
				return
			}
			p := s.maps[tp{Topic: o.Topic, Partition: o.Partition}]
			if p == nil {
				return
			}
			at, err := p.Translate(o.At)
			if err != nil {
				return
			}
			if cur, ok := dstOffs.Lookup(ti.dst, o.Partition); ok && cur.Err == nil && cur.At >= at {
				return
			}
			commit.Add(kadm.Offset{Topic: ti.dst, Partition: o.Partition, At: at, LeaderEpoch: -1})
		})
		if len(commit) == 0 {
			continue
		}
		resp, err := r.dst.adm.CommitOffsets(ctx, g, commit)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			log.Warn("group sync: commit destination offsets", "group", g, "err", err)
			failed = true
			continue
		}
		n := 0
		commit.Each(func(kadm.Offset) { n++ })
		r.summary.Groups += n
		r.m.groups.Add(float64(n))
		log.Info("group sync: committed translated offsets", "group", g, "partitions", n)
	}
	return failed
}

// finalGroupSync syncs groups at the end of a migrate, retrying failures (a destination that just created
// its topics or its offsets topic answers with retriable errors for a while) for up to a minute.
func (s *session) finalGroupSync(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for s.syncGroups(ctx) {
		if time.Now().After(deadline) {
			return fmt.Errorf("group sync to the destination failed for a minute (see the log): %w", ErrGroupSync)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}
