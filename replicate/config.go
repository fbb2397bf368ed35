// Package replicate is Strom's mirror engine: it copies topics and consumer-group positions between two
// Kafka-protocol clusters (Apache Kafka, Amazon MSK, Strom) through the Kafka protocol only (franz-go
// kgo/kadm), at-least-once or exactly-once.
//
// One [Run] owns a session loop: check both clusters, plan and create destination topics, load the offset
// map from the destination, then read the source and write the destination batch by batch. Any error in
// a session ends it; the next session starts from durable state only (source group offsets in
// at-least-once mode, the destination's offset-map topic in exactly-once mode), so a crash at any moment
// is the same as an error. Fatal errors (bad configuration, fencing, a destination topic with fewer
// partitions) end Run, and so does any error before the first session began copying; after that, a
// cluster unreachable for longer than RetryTimeout (how long the clients reissue a failed request) fails
// sessions until it is back, each restarted after RetryBackoff.
//
// # Modes
//
// at-least-once: the source is read as consumer group Name (several processes with the same Name share the
// partitions); records go to an idempotent destination producer; the offset-map entries of a batch are
// written after its records are acknowledged, and the source offsets are committed after that. A crash
// between the two copies some records again; the offset map then points at the newest copy.
//
// exactly-once: the source is read read_committed with manual partition assignment (all selected
// partitions, one process per Name: a second process with the same Name fences the first through the
// shared transactional id "strom-mirror-<Name>", and the fenced one exits). Each destination transaction
// holds the records of one batch and the offset-map entries with the new source positions. Nothing is
// stored on the source. A restart first fences the previous incarnation (aborting its open transaction),
// then reads the positions back from the offset-map topic.
//
// Scale-out: at-least-once processes sharing a Name split the source partitions through the source group
// (give each its own InstanceID for static membership, so a restart does not wait for the session
// timeout). Exactly-once runs one active process per Name; to spread exactly-once load, run several
// mirrors with different Names over disjoint --topics selections. Migrate is meant for one process: it
// waits until every selected partition reached its end offset in its own offset map.
//
// # Offset map and group sync
//
// The destination topic strom.mirror.<Name>.offsets (one partition, compacted) holds the offset map: one
// record per run of (source offset -> destination offset), keyed by topic, partition and the run's
// first source offset, carrying the source position (see package offsetmap). In exactly-once mode it is
// written inside the data transactions and is the only record of progress. With Groups set, committed
// source offsets of matching groups are translated exactly (a consumer resumes at the destination offset
// of the first record it had not consumed) and committed to destination groups with no members, never
// moving one backwards. This works the same with Strom on either side (integration/mirror_test.go).
//
// # Records
//
// Source partition N goes to destination partition N; keys, values, headers and timestamps are kept.
// Each copied record carries the header strom.origin (the source cluster id; an existing strom.origin is
// kept, so a chain A->B->C still names A) and strom.offset (its source offset, 8 bytes big-endian).
// Records whose strom.origin equals the destination's cluster id are not copied (active-active safe).
// Control records, aborted records and compacted-away offsets are skipped; they only move the position.
//
// # Topic configs
//
// Destination topics are created with the source's partition count and every topic config the source
// has set explicitly (dynamic topic configs), except those in [SkippedConfigs]. The replication factor is
// the destination's default. Configs are copied at creation only.
package replicate

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/clientcfg"
)

// ClientConfig describes how to reach one cluster: TLS, SASL, a Kafka client properties file.
type ClientConfig = clientcfg.Config

// Errors of this package; match with errors.Is.
var (
	// ErrBadConfig reports an unusable configuration (flags, client properties). It is
	// clientcfg's, so a bad connection setting matches it too.
	ErrBadConfig = clientcfg.ErrBadConfig
	// ErrUnreachable reports a cluster that could not be reached or authenticated against.
	ErrUnreachable = errors.New("cluster unreachable")
	// ErrNoTopics reports that no source topic matches the selection.
	ErrNoTopics = errors.New("no source topic matches")
	// ErrFewerPartitions reports a destination topic with fewer partitions than its source.
	ErrFewerPartitions = errors.New("destination topic has fewer partitions than the source")
	// ErrFenced reports that another replicator with the same name took over (exactly-once mode).
	ErrFenced = errors.New("fenced by another replicator with the same name")
	// ErrGroupSync reports that the final group sync of a migrate kept failing.
	ErrGroupSync = errors.New("group sync failed")
	// ErrDifferent reports that verify found a difference.
	ErrDifferent = errors.New("source and destination differ")
)

// Mode is the delivery guarantee of a mirror.
type Mode int

// Modes.
const (
	AtLeastOnce Mode = iota
	ExactlyOnce
)

// ParseMode parses "at-least-once" or "exactly-once".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "at-least-once", "":
		return AtLeastOnce, nil
	case "exactly-once":
		return ExactlyOnce, nil
	}
	return 0, fmt.Errorf("mode %q (want at-least-once or exactly-once): %w", s, ErrBadConfig)
}

func (m Mode) String() string {
	if m == ExactlyOnce {
		return "exactly-once"
	}
	return "at-least-once"
}

// Header names the replicator adds to every copied record.
const (
	OriginHeader = "strom.origin"
	OffsetHeader = "strom.offset"
)

// SkippedConfigs are topic configs never copied to the destination: they describe the source cluster's
// brokers or replica placement, or were removed in Kafka 4. min.insync.replicas is skipped too: it must
// fit the destination's replication factor, which may be smaller than the source's.
var SkippedConfigs = map[string]bool{
	"leader.replication.throttled.replicas":   true,
	"follower.replication.throttled.replicas": true,
	"message.format.version":                  true,
	"message.downconversion.enable":           true,
	"min.insync.replicas":                     true,
	"unclean.leader.election.enable":          true,
	"confluent.placement.constraints":         true,
	"remote.storage.enable":                   true,
	"local.retention.ms":                      true,
	"local.retention.bytes":                   true,
}

// Config configures Run and Verify. DefaultConfig holds the defaults; cmd/strom maps flags onto it.
type Config struct {
	Source, Dest ClientConfig
	// Topics selects source topics by regular expression (anchored: the whole name must match);
	// Exclude removes matches. Internal topics (__*) and the replicator's own (strom.mirror.*) are never
	// selected.
	Topics, Exclude string
	Mode            Mode
	// Name identifies the mirror: source group (at-least-once), transactional id and offset-map topic.
	Name string
	// InstanceID, if set, makes the source group membership static (at-least-once): a restarted process
	// with the same id takes its partitions back at once instead of waiting for the session timeout.
	// Each process sharing a Name needs its own InstanceID.
	InstanceID string
	// SessionTimeout is the source group session timeout (at-least-once).
	SessionTimeout time.Duration
	// Groups selects source consumer groups whose offsets are translated to the destination ("" = none).
	Groups string
	// Rename maps source topic names: "identity" or "prefix:P" (destination = P + source name).
	Rename string
	// Migrate stops once every selected partition caught up with the source end offset taken at start,
	// after a final group sync.
	Migrate bool
	// AllowDuplicates makes Verify accept destination records that repeat an earlier source record
	// (at-least-once copies after a crash), reporting their count.
	AllowDuplicates bool

	Logger *slog.Logger
	// Progress receives the progress view ProgressView; nil = none (the logger still gets a line).
	Progress     io.Writer
	ProgressView ProgressView
	// ProgressInterval is the time between progress lines of ViewLog and ViewJSON (ViewTable redraws
	// every second). Progress is shown between batches by the copy loop, which owns the state it shows, so a
	// batch or start-up step that takes longer delays the next line or frame.
	ProgressInterval time.Duration
	// RateWindow is the sliding window over which records/s and MB/s (and so the ETA) are computed.
	RateWindow time.Duration
	// DiscoverInterval is how often new topics and partitions are looked for.
	DiscoverInterval time.Duration
	// GroupSyncInterval is how often group offsets are synced (with Groups set).
	GroupSyncInterval time.Duration
	// MetricsAddr, if set, serves Prometheus metrics at http://MetricsAddr/metrics.
	MetricsAddr string
	// MaxPollRecords bounds one batch (one destination transaction in exactly-once mode).
	MaxPollRecords int
	// RetryBackoff is the pause before a new session after a failed one.
	RetryBackoff time.Duration
	// RetryTimeout is how long the source and destination clients keep reissuing a failed request
	// (metadata, admin, transaction and group requests; produce and fetch retry on their own terms)
	// before it fails the session. An outage of either cluster shorter than that is usually ridden out
	// inside a session; a longer one fails sessions until the cluster is back (see Run). Must be
	// positive. A value below kgo's 10 s read timeout does not make a request on a connection the
	// outage left half open fail sooner than that.
	RetryTimeout time.Duration
	// TransactionTimeout is the destination transaction timeout (exactly-once; transaction.timeout.ms).
	// A transaction open longer, e.g. while the destination was unreachable, is aborted by its
	// coordinator; the mirror then starts a new session from the last committed batch.
	TransactionTimeout time.Duration
}

// DefaultConfig returns the defaults: at-least-once, name "strom", identity renaming.
func DefaultConfig() Config {
	return Config{
		Mode:               AtLeastOnce,
		Name:               "strom",
		Rename:             "identity",
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		ProgressInterval:   5 * time.Second,
		RateWindow:         10 * time.Second,
		DiscoverInterval:   10 * time.Second,
		GroupSyncInterval:  5 * time.Second,
		MaxPollRecords:     20000,
		SessionTimeout:     10 * time.Second,
		RetryBackoff:       time.Second,
		RetryTimeout:       clientcfg.DefaultRetryTimeout,
		TransactionTimeout: time.Minute,
		Source:             ClientConfig{Name: "source"},
		Dest:               ClientConfig{Name: "destination"},
	}
}

// selector is the compiled topic selection and renaming.
type selector struct {
	topics, exclude, groups *regexp.Regexp
	prefix                  string
}

func (c *Config) selector() (*selector, error) {
	s := &selector{}
	var err error
	if c.Topics == "" {
		return nil, fmt.Errorf("--topics is required: %w", ErrBadConfig)
	}
	if s.topics, err = regexp.Compile("^(?:" + c.Topics + ")$"); err != nil {
		return nil, fmt.Errorf("--topics %q: %v: %w", c.Topics, err, ErrBadConfig)
	}
	if c.Exclude != "" {
		if s.exclude, err = regexp.Compile("^(?:" + c.Exclude + ")$"); err != nil {
			return nil, fmt.Errorf("--exclude %q: %v: %w", c.Exclude, err, ErrBadConfig)
		}
	}
	if c.Groups != "" {
		if s.groups, err = regexp.Compile("^(?:" + c.Groups + ")$"); err != nil {
			return nil, fmt.Errorf("--groups %q: %v: %w", c.Groups, err, ErrBadConfig)
		}
	}
	switch {
	case c.Rename == "" || c.Rename == "identity":
	case strings.HasPrefix(c.Rename, "prefix:") && len(c.Rename) > len("prefix:"):
		s.prefix = strings.TrimPrefix(c.Rename, "prefix:")
	default:
		return nil, fmt.Errorf("--rename %q (want identity or prefix:P): %w", c.Rename, ErrBadConfig)
	}
	if c.Mode == ExactlyOnce && (c.TransactionTimeout < time.Second || c.TransactionTimeout > 15*time.Minute) {
		// 15 minutes is Kafka's default transaction.max.timeout.ms.
		return nil, fmt.Errorf("--transaction-timeout %v (want 1s to 15m): %w", c.TransactionTimeout, ErrBadConfig)
	}
	if c.RetryTimeout <= 0 {
		return nil, fmt.Errorf("--retry-timeout %v (want a positive duration): %w", c.RetryTimeout, ErrBadConfig)
	}
	if c.Name == "" || strings.ContainsAny(c.Name, "/ ") {
		return nil, fmt.Errorf("--name %q: %w", c.Name, ErrBadConfig)
	}
	return s, nil
}

// selects reports whether source topic t is mirrored.
func (s *selector) selects(t string) bool {
	if strings.HasPrefix(t, "__") || strings.HasPrefix(t, "strom.mirror.") {
		return false
	}
	return s.topics.MatchString(t) && (s.exclude == nil || !s.exclude.MatchString(t))
}

// dest returns the destination name of source topic t.
func (s *selector) dest(t string) string { return s.prefix + t }

// offsetsTopic returns the name of the offset-map topic of mirror name.
func offsetsTopic(name string) string { return "strom.mirror." + name + ".offsets" }
