package bench

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"defaults produce", ModeProduce, nil, ""},
		{"defaults consume", ModeConsume, nil, ""},
		{"defaults e2e", ModeE2E, nil, ""},
		{"unknown mode", Mode("fetch"), nil, `mode "fetch"`},
		{"no brokers", ModeProduce, func(c *Config) { c.Brokers = nil }, "--brokers is empty"},
		{"broker without port", ModeProduce, func(c *Config) { c.Brokers = []string{"localhost"} }, `--brokers "localhost"`},
		{"empty topic", ModeProduce, func(c *Config) { c.Topic = "" }, "--topic"},
		{"zero partitions", ModeProduce, func(c *Config) { c.Partitions = 0 }, "--partitions 0"},
		{"negative size", ModeProduce, func(c *Config) { c.RecordSize = -1 }, "--record-size -1"},
		{"zero size produce ok", ModeProduce, func(c *Config) { c.RecordSize = 0 }, ""},
		{"e2e size too small", ModeE2E, func(c *Config) { c.RecordSize = 7 }, "e2e needs at least 8"},
		{"negative rate", ModeProduce, func(c *Config) { c.Rate = -5 }, "--rate"},
		{"nan rate", ModeProduce, func(c *Config) { c.Rate = math.NaN() }, "--rate"},
		{"negative duration", ModeProduce, func(c *Config) { c.Duration = -time.Second }, "--duration"},
		{"negative records", ModeProduce, func(c *Config) { c.Records = -1 }, "--records"},
		{"unbounded produce", ModeProduce, func(c *Config) { c.Duration, c.Records = 0, 0 }, "set --duration or --records"},
		{"unbounded consume ends at end offsets", ModeConsume, func(c *Config) { c.Duration, c.Records = 0, 0 }, ""},
		{"negative passes", ModeConsume, func(c *Config) { c.Passes = -1 }, "--passes -1 is negative"},
		{"consume passes", ModeConsume, func(c *Config) { c.Passes = 3 }, ""},
		{"produce passes", ModeProduce, func(c *Config) { c.Passes = 2 }, "--passes 2: only consume"},
		{"records only", ModeE2E, func(c *Config) { c.Duration, c.Records = 0, 100 }, ""},
		{"negative linger", ModeProduce, func(c *Config) { c.Linger = -time.Millisecond }, "--linger"},
		{"no linger ok", ModeProduce, func(c *Config) { c.Linger = 0 }, ""},
		{"no producers", ModeProduce, func(c *Config) { c.Producers = 0 }, "--producers 0"},
		{"no consumers", ModeE2E, func(c *Config) { c.Consumers = 0 }, "--consumers 0"},
		{"bad acks", ModeProduce, func(c *Config) { c.Acks = "2" }, `--acks "2"`},
		{"acks -1", ModeProduce, func(c *Config) { c.Acks = "-1" }, ""},
		{"bad compression", ModeProduce, func(c *Config) { c.Compression = "brotli" }, `--compression "brotli"`},
		{"zstd", ModeProduce, func(c *Config) { c.Compression = "zstd" }, ""},
		{"lean produce", ModeProduce, func(c *Config) { c.Client = ClientLean }, ""},
		{"lean consume", ModeConsume, func(c *Config) { c.Client = ClientLean }, ""},
		{"lean e2e", ModeE2E, func(c *Config) { c.Client = ClientLean }, "e2e needs --client franz-go"},
		{"lean at a rate", ModeProduce, func(c *Config) { c.Client, c.Rate = ClientLean, 100 }, "max rate only"},
		{"lean acks 0", ModeProduce, func(c *Config) { c.Client, c.Acks = ClientLean, "0" }, "--acks 0"},
		{"lean compressed", ModeProduce, func(c *Config) { c.Client, c.Compression = ClientLean, "lz4" }, "--compression lz4"},
		{"unknown client", ModeProduce, func(c *Config) { c.Client = "sarama" }, `--client "sarama"`},
		{"progress without interval", ModeProduce, func(c *Config) { c.Progress, c.ProgressInterval = io.Discard, 0 }, "progress interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			err := cfg.Validate(tt.mode)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want ErrBadConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		bad  bool
	}{
		{"max", 0, false}, {"MAX", 0, false}, {"0", 0, false}, {"1000", 1000, false}, {"2.5e3", 2500, false},
		{"", 0, true}, {"fast", 0, true}, {"-1", 0, true}, {"NaN", 0, true}, {"+Inf", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrBadConfig) {
				t.Errorf("ParseRate(%q) = %v, %v; want ErrBadConfig", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseAcks(t *testing.T) {
	for in, want := range map[string]int16{"0": 0, "1": 1, "all": -1, "-1": -1} {
		if got, err := ParseAcks(in); err != nil || got != want {
			t.Errorf("ParseAcks(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ALL", "2", "leader"} {
		if _, err := ParseAcks(in); !errors.Is(err, ErrBadConfig) {
			t.Errorf("ParseAcks(%q) = %v; want ErrBadConfig", in, err)
		}
	}
}
