// Package clients runs one Kafka scenario through many real Kafka clients against any bootstrap address
// and reports, per client, a pass/fail/n-a outcome for every feature of the scenario.
//
// The scenario is the same for every client (see Features): create a 3-partition topic, produce with every
// compression codec the client supports, produce idempotently, read everything back by offset and compare
// key, value, headers and order per partition, look up an offset by timestamp, and alter and describe a
// topic config. Each run uses its own topic, so runs against the same cluster never see each other's data.
//
// Go clients (franz-go, sarama, segmentio/kafka-go, confluent-kafka-go) run in-process through a small
// driver interface and a shared executor. kcat and Kafka's command-line tools are driven from Go one
// subprocess per operation through the same executor. kafka-python, confluent-kafka-python, kafkajs and
// the Java kafka-clients run the whole scenario in a script (python/scenario.py, node/scenario.js,
// java/Scenario.java) that reads the scenario as JSON on stdin and prints one JSON line per feature.
//
// After every run an audit reads the topic back with franz-go and checks what the log holds: records of a
// produce-<codec> step must sit in batches compressed with that codec, records of produce-idempotent in
// batches carrying a producer id. A client that claims a codec but sends uncompressed data fails here.
package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Outcome is the verdict for one feature of one client.
type Outcome string

// The outcomes a feature can have. NA is only for what the client itself cannot do (no admin API, a codec
// it does not implement); anything the client can do but that did not work is Fail.
const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	NA   Outcome = "n/a"
)

// Result is the outcome of one feature for one client. Detail says why for Fail and NA, and may carry a
// short note for Pass.
type Result struct {
	Client  string
	Feature string
	Outcome Outcome
	Detail  string
}

// String renders a result for test logs.
func (r Result) String() string {
	if r.Detail == "" {
		return fmt.Sprintf("%s %s: %s", r.Client, r.Feature, r.Outcome)
	}
	return fmt.Sprintf("%s %s: %s (%s)", r.Client, r.Feature, r.Outcome, r.Detail)
}

// The scenario's features in the order they run. Later features depend on earlier ones (consume expects
// what the produce steps wrote), so the order is part of the contract.
const (
	FeatureCreateTopic     = "create-topic"
	FeatureProduceNone     = "produce-none"
	FeatureProduceGzip     = "produce-gzip"
	FeatureProduceSnappy   = "produce-snappy"
	FeatureProduceLZ4      = "produce-lz4"
	FeatureProduceZstd     = "produce-zstd"
	FeatureIdempotent      = "produce-idempotent"
	FeatureConsumeByOffset = "consume-by-offset"
	FeatureListOffsetsTime = "list-offsets-time"
	FeatureAlterConfig     = "alter-config"
)

// Features returns the scenario's features in execution order.
func Features() []string {
	return []string{
		FeatureCreateTopic, FeatureProduceNone, FeatureProduceGzip, FeatureProduceSnappy, FeatureProduceLZ4,
		FeatureProduceZstd, FeatureIdempotent, FeatureConsumeByOffset, FeatureListOffsetsTime, FeatureAlterConfig,
	}
}

// Errors returned by Run. Outcomes of features are never errors; these say the runner itself could not run.
var (
	// ErrUnknownClient: the client name is not one of Clients().
	ErrUnknownClient = errors.New("unknown client")
	// ErrUnavailable: the client is known but cannot run on this machine (binary, interpreter, library,
	// Kafka jars or cgo missing). The message says what to install.
	ErrUnavailable = errors.New("client unavailable")
	// ErrBadReport: a subprocess runner printed something that is not a valid result line.
	ErrBadReport = errors.New("bad result line")
)

// runner runs the scenario sc for one client and returns one result per feature, in Features() order.
// An error means the runner could not start at all; failures inside the scenario are results.
type runner func(ctx context.Context, cfg *config, sc *scenario) ([]Result, error)

// registry maps client names to runners, in the order Clients() reports them. Files that need a build tag
// (cgo) add their runner in init, so Clients() lists only what this binary can run.
var registry = []struct {
	name string
	run  runner
}{
	{"franz-go", runGo(newFranzDriver)},
	{"sarama", runGo(newSaramaDriver)},
	{"kafka-go", runGo(newKafkaGoDriver)},
	{"kcat", runGo(newKcatDriver)},
	{"kafka-python", runPython("kafka-python")},
	{"confluent-kafka-python", runPython("confluent-kafka-python")},
	{"kafkajs", runNode},
	{"java", runJava},
	{"kafka-cli", runGo(newCLIDriver)},
}

// Clients returns the names Run accepts, in a stable order.
func Clients() []string {
	names := make([]string, 0, len(registry))
	for _, r := range registry {
		names = append(names, r.name)
	}
	return names
}

// Run runs the scenario with one client against the cluster at bootstrap (host:port[,host:port...]) on a
// fresh topic and returns one result per feature in Features() order. The topic is left on the cluster for
// post-mortems. Run is safe for concurrent use with different clients.
func Run(ctx context.Context, client, bootstrap string, opts ...Option) ([]Result, error) {
	i := slices.IndexFunc(registry, func(r struct {
		name string
		run  runner
	}) bool {
		return r.name == client
	})
	if i < 0 {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownClient, client, Clients())
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.bootstrap = bootstrap
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	sc := newScenario(client, cfg.topicPrefix, time.Now())
	results, err := registry[i].run(ctx, &cfg, sc)
	if err != nil {
		return nil, fmt.Errorf("run %s against %s: %w", client, bootstrap, err)
	}
	results = complete(client, results)
	if !cfg.skipAudit {
		audit(ctx, &cfg, sc, results)
	}
	return results, nil
}

// complete returns exactly one result per feature in Features() order: missing features become Fail
// ("not reported"), duplicates keep the first report, unknown features are dropped.
func complete(client string, rs []Result) []Result {
	out := make([]Result, 0, len(Features()))
	for _, f := range Features() {
		i := slices.IndexFunc(rs, func(r Result) bool { return r.Feature == f })
		if i < 0 {
			out = append(out, Result{Client: client, Feature: f, Outcome: Fail, Detail: "not reported by the runner"})
			continue
		}
		r := rs[i]
		r.Client = client
		out = append(out, r)
	}
	return out
}
