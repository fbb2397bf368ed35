package clients

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// scenario is everything a run needs to know, generated once in Go and handed to script runners as JSON
// on stdin, so every language produces the same records and checks the same things.
type scenario struct {
	Client     string `json:"client"`
	Topic      string `json:"topic"`
	Partitions int32  `json:"partitions"`
	// Produce steps in order: one per codec, then the idempotent one.
	Produce []produceStep `json:"produce"`
	// TimeRecords are the two records of list-offsets-time, produced one at a time with a pause between
	// them, both to TimePartition.
	TimePartition int32    `json:"time_partition"`
	TimeRecords   []record `json:"time_records"`
	// ConfigKey is set to ConfigValue on the topic by alter-config and read back.
	ConfigKey   string `json:"config_key"`
	ConfigValue string `json:"config_value"`
}

// produceStep is one produce-* feature.
type produceStep struct {
	Feature    string   `json:"feature"`
	Codec      string   `json:"codec"` // none, gzip, snappy, lz4, zstd
	Idempotent bool     `json:"idempotent"`
	Records    []record `json:"records"`
}

// record is one record as produced and as expected back. Partition is explicit; keys are chosen so that
// Kafka's default partitioner (murmur2 of the key) also sends each record to Partition, which lets clients
// without a way to pick a partition (the console producer) produce the same layout.
type record struct {
	Partition int32    `json:"partition"`
	Key       string   `json:"key"`
	Value     string   `json:"value"`
	Headers   []header `json:"headers"`
}

// header is one record header; order matters and is checked.
type header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// consumed is a record read back, with its offset.
type consumed struct {
	record
	Offset int64
}

const (
	scenarioPartitions = 3
	recordsPerPart     = 2
)

// codecs in produce order, with their Kafka attribute numbers (the low 3 bits of a batch's attributes).
var codecs = []struct {
	feature, name string
	attr          uint8
}{
	{FeatureProduceNone, "none", 0},
	{FeatureProduceGzip, "gzip", 1},
	{FeatureProduceSnappy, "snappy", 2},
	{FeatureProduceLZ4, "lz4", 3},
	{FeatureProduceZstd, "zstd", 4},
}

func codecAttr(name string) (uint8, bool) {
	for _, c := range codecs {
		if c.name == name {
			return c.attr, true
		}
	}
	return 0, false
}

// newScenario builds the scenario for one run of client. The topic name is unique per run (time plus
// random suffix) and legal everywhere (letters, digits, '-', '.').
func newScenario(client, prefix string, now time.Time) *scenario {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	sc := &scenario{
		Client:        client,
		Topic:         fmt.Sprintf("%s-%s-%d-%s", prefix, client, now.UnixMilli(), hex.EncodeToString(rnd[:])),
		Partitions:    scenarioPartitions,
		TimePartition: 0,
		ConfigKey:     "retention.ms",
		ConfigValue:   "86400123", // a value no default has, so reading it back proves the change
	}
	for _, c := range codecs {
		sc.Produce = append(sc.Produce, produceStep{Feature: c.feature, Codec: c.name, Records: stepRecords(client, c.feature)})
	}
	sc.Produce = append(sc.Produce, produceStep{Feature: FeatureIdempotent, Codec: "none", Idempotent: true,
		Records: stepRecords(client, FeatureIdempotent)})
	for i, name := range []string{"a", "b"} {
		sc.TimeRecords = append(sc.TimeRecords, makeRecord(client, FeatureListOffsetsTime, sc.TimePartition,
			fmt.Sprintf("%s/%s", FeatureListOffsetsTime, name), i))
	}
	return sc
}

// stepRecords returns recordsPerPart records for every partition, partition by partition.
func stepRecords(client, feature string) []record {
	var rs []record
	for p := int32(0); p < scenarioPartitions; p++ {
		for i := 0; i < recordsPerPart; i++ {
			rs = append(rs, makeRecord(client, feature, p, fmt.Sprintf("%s/p%d/%d", feature, p, i), i))
		}
	}
	return rs
}

// makeRecord builds one record. The key gets a "~n" suffix with the smallest n that makes murmur2 pick
// partition p. The value is long and repetitive so that every codec shrinks it (librdkafka sends a batch
// uncompressed when compression does not help), and carries non-ASCII text to catch encoding bugs. Keys,
// values and headers never contain tabs, newlines, ':' or ',' so line-based tools can carry them.
func makeRecord(client, feature string, p int32, base string, i int) record {
	key := base
	for n := 0; ; n++ {
		key = fmt.Sprintf("%s~%d", base, n)
		if kafkaPartition([]byte(key), scenarioPartitions) == p {
			break
		}
	}
	value := fmt.Sprintf("%s ünïcödé ✓ %d %s", key, i, strings.Repeat("strom-compressible ", 24))
	return record{
		Partition: p,
		Key:       key,
		Value:     value,
		Headers:   []header{{Key: "feature", Value: feature}, {Key: "client", Value: client}},
	}
}

// expected returns, per partition, the records the consume step must find: those of every produce step
// whose result passed, in produce order.
func (sc *scenario) expected(passed func(feature string) bool) map[int32][]record {
	want := make(map[int32][]record)
	for _, st := range sc.Produce {
		if !passed(st.Feature) {
			continue
		}
		for _, r := range st.Records {
			want[r.Partition] = append(want[r.Partition], r)
		}
	}
	return want
}

// compareConsumed checks that got is exactly want: same count, offsets 0..n-1 in order, and key, value,
// headers (in order) equal. It returns a description of the first difference, or "".
func compareConsumed(p int32, want []record, got []consumed) string {
	for i := 0; i < len(want) && i < len(got); i++ {
		w, g := want[i], got[i]
		switch {
		case g.Offset != int64(i):
			return fmt.Sprintf("partition %d record %d: offset %d, want %d", p, i, g.Offset, i)
		case g.Key != w.Key:
			return fmt.Sprintf("partition %d offset %d: key %q, want %q", p, i, g.Key, w.Key)
		case g.Value != w.Value:
			return fmt.Sprintf("partition %d offset %d: value %q, want %q", p, i, shorten(g.Value), shorten(w.Value))
		case !headersEqual(g.Headers, w.Headers):
			return fmt.Sprintf("partition %d offset %d: headers %v, want %v", p, i, g.Headers, w.Headers)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("partition %d: %d records, want %d", p, len(got), len(want))
	}
	return ""
}

func headersEqual(a, b []header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func shorten(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// kafkaPartition is what Kafka's Java default partitioner does with a keyed record:
// toPositive(murmur2(key)) % n.
func kafkaPartition(key []byte, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is the 32-bit MurmurHash2 variant with Kafka's seed, as in Kafka's Utils.murmur2.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
