package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stromhq/strom/replicate"
)

// replicateFlags are the flags shared by mirror, migrate and verify.
type replicateFlags struct {
	cfg      replicate.Config
	mode     string
	logLevel string
}

func addClientFlags(f *pflag.FlagSet, side string, c *replicate.ClientConfig) {
	f.StringVar(&c.Bootstrap, side, "", side+" cluster bootstrap servers (host:port,...)")
	f.StringVar(&c.ConfigFile, side+"-config", "", side+" Kafka client properties file (bootstrap.servers, security.protocol, sasl.mechanism, sasl.jaas.config, ...)")
	f.BoolVar(&c.TLS, side+"-tls", false, "use TLS to the "+side+" cluster")
	f.StringVar(&c.CAFile, side+"-tls-ca", "", side+" TLS CA certificate file (PEM)")
	f.StringVar(&c.CertFile, side+"-tls-cert", "", side+" TLS client certificate file (PEM)")
	f.StringVar(&c.KeyFile, side+"-tls-key", "", side+" TLS client key file (PEM)")
	f.StringVar(&c.SASLMechanism, side+"-sasl-mechanism", "", side+" SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM (credentials from AWS_* env)")
	f.StringVar(&c.User, side+"-sasl-user", "", side+" SASL user")
	f.StringVar(&c.Password, side+"-sasl-password", "", side+" SASL password")
}

func (rf *replicateFlags) add(f *pflag.FlagSet, copying bool) {
	rf.cfg = replicate.DefaultConfig()
	addClientFlags(f, "from", &rf.cfg.Source)
	addClientFlags(f, "to", &rf.cfg.Dest)
	rf.cfg.Source.Name, rf.cfg.Dest.Name = "source", "destination"
	f.StringVar(&rf.cfg.Topics, "topics", "", "regular expression of source topics (whole name)")
	f.StringVar(&rf.cfg.Exclude, "exclude", "", "regular expression of source topics to leave out")
	f.StringVar(&rf.cfg.Rename, "rename", rf.cfg.Rename, "destination topic names: identity or prefix:P")
	f.StringVar(&rf.logLevel, "log-level", "info", "debug|info|warn|error")
	if !copying {
		f.BoolVar(&rf.cfg.AllowDuplicates, "allow-duplicates", false, "accept destination records repeating earlier source records (at-least-once copies)")
		return
	}
	f.StringVar(&rf.mode, "mode", "at-least-once", "at-least-once or exactly-once")
	f.StringVar(&rf.cfg.Name, "name", rf.cfg.Name, "mirror name: source group, transactional id, offset-map topic strom.mirror.NAME.offsets")
	f.StringVar(&rf.cfg.InstanceID, "instance-id", "", "static source group membership id of this process (at-least-once; unique per process sharing --name)")
	f.DurationVar(&rf.cfg.SessionTimeout, "session-timeout", rf.cfg.SessionTimeout, "source group session timeout (at-least-once)")
	f.StringVar(&rf.cfg.Groups, "groups", "", "regular expression of source consumer groups whose offsets are translated to the destination")
	f.StringVar(&rf.cfg.MetricsAddr, "metrics-addr", "", "HOST:PORT serving Prometheus metrics at /metrics")
	f.BoolVar(&rf.cfg.JSON, "json", false, "print progress (and the migrate summary) as JSON lines")
	f.BoolVar(&rf.cfg.Live, "live", false, "show progress as one line updated in place (for a terminal)")
	f.DurationVar(&rf.cfg.ProgressInterval, "progress-interval", rf.cfg.ProgressInterval, "time between progress lines")
	f.IntVar(&rf.cfg.MaxPollRecords, "batch-records", rf.cfg.MaxPollRecords, "records per batch (per transaction in exactly-once mode)")
}

func (rf *replicateFlags) finish() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(rf.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", rf.logLevel, err)
	}
	rf.cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	m, err := replicate.ParseMode(rf.mode)
	if err != nil {
		return err
	}
	rf.cfg.Mode = m
	rf.cfg.Progress = os.Stdout
	return nil
}

func newMirrorCmd(migrate bool) *cobra.Command {
	var rf replicateFlags
	use, short := "mirror", "Copy topics (and group offsets) between Kafka-protocol clusters until stopped"
	if migrate {
		use, short = "migrate", "Copy topics until caught up with the source end offsets at start, sync group offsets, exit"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.finish(); err != nil {
				return err
			}
			rf.cfg.Migrate = migrate
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			sum, err := replicate.Run(ctx, rf.cfg)
			if err != nil {
				return err
			}
			if !migrate {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("migrate interrupted after %d records; run it again to resume", sum.Records)
			}
			if rf.cfg.JSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(sum)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrate done: %d topics, %d partitions, %d records (%d bytes) copied in %s, %d group offsets synced, %d sessions\n",
				len(sum.Topics), sum.Partitions, sum.Records, sum.Bytes, sum.Duration.Round(1e6), sum.Groups, sum.Sessions)
			return nil
		},
	}
	rf.add(cmd.Flags(), true)
	return cmd
}

func newVerifyCmd() *cobra.Command {
	var rf replicateFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare source and destination topics partition by partition; exit 0 only when identical",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.finish(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			rep, err := replicate.Verify(ctx, rf.cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verify ok: %d partitions identical\n", len(rep.Partitions))
			return nil
		},
	}
	rf.add(cmd.Flags(), false)
	return cmd
}
