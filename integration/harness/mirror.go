package harness

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// MirrorMaker is a running Apache Kafka MirrorMaker 2 in dedicated mode
// (org.apache.kafka.connect.mirror.MirrorMaker), replicating from a cluster aliased "src" to one aliased
// "dst"; with the default replication policy topic T arrives as "src.T". It exists so Strom's replicator
// can be compared with the tool it replaces, on the same clusters.
type MirrorMaker struct {
	p       *proc
	logPath string
	grace   time.Duration
}

// NewMirrorMaker starts MirrorMaker 2 of Kafka version copying topics matching the regular expression
// topics from srcBootstrap to dstBootstrap, with its config and log under dir. props override or add
// mm2.properties entries. It returns once the process runs; replication starts some seconds later, so
// callers wait for the records they expect. The caller must Stop it.
func NewMirrorMaker(ctx context.Context, dir, version, srcBootstrap, dstBootstrap, topics string,
	props map[string]string) (*MirrorMaker, error) {
	return NewMirrorMakerJVM(ctx, dir, version, srcBootstrap, dstBootstrap, topics, props, MirrorMakerTestJVM)
}

// MirrorMakerTestJVM are the JVM flags NewMirrorMaker uses: a small heap, C1 only and the serial GC, which
// start fast and suit tests; they cap throughput, so benchmarks pass their own to NewMirrorMakerJVM.
var MirrorMakerTestJVM = []string{"-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"}

// NewMirrorMakerJVM is NewMirrorMaker with the JVM flags (heap, JIT, GC) given by jvm.
func NewMirrorMakerJVM(ctx context.Context, dir, version, srcBootstrap, dstBootstrap, topics string,
	props map[string]string, jvm []string) (*MirrorMaker, error) {
	libs, err := KafkaLibs(version)
	if err != nil {
		return nil, err
	}
	java, err := Java()
	if err != nil {
		return nil, err
	}
	logFlag, err := logFlags(libs, version, false)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror maker: %w", err)
	}
	p := map[string]string{
		"clusters":              "src, dst",
		"src.bootstrap.servers": srcBootstrap,
		"dst.bootstrap.servers": dstBootstrap,
		"src->dst.enabled":      "true",
		"src->dst.topics":       topics,
		"dst->src.enabled":      "false",
		// Single-node test clusters: every topic MM2 creates gets one replica.
		"replication.factor":                       "1",
		"checkpoints.topic.replication.factor":     "1",
		"heartbeats.topic.replication.factor":      "1",
		"offset-syncs.topic.replication.factor":    "1",
		"offset.storage.replication.factor":        "1",
		"status.storage.replication.factor":        "1",
		"config.storage.replication.factor":        "1",
		"sync.topic.acls.enabled":                  "false",
		"refresh.topics.interval.seconds":          "2",
		"refresh.groups.interval.seconds":          "2",
		"emit.checkpoints.interval.seconds":        "1",
		"sync.group.offsets.interval.seconds":      "1",
		"emit.heartbeats.interval.seconds":         "1",
		"dedicated.mode.enable.internal.rest":      "false",
		"src->dst.sync.group.offsets.enabled":      "true",
		"src->dst.emit.checkpoints.enabled":        "true",
		"src->dst.refresh.topics.interval.seconds": "2",
	}
	maps.Copy(p, props)
	var b strings.Builder
	b.WriteString("# Written by strom's integration harness.\n")
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(&b, "%s = %s\n", k, p[k])
	}
	propsPath := filepath.Join(dir, "mm2.properties")
	if err := os.WriteFile(propsPath, []byte(b.String()), 0o644); err != nil {
		return nil, fmt.Errorf("mirror maker: write %s: %w", propsPath, err)
	}
	argv := append([]string{java}, jvm...)
	argv = append(argv, "-Djava.awt.headless=true", "-Djava.io.tmpdir="+dir) // see NewKafka: snappy-java's library
	argv = append(argv, logFlag...)
	argv = append(argv, "-cp", filepath.Join(libs, "*"), "org.apache.kafka.connect.mirror.MirrorMaker", propsPath)
	logPath := filepath.Join(dir, "mirrormaker.log")
	pr, err := startProc(argv, nil, logPath, nil)
	if err != nil {
		return nil, fmt.Errorf("mirror maker: %w", err)
	}
	return &MirrorMaker{p: pr, logPath: logPath, grace: 15 * time.Second}, nil
}

// StartMirrorMaker is NewMirrorMaker for one test between two clusters: files in t.TempDir(), Stop on
// cleanup, the log's tail printed if the test failed.
func StartMirrorMaker(t testing.TB, version string, src, dst Cluster, topics string,
	props map[string]string) *MirrorMaker {
	t.Helper()
	m, err := NewMirrorMaker(context.Background(), t.TempDir(), version, src.Bootstrap(), dst.Bootstrap(),
		topics, props)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mirror maker log (%s), last 60 lines:\n%s", m.logPath, tailFile(m.logPath, 60))
		}
		if err := m.Stop(); err != nil {
			t.Errorf("stop mirror maker: %v", err)
		}
	})
	return m
}

// Exited reports whether the process has ended (it should not before Stop).
func (m *MirrorMaker) Exited() bool {
	select {
	case <-m.p.done:
		return true
	default:
		return false
	}
}

// LogPath returns MirrorMaker's log file.
func (m *MirrorMaker) LogPath() string { return m.logPath }

// Stop ends MirrorMaker: SIGTERM, then SIGKILL after a grace period. Safe to call twice.
func (m *MirrorMaker) Stop() error { return m.p.stop(m.grace) }
