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

func TestToolOutputParsers(t *testing.T) {
	t.Run("kcat -Q", func(t *testing.T) {
		tests := []struct {
			in   string
			want int64
			ok   bool
		}{
			{"t [0] offset 12\n", 12, true},
			{"my topic [2] offset -1", -1, true},
			{"% ERROR: Local: Unknown partition", 0, false},
			{"t [0] offset x", 0, false},
		}
		for _, tt := range tests {
			got, err := parseKcatQuery([]byte(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("%q: %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		}
	})
	t.Run("kcat -C -J", func(t *testing.T) {
		in := `{"topic":"t","partition":1,"offset":4,"headers":["feature","x","client","ü"],"key":"k","payload":"v"}` + "\n" +
			`{"topic":"t","partition":1,"offset":5,"headers":null,"key":"k2","payload":"v2"}` + "\n"
		got, err := parseKcatMessages([]byte(in))
		if err != nil || len(got) != 2 || got[0].Offset != 4 || got[0].Partition != 1 ||
			!headersEqual(got[0].Headers, []header{{"feature", "x"}, {"client", "ü"}}) || got[1].Headers != nil || got[1].Value != "v2" {
			t.Errorf("got %+v, %v", got, err)
		}
		for _, bad := range []string{"% Reached end of topic\n", `{"offset":1,"headers":["k"]}`} {
			if _, err := parseKcatMessages([]byte(bad)); err == nil {
				t.Errorf("%q parsed", bad)
			}
		}
	})
	t.Run("kafka-get-offsets", func(t *testing.T) {
		out := []byte("t:0:3\nt:1:7\nt-x:1:9\n")
		if got, err := parseGetOffsets(out, "t", 1); err != nil || got != 7 {
			t.Errorf("got %d, %v; want 7", got, err)
		}
		if _, err := parseGetOffsets(out, "t", 2); err == nil {
			t.Error("missing partition parsed")
		}
		if _, err := parseGetOffsets([]byte("t:0:\n"), "t", 0); err == nil {
			t.Error("empty offset parsed")
		}
	})
	t.Run("kafka-configs --describe", func(t *testing.T) {
		out := []byte("Dynamic configs for topic t are:\n  retention.ms=86400123 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400123}\n")
		if got, err := parseDynamicConfig(out, "retention.ms"); err != nil || got != "86400123" {
			t.Errorf("got %q, %v", got, err)
		}
		if _, err := parseDynamicConfig(out, "retention.bytes"); err == nil {
			t.Error("absent config parsed")
		}
	})
}

// FuzzToolOutput: no parser of tool output panics on any input.
func FuzzToolOutput(f *testing.F) {
	f.Add([]byte("t [0] offset 12\n"))
	f.Add([]byte(`{"partition":1,"offset":4,"headers":["a","b"],"key":"k","payload":"v"}`))
	f.Add([]byte("t:0:3\n  retention.ms=1 sensitive=false\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		_, _ = parseKcatQuery(out)
		_, _ = parseKcatMessages(out)
		_, _ = parseGetOffsets(out, "t", 0)
		_, _ = parseDynamicConfig(out, "retention.ms")
	})
}
