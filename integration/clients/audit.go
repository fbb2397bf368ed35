package clients

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// auditTimeout bounds the read-back, so a cluster franz-go cannot read fails the audit instead of using up
// the whole run's time.
const auditTimeout = 30 * time.Second

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
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
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

// stored is what the audit needs to know of one record in the log.
type stored struct {
	Partition  int32
	Offset     int64
	Codec      uint8 // the batch's compression attribute
	ProducerID int64 // -1 when the batch was not produced idempotently
}

// auditRead returns the topic's records grouped by the feature their key names.
func auditRead(ctx context.Context, cfg *config, sc *scenario) (map[string][]stored, error) {
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
	byStep := make(map[string][]stored)
	for _, kr := range krs {
		feature, _, _ := strings.Cut(string(kr.Key), "/")
		byStep[feature] = append(byStep[feature], storedOf(kr))
	}
	return byStep, nil
}

// auditStep checks the stored records of one produce step and returns what is wrong, or "".
func storedOf(kr *kgo.Record) stored {
	return stored{Partition: kr.Partition, Offset: kr.Offset, Codec: kr.Attrs.CompressionType(), ProducerID: kr.ProducerID}
}

func auditStep(sc *scenario, feature string, got []stored) string {
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
	for _, r := range got {
		if r.Codec != want {
			return fmt.Sprintf("record at %d/%d stored with codec %d, want %d (%s)", r.Partition, r.Offset, r.Codec, want, st.Codec)
		}
		if st.Idempotent && r.ProducerID < 0 {
			return fmt.Sprintf("record at %d/%d stored without producer id", r.Partition, r.Offset)
		}
	}
	return ""
}
