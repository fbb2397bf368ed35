package clients

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWriteMatrix(t *testing.T) {
	tests := []struct {
		name string
		in   map[string][]Result
		want string
	}{
		{
			name: "empty",
			in:   nil,
			want: "| client | feature |\n|---|---|\n",
		},
		{
			name: "two clusters ordered, missing cell, escaping",
			in: map[string][]Result{
				"strom": {
					{Client: "kafkajs", Feature: FeatureAlterConfig, Outcome: Fail, Detail: "a|b\nc"},
					{Client: "franz-go", Feature: FeatureCreateTopic, Outcome: Pass},
				},
				"kafka": {
					{Client: "franz-go", Feature: FeatureCreateTopic, Outcome: Pass},
					{Client: "kcat", Feature: FeatureCreateTopic, Outcome: NA, Detail: "no admin API"},
				},
			},
			want: "| client | feature | kafka | strom |\n|---|---|---|---|\n" +
				"| franz-go | create-topic | pass | pass |\n" +
				"| kcat | create-topic | n/a: no admin API | - |\n" +
				"| kafkajs | alter-config | - | **FAIL**: a\\|b c |\n",
		},
		{
			name: "features in scenario order, unknown client last",
			in: map[string][]Result{
				"kafka": {
					{Client: "zz-client", Feature: FeatureProduceNone, Outcome: Pass},
					{Client: "sarama", Feature: FeatureAlterConfig, Outcome: Pass},
					{Client: "sarama", Feature: FeatureCreateTopic, Outcome: Pass},
				},
			},
			want: "| client | feature | kafka |\n|---|---|---|\n" +
				"| sarama | create-topic | pass |\n" +
				"| sarama | alter-config | pass |\n" +
				"| zz-client | produce-none | pass |\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMatrix(&b, tt.in); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestWriteMatrixLongDetail(t *testing.T) {
	var b bytes.Buffer
	long := strings.Repeat("x", 500)
	if err := WriteMatrix(&b, map[string][]Result{"k": {{Client: "kcat", Feature: FeatureCreateTopic, Outcome: Fail, Detail: long}}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), long) || !strings.Contains(b.String(), "…") {
		t.Errorf("detail not shortened: %s", b.String())
	}
}

func TestParseReport(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Result
		wantErr bool
	}{
		{name: "empty", in: ""},
		{
			name: "all outcomes, blank lines",
			in: `{"feature":"create-topic","result":"pass","detail":""}` + "\n\n" +
				`{"feature":"produce-snappy","result":"n/a","detail":"python-snappy missing"}` + "\r\n" +
				`  {"feature":"alter-config","result":"fail","detail":"boom"}`,
			want: []Result{
				{Client: "c", Feature: FeatureCreateTopic, Outcome: Pass},
				{Client: "c", Feature: FeatureProduceSnappy, Outcome: NA, Detail: "python-snappy missing"},
				{Client: "c", Feature: FeatureAlterConfig, Outcome: Fail, Detail: "boom"},
			},
		},
		{name: "log line on stdout", in: "connecting...\n", wantErr: true},
		{name: "unknown feature", in: `{"feature":"fly","result":"pass"}`, wantErr: true},
		{name: "unknown result", in: `{"feature":"create-topic","result":"ok"}`, wantErr: true},
		{name: "unknown field", in: `{"feature":"create-topic","result":"pass","x":1}`, wantErr: true},
		{name: "two objects", in: `{"feature":"create-topic","result":"pass"}{}`, wantErr: true},
		{name: "too long", in: `{"feature":"create-topic","result":"pass","detail":"` + strings.Repeat("a", maxReportLine) + `"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReport("c", strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadReport) {
					t.Errorf("err %v is not ErrBadReport", err)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("result %d: got %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzParseReport: any input either parses into valid results or fails with ErrBadReport.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"feature":"create-topic","result":"pass","detail":""}` + "\n"))
	f.Add([]byte("{\"feature\":\"produce-zstd\",\"result\":\"n/a\"}\n{"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := parseReport("c", bytes.NewReader(in))
		if err != nil && !errors.Is(err, ErrBadReport) {
			t.Fatalf("error %v is not ErrBadReport", err)
		}
		for _, r := range rs {
			if r.Outcome != Pass && r.Outcome != Fail && r.Outcome != NA {
				t.Fatalf("invalid outcome %q", r.Outcome)
			}
		}
	})
}

func TestComplete(t *testing.T) {
	in := []Result{
		{Feature: FeatureAlterConfig, Outcome: Pass},
		{Feature: "bogus", Outcome: Pass},
		{Feature: FeatureCreateTopic, Outcome: NA, Detail: "first"},
		{Feature: FeatureCreateTopic, Outcome: Pass, Detail: "second"},
	}
	got := complete("c", in)
	if len(got) != len(Features()) {
		t.Fatalf("got %d results, want %d", len(got), len(Features()))
	}
	for i, f := range Features() {
		if got[i].Feature != f || got[i].Client != "c" {
			t.Errorf("result %d = %v, want feature %s of client c", i, got[i], f)
		}
	}
	if got[0].Detail != "first" {
		t.Errorf("duplicate kept %v, want the first", got[0])
	}
	if got[1].Outcome != Fail {
		t.Errorf("missing feature got %v, want fail", got[1])
	}
	if got[len(got)-1].Outcome != Pass {
		t.Errorf("alter-config got %v, want pass", got[len(got)-1])
	}
}

// Test vectors from Kafka's UtilsTest.testMurmur2 (as signed Java ints).
func TestMurmur2(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, tt := range tests {
		if got := int32(murmur2([]byte(tt.in))); got != tt.want {
			t.Errorf("murmur2(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestNewScenario(t *testing.T) {
	a := newScenario("kcat", "p", time.UnixMilli(1))
	b := newScenario("kcat", "p", time.UnixMilli(1))
	if a.Topic == b.Topic {
		t.Errorf("two runs share topic %s", a.Topic)
	}
	var steps []string
	for _, st := range a.Produce {
		steps = append(steps, st.Feature)
		if len(st.Records) != scenarioPartitions*recordsPerPart {
			t.Errorf("%s: %d records", st.Feature, len(st.Records))
		}
		for _, r := range st.Records {
			if got := kafkaPartition([]byte(r.Key), scenarioPartitions); got != r.Partition {
				t.Errorf("%s: key %q hashes to %d, record says %d", st.Feature, r.Key, got, r.Partition)
			}
			if strings.ContainsAny(r.Key+r.Value, "\t\n:,") || !strings.HasPrefix(r.Key, st.Feature+"/") {
				t.Errorf("%s: unusable key/value %q %q", st.Feature, r.Key, r.Value)
			}
		}
	}
	want := []string{FeatureProduceNone, FeatureProduceGzip, FeatureProduceSnappy, FeatureProduceLZ4, FeatureProduceZstd, FeatureIdempotent}
	if strings.Join(steps, ",") != strings.Join(want, ",") {
		t.Errorf("steps %v, want %v", steps, want)
	}
	for _, r := range a.TimeRecords {
		if kafkaPartition([]byte(r.Key), scenarioPartitions) != a.TimePartition {
			t.Errorf("time record %q not on partition %d", r.Key, a.TimePartition)
		}
	}
}

func TestCompareConsumed(t *testing.T) {
	sc := newScenario("c", "p", time.Now())
	want := sc.expected(func(string) bool { return true })[1]
	good := func() []consumed {
		var out []consumed
		for i, r := range want {
			out = append(out, consumed{record: r, Offset: int64(i)})
		}
		return out
	}
	tests := []struct {
		name   string
		mutate func([]consumed) []consumed
		want   string // substring of the difference, "" = equal
	}{
		{"equal", func(c []consumed) []consumed { return c }, ""},
		{"missing", func(c []consumed) []consumed { return c[:len(c)-1] }, "records, want"},
		{"extra", func(c []consumed) []consumed { return append(c, c[0]) }, "records, want"},
		{"offset gap", func(c []consumed) []consumed { c[2].Offset = 5; return c }, "offset 5, want 2"},
		{"swapped", func(c []consumed) []consumed { c[0].record, c[1].record = c[1].record, c[0].record; return c }, "key"},
		{"value", func(c []consumed) []consumed { c[3].Value = "x"; return c }, "value"},
		{"header order", func(c []consumed) []consumed {
			c[0].Headers = []header{c[0].Headers[1], c[0].Headers[0]}
			return c
		}, "headers"},
		{"header missing", func(c []consumed) []consumed { c[0].Headers = nil; return c }, "headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compareConsumed(1, want, tt.mutate(good()))
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("difference %q, want one containing %q", got, tt.want)
			}
		})
	}
}
