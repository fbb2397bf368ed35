package clients

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConsoleLine(t *testing.T) {
	tests := []struct {
		in      string
		want    consumed
		wantErr bool
	}{
		{
			in: "Partition:2\tOffset:17\tfeature:produce-gzip,client:kafka-cli\tk~1\tv ü",
			want: consumed{Offset: 17, record: record{Partition: 2, Key: "k~1", Value: "v ü",
				Headers: []header{{"feature", "produce-gzip"}, {"client", "kafka-cli"}}}},
		},
		{in: "Partition:0\tOffset:0\tNO_HEADERS\tk\tv", want: consumed{record: record{Key: "k", Value: "v"}}},
		{in: "Partition:0\tOffset:0\th:\tk\tv\twith tab", want: consumed{record: record{Key: "k", Value: "v\twith tab", Headers: []header{{"h", ""}}}}},
		{in: "Processed a total of 1 messages", wantErr: true},
		{in: "Partition:x\tOffset:0\tNO_HEADERS\tk\tv", wantErr: true},
		{in: "Partition:0\tOffset:\tNO_HEADERS\tk\tv", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseConsoleLine(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && (got.Offset != tt.want.Offset || got.Partition != tt.want.Partition || got.Key != tt.want.Key ||
			got.Value != tt.want.Value || !headersEqual(got.Headers, tt.want.Headers)) {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseConsoleLine: the console consumer output parser never panics on any line.
func FuzzParseConsoleLine(f *testing.F) {
	f.Add("Partition:2\tOffset:17\tfeature:x,client:y\tk\tv")
	f.Add("Partition:0\tOffset:0\tNO_HEADERS\t\t")
	f.Fuzz(func(t *testing.T, line string) {
		_, _ = parseConsoleLine(line)
	})
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		sign int
	}{
		{"4.3.1", "4.3.1", 0},
		{"4.10.0", "4.9.1", 1},
		{"3.9.2", "4.3.1", -1},
		{"4.1", "4.1.0", 0},
		{"4.0.0", "4.1", -1},
	}
	for _, tt := range tests {
		got := compareVersions(tt.a, tt.b)
		if (got > 0) != (tt.sign > 0) || (got < 0) != (tt.sign < 0) {
			t.Errorf("compareVersions(%s, %s) = %d, want sign %d", tt.a, tt.b, got, tt.sign)
		}
	}
}

func TestKafkaLibsDiscovery(t *testing.T) {
	cache := t.TempDir()
	for _, v := range []string{"3.9.2", "4.10.0", "4.9.1", "5.0.0"} {
		if err := os.MkdirAll(filepath.Join(cache, "kafka-"+v, "libs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if v != "5.0.0" { // 5.0.0 is an interrupted fetch: no .complete marker
			if err := os.WriteFile(filepath.Join(cache, "kafka-"+v, ".complete"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("STROM_KAFKA_CACHE", cache)
	got, err := kafkaLibs(&config{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "kafka-4.10.0", "libs"); got != want {
		t.Errorf("discovered %s, want %s", got, want)
	}
	if got, err := kafkaLibs(&config{kafkaLibs: cache}); err != nil || got != cache {
		t.Errorf("explicit libs: %s, %v", got, err)
	}
	t.Setenv("STROM_KAFKA_CACHE", t.TempDir())
	if _, err := kafkaLibs(&config{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("empty cache: err %v, want ErrUnavailable", err)
	}
}

// TestRunScript drives runScript with small shell scripts standing in for a client.
func TestRunScript(t *testing.T) {
	sc := newScenario("fake", "t", time.Now())
	line := func(f, r string) string { return `{"feature":"` + f + `","result":"` + r + `","detail":""}` }
	tests := []struct {
		name     string
		script   string
		wantErr  error // nil = results expected
		wantFail []string
	}{
		{
			name:   "reads the scenario, reports every feature",
			script: `grep -q '"topic":"` + sc.Topic + `"' || exit 3; ` + allLines(line),
		},
		{
			name:     "dies midway",
			script:   "echo '" + line(FeatureCreateTopic, "pass") + "'; echo boom >&2; exit 1",
			wantFail: Features()[1:],
		},
		{name: "dies at once", script: "echo cannot import >&2; exit 1", wantErr: errAny},
		{name: "logs on stdout", script: "echo hello", wantErr: ErrBadReport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := runScript(context.Background(), sc, t.TempDir(), nil, "/bin/sh", "-c", tt.script)
			switch {
			case tt.wantErr == errAny && err != nil:
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			rs = complete("fake", rs)
			for _, r := range rs {
				wantFail := false
				for _, f := range tt.wantFail {
					wantFail = wantFail || f == r.Feature
				}
				if (r.Outcome == Fail) != wantFail {
					t.Errorf("%v: want fail %v", r, wantFail)
				}
				if wantFail && !strings.Contains(r.Detail, "boom") {
					t.Errorf("%v: detail lacks the stderr tail", r)
				}
			}
		})
	}
}

var errAny = errors.New("any error")

func allLines(line func(f, r string) string) string {
	var b strings.Builder
	for _, f := range Features() {
		b.WriteString("echo '" + line(f, "pass") + "'; ")
	}
	return b.String()
}
