package clients

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// audit reads the run's topic back with franz-go and downgrades produce results the log contradicts:
// a passed produce-<codec> step whose records are missing or sit in batches with another codec, and a
// passed produce-idempotent step whose batches carry no producer id. It never upgrades a result.
func audit(ctx context.Context, cfg *config, sc *scenario, rs []Result) {
	var checks []int // indexes into rs of passed produce steps
	for i, r := range rs {
		if r.Outcome == Pass && strings.HasPrefix(r.Feature, "produce-") {
			checks = append(checks, i)
		}
	}
	if len(checks) == 0 {
		return
	}
	byStep, err := auditRead(ctx, cfg, sc)
	for _, i := range checks {
		if err != nil {
			rs[i].Outcome, rs[i].Detail = Fail, "audit could not read the topic back with franz-go: "+err.Error()
			continue
		}
		if problem := auditStep(sc, rs[i].Feature, byStep[rs[i].Feature]); problem != "" {
			rs[i].Outcome, rs[i].Detail = Fail, "audit: "+problem
		}
	}
}

// auditRead returns the topic's records grouped by the feature their key names.
func auditRead(ctx context.Context, cfg *config, sc *scenario) (map[string][]*kgo.Record, error) {
	d, err := newFranzDriver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd := d.(*franzDriver)
	ends := make(map[int32]int64)
	for p := int32(0); p < sc.Partitions; p++ {
		end, err := fd.EndOffset(ctx, sc.Topic, p)
		if err != nil {
			return nil, fmt.Errorf("end offset of partition %d: %w", p, err)
		}
		ends[p] = end
	}
	krs, err := franzRead(ctx, fd.bootstrap, sc.Topic, ends)
	if err != nil {
		return nil, err
	}
	byStep := make(map[string][]*kgo.Record)
	for _, kr := range krs {
		feature, _, _ := strings.Cut(string(kr.Key), "/")
		byStep[feature] = append(byStep[feature], kr)
	}
	return byStep, nil
}

// auditStep checks the stored records of one produce step and returns what is wrong, or "".
func auditStep(sc *scenario, feature string, got []*kgo.Record) string {
	var st *produceStep
	for i := range sc.Produce {
		if sc.Produce[i].Feature == feature {
			st = &sc.Produce[i]
		}
	}
	if st == nil {
		return ""
	}
	if len(got) != len(st.Records) {
		return fmt.Sprintf("log holds %d records of this step, want %d", len(got), len(st.Records))
	}
	want, _ := codecAttr(st.Codec)
	for _, kr := range got {
		if c := kr.Attrs.CompressionType(); c != want {
			return fmt.Sprintf("record at %d/%d stored with codec %d, want %d (%s)", kr.Partition, kr.Offset, c, want, st.Codec)
		}
		if st.Idempotent && kr.ProducerID < 0 {
			return fmt.Sprintf("record at %d/%d stored without producer id", kr.Partition, kr.Offset)
		}
	}
	return ""
}
