package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/stromhq/strom/replicate"
)

// replicateFlags are the flags shared by mirror, migrate and verify.
type replicateFlags struct {
	cfg      replicate.Config
	mode     string
	logLevel string
	json     bool
	live     bool
	// term coordinates the table and log lines when both show on one terminal; nil otherwise.
	term *liveTerminal
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
	f.BoolVar(&rf.json, "json", false, "print progress (and the migrate summary) as one JSON object per interval")
	f.BoolVar(&rf.live, "live", false, "show the per-topic progress table redrawn in place even when stdout is not a terminal")
	f.DurationVar(&rf.cfg.ProgressInterval, "progress-interval", rf.cfg.ProgressInterval, "time between progress lines when stdout is not a terminal, and between --json objects (the terminal table redraws every second)")
	f.DurationVar(&rf.cfg.RateWindow, "rate-window", rf.cfg.RateWindow, "sliding window of the records/s and MB/s rates and the ETA")
	f.IntVar(&rf.cfg.MaxPollRecords, "batch-records", rf.cfg.MaxPollRecords, "records per batch (per transaction in exactly-once mode)")
	f.DurationVar(&rf.cfg.RetryTimeout, "retry-timeout", rf.cfg.RetryTimeout, "how long the source and destination clients reissue a failed request before the session fails (a cluster outage longer than this restarts sessions until the cluster is back; positive)")
	f.DurationVar(&rf.cfg.TransactionTimeout, "transaction-timeout", rf.cfg.TransactionTimeout, "destination transaction timeout (exactly-once; transaction.timeout.ms): a batch that takes longer is aborted by the destination and copied again by a new session")
}

func (rf *replicateFlags) finish() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(rf.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", rf.logLevel, err)
	}
	m, err := replicate.ParseMode(rf.mode)
	if err != nil {
		return err
	}
	rf.cfg.Mode = m
	rf.cfg.ProgressView = progressView(rf.json, rf.live, isTerminal(os.Stdout))
	var logOut io.Writer = os.Stderr
	rf.cfg.Progress = os.Stdout
	if rf.cfg.ProgressView == replicate.ViewTable && isTerminal(os.Stdout) && isTerminal(os.Stderr) {
		rf.term = &liveTerminal{out: os.Stdout, err: os.Stderr}
		rf.cfg.Progress, logOut = rf.term.tableWriter(), rf.term.logWriter()
	}
	rf.cfg.Logger = slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	return nil
}

// done ends the coordination of table and log lines once the copy has ended.
func (rf *replicateFlags) done() {
	if rf.term != nil {
		rf.term.detach()
	}
}

// progressView picks the progress view: --json wins, then --live forces the table, else the table only on
// a terminal and plain lines everywhere else (files, pipes, log collectors).
func progressView(json, live, tty bool) replicate.ProgressView {
	switch {
	case json:
		return replicate.ViewJSON
	case live || tty:
		return replicate.ViewTable
	}
	return replicate.ViewLog
}

// isTerminal reports whether f is a terminal. A character device is not enough: /dev/null is one too.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

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
			rf.done()
			if err != nil {
				return err
			}
			if !migrate {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("migrate interrupted after %d records; run it again to resume", sum.Records)
			}
			if rf.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(sum)
			}
			writeTopicSummary(cmd.OutOrStdout(), sum.PerTopic)
			fmt.Fprintf(cmd.OutOrStdout(), "migrate done: %d topics, %d partitions, %d records (%d bytes) copied in %s, %d group offsets synced, %d sessions\n",
				len(sum.Topics), sum.Partitions, sum.Records, sum.Bytes, sum.Duration.Round(1e6), sum.Groups, sum.Sessions)
			return nil
		},
	}
	rf.add(cmd.Flags(), true)
	return cmd
}

// writeTopicSummary prints the per-topic lines of the migrate summary as an aligned table.
func writeTopicSummary(w io.Writer, topics []replicate.TopicSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tDESTINATION\tPARTITIONS\tRECORDS\tMB")
	for _, t := range topics {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\n", t.Topic, t.Destination, t.Partitions, t.Records, float64(t.Bytes)/1e6)
	}
	_ = tw.Flush()
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
