package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// StromReadyLine is the log line `strom serve` prints once its client listener accepts connections;
// the harness waits for it before checking Metadata.
const StromReadyLine = "strom ready listen="

// StromSessionTimeout is the --broker-session-timeout of multi-node Strom clusters: a killed broker is
// fenced and its partitions get new leaders this long after its last heartbeat (Kafka's default is 9 s;
// the Kafka harness uses 4 s).
const StromSessionTimeout = 3 * time.Second

var stromBin struct {
	once sync.Once
	path string
	err  error
}

// StromBinary returns the strom executable the harness runs: $STROM_BIN if set, else a static build of
// ./cmd/strom from this checkout, made once per test process (go build reuses its cache, so an unchanged
// tree costs a link at most) into $TMPDIR/strom-harness-<checkout hash>/strom via rename: a binary another
// test process is running is never overwritten in place, and test runs in other checkouts (git worktrees)
// on the same machine never swap their build for ours.
func StromBinary() (string, error) {
	stromBin.once.Do(func() {
		if p := os.Getenv("STROM_BIN"); p != "" {
			stromBin.path = p
			return
		}
		stromBin.path, stromBin.err = buildStrom()
	})
	return stromBin.path, stromBin.err
}

func buildStrom() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build strom: go not on PATH: %w", err)
	}
	root := moduleRoot()
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("strom-harness-%x", sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build strom: %w", err)
	}
	out := filepath.Join(dir, "strom")
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", tmp, "./cmd/strom")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build strom in %s: %w\n%s", cmd.Dir, err, stderr.String())
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build strom: %w", err)
	}
	return out, nil
}

// NewStrom starts `strom serve` nodes on free 127.0.0.1 ports (a Kafka and a raft port each) with their
// data under dir, waits for each to print StromReadyLine and then for Metadata to list every node. The
// caller owns the cluster and must Stop it. Any failure to come up is reported as "strom serve not
// available: ...", with the log's tail.
//
// With several nodes every node is a raft voter (--controller-quorum-voters lists them all, like the
// Kafka harness's controller.quorum.voters) unless Voters limits them (the others are broker-only), topics default to replication factor min(3, nodes) as in
// the Kafka harness, and --broker-session-timeout is StromSessionTimeout so fault tests see a killed
// broker fenced in seconds. StromArgs come last and override these.
func NewStrom(ctx context.Context, dir string, opts ...Option) (*LocalCluster, error) {
	c, err := retryPortClash(dir, func() (*LocalCluster, error) { return newStrom(ctx, dir, opts) })
	if err != nil {
		return nil, fmt.Errorf("strom serve not available: %w", err)
	}
	return c, nil
}

func newStrom(ctx context.Context, dir string, opts []Option) (*LocalCluster, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	bin, err := StromBinary()
	if err != nil {
		return nil, err
	}
	// Per node: client, raft, then one per extra listener.
	per := 2 + len(cfg.listeners)
	// hostPort is node i's j-th address: a free 127.0.0.1 port, or a fixed port on the node's own
	// address in its network namespace.
	var hostPort func(i, j int) string
	var lab *netLab
	if cfg.netns {
		if lab, err = newNetLab(cfg.nodes); err != nil {
			return nil, err
		}
		hostPort = func(i, j int) string { return fmt.Sprintf("%s:%d", lab.ip[i], 9092+j) }
	} else {
		ports, err := FreePorts(per * cfg.nodes)
		if err != nil {
			return nil, err
		}
		hostPort = func(i, j int) string { return fmt.Sprintf("127.0.0.1:%d", ports[per*i+j]) }
	}
	nVoters := cfg.nodes
	if cfg.voters > 0 {
		nVoters = cfg.voters
	}
	voters := make([]string, nVoters)
	for i := range voters {
		voters[i] = fmt.Sprintf("%d@%s", i+1, hostPort(i, 1))
	}
	c := &LocalCluster{kind: "strom", cfg: cfg, lab: lab, nodeReady: waitLogLine(StromReadyLine, cfg.logPoll)}
	for i := 0; i < cfg.nodes; i++ {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			if lab != nil {
				_ = lab.close()
			}
			return nil, fmt.Errorf("strom node %d: %w", i, err)
		}
		addr := hostPort(i, 0)
		argv := []string{bin, "serve",
			"--node-id", strconv.Itoa(i + 1),
			"--data-dir", filepath.Join(ndir, "data"),
			"--raft-listen", hostPort(i, 1),
			// As the harness's Kafka (group.initial.rebalance.delay.ms=0): a group's first rebalance
			// does not wait for more members, so both sides are compared on the same terms.
			"--group-initial-rebalance-delay", "0s",
		}
		var extra map[string]string
		if len(cfg.listeners) == 0 {
			argv = append(argv, "--listen", addr)
		} else {
			// The PLAINTEXT listener stays first and carries inter-broker
			// traffic, as in the Kafka clusters.
			extra = map[string]string{}
			lst, pm := []string{"PLAINTEXT://" + addr}, []string{"PLAINTEXT:PLAINTEXT"}
			for j, l := range cfg.listeners {
				extra[l.name] = hostPort(i, 2+j)
				lst = append(lst, l.name+"://"+extra[l.name])
				pm = append(pm, l.name+":"+l.protocol)
			}
			argv = append(argv, "--listeners", strings.Join(lst, ","), "--listener-security-protocol-map", strings.Join(pm, ","),
				"--inter-broker-listener-name", "PLAINTEXT")
		}
		for _, s := range cfg.scram {
			argv = append(argv, "--add-scram", s)
		}
		if cfg.nodes > 1 {
			argv = append(argv,
				"--controller-quorum-voters", strings.Join(voters, ","),
				"--broker-session-timeout", StromSessionTimeout.String(),
				"--default-replication-factor", strconv.Itoa(min(3, cfg.nodes)),
			)
			if i >= nVoters {
				argv = append(argv, "--process-roles", "broker")
			}
		}
		argv = append(argv, cfg.stromArgs...)
		if lab != nil {
			argv = lab.exec(i, argv)
		}
		c.nodes = append(c.nodes, &node{
			index:     i,
			dir:       ndir,
			logPath:   filepath.Join(ndir, "strom.log"),
			addr:      addr,
			argv:      argv,
			listeners: extra,
		})
	}
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// StartStrom is NewStrom for one test: data and logs in t.TempDir(), Stop on cleanup, logs' tails
// printed if the test failed. Start failure fails the test with "strom serve not available: ...".
func StartStrom(t testing.TB, opts ...Option) *LocalCluster {
	t.Helper()
	c, err := NewStrom(context.Background(), t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	registerCleanup(t, c)
	return c
}

// waitLogLine returns a node check that polls the node's log, from the size it had when the check began
// (a restarted node appends to the same file), until a line containing marker appears. It gives up when
// the process exits or ctx ends.
func waitLogLine(marker string, poll time.Duration) func(ctx context.Context, n *node, p *proc) error {
	return func(ctx context.Context, n *node, p *proc) error {
		// The process was started just before; its previous runs' output is all below startSize.
		startSize := p.logStart
		for {
			if b, err := os.ReadFile(n.logPath); err == nil && int64(len(b)) > startSize &&
				strings.Contains(string(b[startSize:]), marker) {
				return nil
			}
			select {
			case <-p.done:
				return fmt.Errorf("%w before printing %q", ErrExited, marker)
			case <-ctx.Done():
				return fmt.Errorf("%w: no %q in %s", ErrNotReady, marker, n.logPath)
			case <-time.After(poll):
			}
		}
	}
}
