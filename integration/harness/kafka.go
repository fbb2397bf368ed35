package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// NewKafka starts an Apache Kafka cluster in KRaft mode with every node a combined controller+broker,
// listening on free 127.0.0.1 ports (or, with NetNamespaces, on each node's address in its own network
// namespace), with its data and logs under dir, and returns once Metadata lists
// every broker. The caller owns the cluster and must Stop it.
func NewKafka(ctx context.Context, dir string, opts ...Option) (*LocalCluster, error) {
	return retryPortClash(dir, func() (*LocalCluster, error) { return newKafka(ctx, dir, opts) })
}

func newKafka(ctx context.Context, dir string, opts []Option) (*LocalCluster, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	kind := "kafka " + cfg.version
	libs, err := KafkaLibs(cfg.version)
	if err != nil {
		return nil, err
	}
	java, err := Java()
	if err != nil {
		return nil, err
	}
	logFlag, err := logFlags(libs, cfg.version, false)
	if err != nil {
		return nil, err
	}
	clusterID, err := newClusterID()
	if err != nil {
		return nil, err
	}
	// Per node: client, controller, then one per extra listener: free 127.0.0.1 ports, or fixed ports
	// on the node's own address in its network namespace.
	per := 2 + len(cfg.listeners)
	var lab *netLab
	var host func(i int) string
	var ports []int
	if cfg.netns {
		if lab, err = newNetLab(cfg.nodes); err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		host = func(i int) string { return lab.ip[i] }
		for range cfg.nodes {
			for j := range per {
				ports = append(ports, 9092+j)
			}
		}
	} else {
		host = func(int) string { return "127.0.0.1" }
		if ports, err = FreePorts(per * cfg.nodes); err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
	}
	voters := make([]string, cfg.nodes)
	for i := range voters {
		voters[i] = fmt.Sprintf("%d@%s:%d", i+1, host(i), ports[per*i+1])
	}
	c := &LocalCluster{kind: kind, cfg: cfg, lab: lab}
	fail := func(err error) (*LocalCluster, error) {
		if lab != nil {
			_ = lab.close()
		}
		return nil, err
	}
	for i := 0; i < cfg.nodes; i++ {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return fail(fmt.Errorf("%s node %d: %w", kind, i, err))
		}
		extra := ports[per*i+2 : per*(i+1)]
		props := kafkaProperties(cfg, i, host(i), ports[per*i], ports[per*i+1], strings.Join(voters, ","),
			filepath.Join(ndir, "data"), extra...)
		propsPath := filepath.Join(ndir, "server.properties")
		if err := os.WriteFile(propsPath, []byte(props), 0o644); err != nil {
			return fail(fmt.Errorf("%s node %d: write server.properties: %w", kind, i, err))
		}
		// java.io.tmpdir in the node's folder: snappy-java unpacks its native library there, and only a
		// clean exit deletes it, so every SIGKILLed broker left a copy in /tmp.
		argv := []string{java, "-Xmx" + cfg.heap, "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
			"-Djava.io.tmpdir=" + ndir}
		argv = append(argv, cfg.jvmFlags...)
		argv = append(argv, logFlag...)
		argv = append(argv, "-cp", filepath.Join(libs, "*"), "kafka.Kafka", propsPath)
		if lab != nil {
			argv = lab.exec(i, argv)
		}
		n := &node{
			index:   i,
			dir:     ndir,
			logPath: filepath.Join(ndir, "kafka.log"),
			addr:    fmt.Sprintf("%s:%d", host(i), ports[per*i]),
			argv:    argv,
		}
		if len(cfg.listeners) > 0 {
			n.listeners = map[string]string{}
			for j, l := range cfg.listeners {
				n.listeners[l.name] = fmt.Sprintf("%s:%d", host(i), extra[j])
			}
		}
		c.nodes = append(c.nodes, n)
	}
	if err := formatKafka(ctx, cfg.version, clusterID, c.nodes, cfg.scram); err != nil {
		return fail(fmt.Errorf("%s: %w", kind, err))
	}
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// StartKafka is NewKafka for one test: data and logs in t.TempDir(), Stop on cleanup, and the tail of
// every node's log printed if the test failed. Start failure fails the test.
func StartKafka(t testing.TB, opts ...Option) *LocalCluster {
	t.Helper()
	began := time.Now()
	c, err := NewKafka(context.Background(), t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	t.Logf("%s: %d node(s) ready in %.1fs", c.Kind(), c.Nodes(), time.Since(began).Seconds())
	registerCleanup(t, c)
	return c
}

// registerCleanup stops c when t ends, printing the logs' tails first if t failed.
func registerCleanup(t testing.TB, c *LocalCluster) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", c.Kind(), c.TailLogs(40))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop %s: %v", c.Kind(), err)
		}
	})
}

// formatKafka runs StorageTool format for every node at once (each is a JVM start, ~1 s of CPU), adding
// the SCRAM credentials in scram ("MECHANISM=[name=U,password=P]") to the bootstrap metadata.
// controller.quorum.voters is static, so no --standalone/--initial-controllers is needed on 4.x.
// The id is passed as --cluster-id=ID: a random id may start with "-", which the tool takes for a flag.
func formatKafka(ctx context.Context, version, clusterID string, nodes []*node, scram []string) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"format", "--cluster-id=" + clusterID, "--config", filepath.Join(n.dir, "server.properties")}
			for _, cred := range scram {
				args = append(args, "--add-scram", cred)
			}
			_, err := KafkaTool(ctx, version, ToolStorage, nil, args...)
			if err != nil {
				errs[i] = fmt.Errorf("format node %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// kafkaProperties renders node i's server.properties: harness defaults, then the caller's BrokerConfig
// overrides, sorted for a stable file. extraPorts are the ports of cfg.listeners, in order.
func kafkaProperties(cfg config, i int, host string, port, controllerPort int, voters, dataDir string, extraPorts ...int) string {
	rf := min(3, cfg.nodes)
	listeners := fmt.Sprintf("PLAINTEXT://%s:%d,CONTROLLER://%s:%d", host, port, host, controllerPort)
	advertised := fmt.Sprintf("PLAINTEXT://%s:%d", host, port)
	protocols := "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	for j, l := range cfg.listeners {
		listeners += fmt.Sprintf(",%s://%s:%d", l.name, host, extraPorts[j])
		advertised += fmt.Sprintf(",%s://%s:%d", l.name, host, extraPorts[j])
		protocols += fmt.Sprintf(",%s:%s", l.name, l.protocol)
	}
	p := map[string]string{
		"process.roles":                    "broker,controller",
		"node.id":                          strconv.Itoa(i + 1),
		"controller.quorum.voters":         voters,
		"listeners":                        listeners,
		"advertised.listeners":             advertised,
		"controller.listener.names":        "CONTROLLER",
		"listener.security.protocol.map":   protocols,
		"inter.broker.listener.name":       "PLAINTEXT",
		"log.dirs":                         dataDir,
		"num.partitions":                   "1",
		"default.replication.factor":       strconv.Itoa(rf),
		"offsets.topic.replication.factor": strconv.Itoa(rf),
		// Fewer internal partitions than Kafka's 50: creating them is a large part of a test's first
		// group or transaction on two cores, and nothing here needs the spread.
		"offsets.topic.num.partitions":             "10",
		"transaction.state.log.num.partitions":     "10",
		"transaction.state.log.replication.factor": strconv.Itoa(rf),
		"transaction.state.log.min.isr":            strconv.Itoa(min(2, rf)),
		"group.initial.rebalance.delay.ms":         "0",
		// Fence a SIGKILLed broker in seconds rather than Kafka's 9 s default, so fault tests recover fast.
		"broker.session.timeout.ms":    "4000",
		"broker.heartbeat.interval.ms": "1000",
	}
	maps.Copy(p, cfg.brokerConfig)
	var b strings.Builder
	b.WriteString("# Written by strom's integration harness.\n")
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(&b, "%s=%s\n", k, p[k])
	}
	return b.String()
}

// newClusterID returns a random Kafka cluster id: 16 bytes, URL-safe base64 without padding. Like
// Kafka's Uuid.randomUuid it never starts with '-': kafka-storage's argument parser would take such an id
// for an option and fail the format (seen in 1 of 64 starts).
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("cluster id: %w", err)
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
}
