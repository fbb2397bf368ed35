package broker

import (
	"errors"
	"slices"
	"testing"
)

func TestDefaultConfigMatchesServeDefaults(t *testing.T) {
	c := DefaultConfig()
	if c.Listen != "127.0.0.1:9092" || c.RaftListen != "127.0.0.1:9093" || c.DataDir != "./data" || c.NodeID != 1 ||
		c.DefaultPartitions != 1 || c.DefaultReplicationFactor != 1 || !c.AutoCreateTopics || c.Fsync != "always" ||
		c.MaxRequestBytes != 100<<20 || c.Advertise != "" || c.SocketSendBufferBytes != 393216 || c.SocketReceiveBufferBytes != -1 {
		t.Fatalf("defaults drifted: %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	c.Rack, c.ReplicaSelectorClass = "use1-az1", RackAwareSelector
	if err := c.validate(); err != nil {
		t.Fatalf("rack-aware selector: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"empty data dir", func(c *Config) { c.DataDir = "" }},
		{"bad listen", func(c *Config) { c.Listen = "nowhere" }},
		{"bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }},
		{"bad raft listen", func(c *Config) { c.RaftListen = ":x" }},
		{"bad advertise", func(c *Config) { c.Advertise = "host" }},
		{"negative node id", func(c *Config) { c.NodeID = -1 }},
		{"zero partitions", func(c *Config) { c.DefaultPartitions = 0 }},
		{"zero rf", func(c *Config) { c.DefaultReplicationFactor = 0 }},
		{"bad fsync", func(c *Config) { c.Fsync = "sometimes" }},
		{"tiny max request", func(c *Config) { c.MaxRequestBytes = 10 }},
		{"no inflight", func(c *Config) { c.MaxInflight = 0 }},
		{"zero send buffer", func(c *Config) { c.SocketSendBufferBytes = 0 }},
		{"negative receive buffer", func(c *Config) { c.SocketReceiveBufferBytes = -2 }},
		{"no idle timeout", func(c *Config) { c.IdleTimeout = 0 }},
		{"unknown replica selector", func(c *Config) { c.ReplicaSelectorClass = "org.example.Nearest" }},
		{"huge rack", func(c *Config) { c.Rack = string(make([]byte, maxRackLen+1)) }},
		{"super user without type", func(c *Config) { c.SuperUsers = []string{"admin"} }},
		{"super user with empty type", func(c *Config) { c.SuperUsers = []string{":admin"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			if err := c.validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("validate: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestTopicConfigTable(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"retention.ms", "-1", true},
		{"retention.ms", "-2", false},
		{"segment.bytes", "1048576", true},
		{"segment.bytes", "1048575", false},
		{"segment.bytes", "3000000000", false},
		{"cleanup.policy", "compact, delete", true},
		{"cleanup.policy", "compact,shred", false},
		{"compression.type", "zstd", true},
		{"compression.type", "brotli", false},
		{"min.cleanable.dirty.ratio", "0.9", true},
		{"min.cleanable.dirty.ratio", "1.5", false},
		{"preallocate", "TRUE", true},
		{"preallocate", "yes", false},
		{"message.timestamp.type", "LogAppendTime", true},
		{"message.timestamp.type", "logappendtime", false},
		{"no.such.config", "1", false},
	}
	for _, tt := range tests {
		v := tt.value
		if err := validateTopicConfig(tt.name, &v); (err == nil) != tt.ok {
			t.Errorf("%s=%s: err %v, want ok=%v", tt.name, tt.value, err, tt.ok)
		}
	}
	if err := validateTopicConfig("retention.ms", nil); err == nil {
		t.Error("null value accepted")
	}
	// Every broker synonym names a topic config and round-trips.
	for broker, topic := range brokerSynonyms {
		if topicConfigs[topic].brokerName != broker {
			t.Errorf("synonym %s -> %s does not round-trip", broker, topic)
		}
	}
	cv := resolveTopicConfig("retention.ms", map[string]string{}, map[string]string{"log.retention.ms": "5"}, map[string]string{"log.retention.ms": "6"}, nil)
	if cv.value != "5" || cv.source != srcDynamicBroker || len(cv.synonyms) != 2 {
		t.Errorf("resolution order: %+v", cv)
	}
}

// TestTopicConfigSynonymsOnDefault pins the synonyms Kafka 4.3.1 lists for a
// topic config left on its default (seen by integration's TestDifferential):
// the broker default when Kafka defines one, nothing when the broker synonym
// has a null default or the config is topic-only.
func TestTopicConfigSynonymsOnDefault(t *testing.T) {
	tests := []struct {
		name     string
		topic    map[string]string
		synonyms []configSynonym
	}{
		{"segment.bytes", nil, []configSynonym{{"log.segment.bytes", "1073741824", srcDefault}}},
		{"retention.ms", nil, nil},
		{"segment.ms", nil, nil},
		{"segment.jitter.ms", nil, nil},
		{"flush.ms", nil, nil},
		{"remote.storage.enable", nil, nil},
		{"leader.replication.throttled.replicas", nil, nil},
		{"retention.ms", map[string]string{"retention.ms": "5"}, []configSynonym{{"retention.ms", "5", srcDynamicTopic}}},
		{"remote.storage.enable", map[string]string{"remote.storage.enable": "true"},
			[]configSynonym{{"remote.storage.enable", "true", srcDynamicTopic}}},
	}
	for _, tt := range tests {
		cv := resolveTopicConfig(tt.name, tt.topic, nil, nil, nil)
		if !slices.Equal(cv.synonyms, tt.synonyms) {
			t.Errorf("%s (topic %v): synonyms %+v, want %+v", tt.name, tt.topic, cv.synonyms, tt.synonyms)
		}
		wantValue, wantSource := topicConfigs[tt.name].def, srcDefault
		if v, ok := tt.topic[tt.name]; ok {
			wantValue, wantSource = v, srcDynamicTopic
		}
		if cv.value != wantValue || cv.source != wantSource {
			t.Errorf("%s: value %q source %d, want %q %d", tt.name, cv.value, cv.source, wantValue, wantSource)
		}
	}
}
