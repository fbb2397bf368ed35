package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stromhq/strom/bench"
)

// newBenchCmd maps `strom bench produce|consume|e2e` flags onto bench.Config and prints bench.Run's
// result (text, or one JSON object with --json). Progress lines go to stderr.
func newBenchCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bench",
		Short: "Generate load against any Kafka-protocol cluster and measure throughput and latency",
	}
	for _, m := range []struct {
		mode  bench.Mode
		short string
	}{
		{bench.ModeProduce, "Produce records and measure throughput and acknowledgement latency"},
		{bench.ModeConsume, "Consume a topic from its start to its current end and measure throughput"},
		{bench.ModeE2E, "Produce and consume at once and measure produce-to-consume latency"},
	} {
		root.AddCommand(newBenchModeCmd(m.mode, m.short))
	}
	return root
}

func newBenchModeCmd(mode bench.Mode, short string) *cobra.Command {
	cfg := bench.DefaultConfig()
	var brokers, rate, cpuProfile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   string(mode),
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Rate, err = bench.ParseRate(rate); err != nil {
				return err
			}
			cfg.Brokers = strings.Split(brokers, ",")
			if !cmd.Flags().Changed("brokers") && cfg.Conn.ConfigFile != "" {
				cfg.Brokers = nil // the properties file's bootstrap.servers
			}
			cfg.Progress = cmd.ErrOrStderr()
			bench.TuneGC()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			res, err := bench.Run(ctx, mode, cfg)
			if res != nil {
				out := cmd.OutOrStdout()
				if asJSON {
					if werr := res.WriteJSON(out); werr != nil {
						return werr
					}
				} else if werr := res.WriteText(out); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&brokers, "brokers", strings.Join(cfg.Brokers, ","), "comma-separated HOST:PORT seed brokers")
	f.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic (created if missing)")
	f.Int32Var(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topic if it is created")
	f.Int16Var(&cfg.ReplicationFactor, "replication-factor", cfg.ReplicationFactor, "replicas of the topic if it is created (0: the cluster's default)")
	f.StringToStringVar(&cfg.TopicConfigs, "topic-config", nil, "configs of the topic if it is created, KEY=VALUE[,KEY=VALUE] (e.g. min.insync.replicas=2)")
	f.IntVar(&cfg.RecordSize, "record-size", cfg.RecordSize, "value size in bytes")
	f.StringVar(&rate, "rate", "max", "records per second over all producers, or max")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to run (0: until --records)")
	f.Int64Var(&cfg.Records, "records", cfg.Records, "stop after this many records (0: until --duration)")
	f.IntVar(&cfg.Passes, "passes", cfg.Passes, "consume: read the topic from its start to its end offsets this many times (rates are over all passes)")
	f.StringVar(&cfg.Acks, "acks", cfg.Acks, "0, 1 or all (all enables idempotence)")
	f.StringVar(&cfg.Compression, "compression", cfg.Compression, "none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&cfg.Linger, "linger", cfg.Linger, "how long producers wait to fill a batch (linger.ms)")
	f.IntVar(&cfg.Producers, "producers", cfg.Producers, "number of producer clients")
	f.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "number of consumer clients")
	f.StringVar(&cfg.Conn.ConfigFile, "client-config", "", "Kafka client properties file (bootstrap.servers, security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location as PEM, ...); --brokers and the flags below override it")
	f.BoolVar(&cfg.Conn.TLS, "tls", false, "connect with TLS")
	f.StringVar(&cfg.Conn.CAFile, "tls-ca", "", "TLS CA certificate file (PEM)")
	f.StringVar(&cfg.Conn.CertFile, "tls-cert", "", "TLS client certificate file (PEM)")
	f.StringVar(&cfg.Conn.KeyFile, "tls-key", "", "TLS client key file (PEM)")
	f.StringVar(&cfg.Conn.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM (credentials from AWS_* env)")
	f.StringVar(&cfg.Conn.User, "sasl-user", "", "SASL user")
	f.StringVar(&cfg.Conn.Password, "sasl-password", "", "SASL password")
	f.StringVar(&cfg.Client, "client", cfg.Client, "load generator: franz-go (a full client, as applications produce) or lean (pre-encoded full batches to produce, fetched batches walked without building records to consume, so the cluster rather than the client sets the rate; no e2e)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile (pprof) to this file: shows when the client, not the cluster, is the limit")
	return cmd
}

// startCPUProfile profiles this process into path until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
