package clients

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeDriver is an in-memory cluster of one topic with knobs to misbehave, to test the executor's verdicts
// without a broker.
type fakeDriver struct {
	noAdmin          bool   // CreateTopic and configs unsupported
	unsupportedCodec string // Produce with this codec is unsupported
	dropOne          string // Produce of this codec acknowledges but loses its last record
	timeOffBy        int64  // OffsetForTime answers this much off
	configLag        int    // TopicConfig answers the old value this many times
	createErr        error

	created   bool
	describes int
	log       map[int32][]fakeRec
	configs   map[string]string
}

type fakeRec struct {
	consumed
	ts int64
}

func (d *fakeDriver) CreateTopic(_ context.Context, _ string, _ int32) error {
	if d.noAdmin {
		return unsupported("no admin")
	}
	if d.createErr != nil {
		return d.createErr
	}
	d.created = true
	return nil
}

func (d *fakeDriver) PartitionCount(context.Context, string) (int, error) {
	d.describes++
	if d.describes == 1 {
		return 0, errors.New("unknown topic") // metadata not propagated yet: the executor must poll
	}
	return scenarioPartitions, nil
}

func (d *fakeDriver) Produce(_ context.Context, _ string, codec string, _ bool, recs []record) error {
	if codec == d.unsupportedCodec {
		return unsupported("no %s", codec)
	}
	if codec == d.dropOne {
		recs = recs[:len(recs)-1]
	}
	for _, r := range recs {
		off := int64(len(d.log[r.Partition]))
		d.log[r.Partition] = append(d.log[r.Partition], fakeRec{consumed{r, off}, time.Now().UnixMilli()})
	}
	return nil
}

func (d *fakeDriver) EndOffset(_ context.Context, _ string, p int32) (int64, error) {
	return int64(len(d.log[p])), nil
}

func (d *fakeDriver) ReadPartition(_ context.Context, _ string, p int32, end int64) ([]consumed, error) {
	var out []consumed
	for _, r := range d.log[p][:end] {
		out = append(out, r.consumed)
	}
	return out, nil
}

func (d *fakeDriver) OffsetForTime(_ context.Context, _ string, p int32, ts int64) (int64, error) {
	for _, r := range d.log[p] {
		if r.ts >= ts {
			return r.Offset + d.timeOffBy, nil
		}
	}
	return -1, nil
}

func (d *fakeDriver) SetTopicConfig(_ context.Context, _, key, value string) error {
	if d.noAdmin {
		return unsupported("no admin")
	}
	d.configs[key] = value
	return nil
}

func (d *fakeDriver) TopicConfig(_ context.Context, _, key string) (string, error) {
	if d.configLag > 0 {
		d.configLag--
		return "604800000", nil
	}
	return d.configs[key], nil
}

func (d *fakeDriver) Close() error { return nil }

func TestExecute(t *testing.T) {
	tests := []struct {
		name   string
		driver fakeDriver
		want   map[string]Outcome // features not listed must pass
		detail map[string]string  // substring expected in the detail
	}{
		{name: "all pass, with metadata and config lag", driver: fakeDriver{configLag: 2}},
		{
			name:   "no admin API: n/a, topic created by the fallback",
			driver: fakeDriver{noAdmin: true},
			want:   map[string]Outcome{FeatureCreateTopic: NA, FeatureAlterConfig: NA},
			detail: map[string]string{FeatureCreateTopic: "no admin"},
		},
		{
			name:   "unsupported codec is n/a and consume expects nothing of it",
			driver: fakeDriver{unsupportedCodec: "zstd"},
			want:   map[string]Outcome{FeatureProduceZstd: NA},
		},
		{
			name:   "lost record fails consume",
			driver: fakeDriver{dropOne: "snappy"},
			want:   map[string]Outcome{FeatureConsumeByOffset: Fail},
			detail: map[string]string{FeatureConsumeByOffset: "partition 2"},
		},
		{
			name:   "offset for time off by one",
			driver: fakeDriver{timeOffBy: -1},
			want:   map[string]Outcome{FeatureListOffsetsTime: Fail},
			detail: map[string]string{FeatureListOffsetsTime: "the second record"},
		},
		{
			name:   "create error fails create-topic only",
			driver: fakeDriver{createErr: errors.New("policy violation")},
			want:   map[string]Outcome{FeatureCreateTopic: Fail},
			detail: map[string]string{FeatureCreateTopic: "policy violation"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.driver
			d.log = make(map[int32][]fakeRec)
			d.configs = make(map[string]string)
			fellBack := false
			cfg := defaultConfig()
			cfg.createTopic = func(context.Context, *config, string, int32) error { fellBack = true; return nil }
			sc := newScenario("fake", "t", time.Now())
			rs := execute(context.Background(), &cfg, &d, sc)
			if got := complete("fake", rs); len(got) != len(rs) {
				t.Errorf("executor reported %d results, want one per feature (%d)", len(rs), len(got))
			}
			for _, r := range rs {
				want, ok := tt.want[r.Feature]
				if !ok {
					want = Pass
				}
				if r.Outcome != want {
					t.Errorf("%v, want %s", r, want)
				}
				if sub := tt.detail[r.Feature]; !strings.Contains(r.Detail, sub) {
					t.Errorf("%v: detail lacks %q", r, sub)
				}
			}
			if fellBack != d.noAdmin {
				t.Errorf("fallback creation used %v, want %v", fellBack, d.noAdmin)
			}
		})
	}
}
