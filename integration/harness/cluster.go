package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a running Kafka-protocol cluster of local processes. Scenarios are written against it so they
// run unchanged on Apache Kafka and on Strom.
type Cluster interface {
	// Bootstrap returns the comma-separated host:port list of every node's client listener.
	Bootstrap() string
	// Nodes returns the number of nodes the cluster was started with (killed ones included).
	Nodes() int
	// Stop ends every node (SIGTERM, then SIGKILL after a grace period). Safe to call twice.
	Stop() error
	// Kill sends SIGKILL to node's process (0-based index) and waits until it is reaped.
	Kill(node int) error
	// Restart starts node again on the same ports and data directory (stopping it first if it still
	// runs) and returns once the cluster answers Metadata with every node present.
	Restart(node int) error
}

// Errors of this package; match with errors.Is.
var (
	// ErrBadOption reports an option value the harness cannot use.
	ErrBadOption = errors.New("harness: bad option")
	// ErrExited reports that a node's process ended while the harness waited for it to become ready.
	ErrExited = errors.New("process exited before it was ready")
	// ErrNotReady reports that a cluster was not ready before the start timeout.
	ErrNotReady = errors.New("not ready before the start timeout")
	// ErrStopped reports an operation on a cluster after Stop.
	ErrStopped = errors.New("harness: cluster stopped")
	// ErrNodeRange reports a node index outside 0..Nodes()-1.
	ErrNodeRange = errors.New("harness: node index out of range")
	// ErrUnsupported reports a configuration the harness cannot start (yet).
	ErrUnsupported = errors.New("harness: unsupported")
)

// node is one member of a LocalCluster: its folder, addresses and the command that (re)starts it.
type node struct {
	index   int
	dir     string // node's folder; its data lives below it and survives Restart
	logPath string // stdout+stderr of every run, appended
	addr    string // client listener, host:port
	// listeners are the extra client listeners (Listener option), name -> host:port; nil when none.
	listeners map[string]string
	argv      []string // argv[0] is the executable
	env       []string // extra environment, appended to os.Environ()

	// p is the running process, nil when the node is down. Guarded by LocalCluster.mu.
	p *proc
}

// LocalCluster is a Cluster of processes on this machine; NewKafka and NewStrom build it. Its methods are
// safe for concurrent use, but Kill/Restart/Stop of the same node are serialised by one mutex.
type LocalCluster struct {
	kind  string // "kafka 4.3.1" or "strom", for messages
	cfg   config
	nodes []*node
	// nodeReady, if set, waits for per-node readiness (e.g. a log line) before the metadata check.
	nodeReady func(ctx context.Context, n *node, p *proc) error
	// lab is the nodes' private network (NetNamespaces), nil when they listen on 127.0.0.1. Stop
	// removes it.
	lab *netLab

	mu      sync.Mutex // guards node.p and stopped
	stopped bool
}

// Bootstrap implements Cluster.
func (c *LocalCluster) Bootstrap() string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return strings.Join(addrs, ",")
}

// ListenerBootstrap returns the comma-separated host:port list of every node's listener name (added with
// the Listener option), or "" when the cluster has no such listener.
func (c *LocalCluster) ListenerBootstrap(name string) string {
	var addrs []string
	for _, n := range c.nodes {
		if a, ok := n.listeners[name]; ok {
			addrs = append(addrs, a)
		}
	}
	return strings.Join(addrs, ",")
}

// Seeds returns the client listener addresses, for kgo.SeedBrokers.
func (c *LocalCluster) Seeds() []string { return strings.Split(c.Bootstrap(), ",") }

// Nodes implements Cluster.
func (c *LocalCluster) Nodes() int { return len(c.nodes) }

// Kind names the cluster ("kafka 4.3.1", "strom") for test names and messages.
func (c *LocalCluster) Kind() string { return c.kind }

// DataDir returns node i's data folder: Kafka's log.dirs, Strom's --data-dir. Partition folders inside
// it are named <topic>-<partition> by both.
func (c *LocalCluster) DataDir(i int) string { return filepath.Join(c.nodes[i].dir, "data") }

// Process returns the PID of node i's running process and when it was started; ok is false when the
// node is down. bench/compare reads the PID's /proc entries for memory and CPU use.
func (c *LocalCluster) Process(i int) (pid int, started time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) || c.nodes[i].p == nil {
		return 0, time.Time{}, false
	}
	p := c.nodes[i].p
	return p.pid(), p.started, true
}

// LogPath returns the log file of node i (every run of it, appended).
func (c *LocalCluster) LogPath(i int) string { return c.nodes[i].logPath }

// TailLogs returns the last lines of every node's log, each block headed by the node and its file.
func (c *LocalCluster) TailLogs(lines int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "---- %s node %d (%s), last %d lines ----\n%s", c.kind, n.index, n.logPath, lines,
			tailFile(n.logPath, lines))
	}
	return b.String()
}

// Stop implements Cluster: every running node gets SIGTERM at once, then SIGKILL after the grace period.
func (c *LocalCluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		if n.p == nil {
			continue
		}
		wg.Add(1)
		go func(i int, p *proc) {
			defer wg.Done()
			errs[i] = p.stop(c.cfg.stopGrace)
		}(i, n.p)
		n.p = nil
	}
	wg.Wait()
	if c.lab != nil {
		errs = append(errs, c.lab.close())
	}
	return errors.Join(errs...)
}

// Cut drops all traffic between nodes a and b (indexes; HostNode for the test's own clients) in both
// directions until Heal: a network partition, with both processes running. Only for clusters started
// with NetNamespaces.
func (c *LocalCluster) Cut(a, b int) error {
	if c.lab == nil {
		return fmt.Errorf("cut: %w: the cluster was not started with NetNamespaces", ErrUnsupported)
	}
	return c.lab.cut(a, b)
}

// Heal restores every link Cut took down.
func (c *LocalCluster) Heal() error {
	if c.lab == nil {
		return fmt.Errorf("heal: %w: the cluster was not started with NetNamespaces", ErrUnsupported)
	}
	return c.lab.heal()
}

// StopNode stops node i as an operator would: SIGTERM, then SIGKILL after the grace period. The node
// stays down until Restart.
func (c *LocalCluster) StopNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.takeProc(i, "stop")
	if p == nil {
		return err
	}
	return p.stop(c.cfg.stopGrace)
}

// Kill implements Cluster.
func (c *LocalCluster) Kill(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.takeProc(i, "kill")
	if p == nil {
		return err
	}
	return p.kill()
}

// takeProc detaches node i's running process (nil when it is down) for the caller to end; c.mu held.
func (c *LocalCluster) takeProc(i int, verb string) (*proc, error) {
	if i < 0 || i >= len(c.nodes) {
		return nil, fmt.Errorf("%s node %d of %d: %w", verb, i, len(c.nodes), ErrNodeRange)
	}
	n := c.nodes[i]
	p := n.p
	n.p = nil
	return p, nil
}

// Restart implements Cluster.
func (c *LocalCluster) Restart(i int) error {
	if i < 0 || i >= len(c.nodes) {
		return fmt.Errorf("restart node %d of %d: %w", i, len(c.nodes), ErrNodeRange)
	}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return fmt.Errorf("restart %s node %d: %w", c.kind, i, ErrStopped)
	}
	n := c.nodes[i]
	if n.p != nil {
		if err := n.p.stop(c.cfg.stopGrace); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("restart %s node %d: stop: %w", c.kind, i, err)
		}
		n.p = nil
	}
	p, err := c.startNode(n)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("restart %s node %d: %w", c.kind, i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.startTimeout)
	defer cancel()
	if err := c.waitReady(ctx, map[*node]*proc{n: p}); err != nil {
		return fmt.Errorf("restart %s node %d: %w", c.kind, i, err)
	}
	return nil
}

// startAll starts every node and waits for the cluster; on failure it stops what it started.
func (c *LocalCluster) startAll(ctx context.Context) error {
	c.mu.Lock()
	started := make(map[*node]*proc, len(c.nodes))
	for _, n := range c.nodes {
		p, err := c.startNode(n)
		if err != nil {
			c.mu.Unlock()
			_ = c.Stop()
			return err
		}
		started[n] = p
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.startTimeout)
	defer cancel()
	if err := c.waitReady(ctx, started); err != nil {
		_ = c.Stop()
		return err
	}
	return nil
}

// startNode launches n's process. Caller holds c.mu.
func (c *LocalCluster) startNode(n *node) (*proc, error) {
	p, err := startProc(n.argv, n.env, n.logPath, c.cfg.logEcho)
	if err != nil {
		return nil, fmt.Errorf("start %s node %d: %w", c.kind, n.index, err)
	}
	n.p = p
	return p, nil
}

// waitReady waits until each freshly started process passed its node check and then until Metadata
// lists the broker id (index+1) of every node that is running now: a node the test killed on purpose
// is not waited for. A started process that exits meanwhile fails the wait at once.
func (c *LocalCluster) waitReady(ctx context.Context, started map[*node]*proc) error {
	exited := func() error {
		for n, p := range started {
			select {
			case <-p.done:
				return fmt.Errorf("%s node %d: %w (%v); log %s:\n%s", c.kind, n.index, ErrExited, p.err,
					n.logPath, tailFile(n.logPath, 30))
			default:
			}
		}
		return nil
	}
	if c.nodeReady != nil {
		for n, p := range started {
			if err := c.nodeReady(ctx, n, p); err != nil {
				if e := exited(); e != nil {
					return e
				}
				return fmt.Errorf("%s node %d: %w", c.kind, n.index, err)
			}
		}
	}
	// kadm reads metadata through franz-go's cache, which by default serves an answer for 5 s: without
	// a short MetadataMinAge (kgo allows 10 ms and up) a first answer missing a broker would be seen
	// again for those 5 s.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.RetryTimeout(2*time.Second),
		kgo.DialTimeout(2*time.Second), kgo.RequestTimeoutOverhead(3*time.Second), kgo.MetadataMinAge(max(10*time.Millisecond, c.cfg.metadataPoll/2)))
	if err != nil {
		return fmt.Errorf("%s: admin client: %w", c.kind, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for {
		if err := exited(); err != nil {
			return err
		}
		want := c.runningIDs()
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		brokers, err := adm.ListBrokers(mctx)
		cancel()
		if err != nil {
			last = err
		} else {
			have := brokers.NodeIDs()
			missing := slices.DeleteFunc(slices.Clone(want), func(id int32) bool { return slices.Contains(have, id) })
			if len(missing) == 0 {
				return nil
			}
			last = fmt.Errorf("metadata lists brokers %v, want %v", have, want)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (%v): last check: %v\n%s", c.kind, ErrNotReady, c.cfg.startTimeout, last,
				c.TailLogs(30))
		case <-time.After(c.cfg.metadataPoll):
		}
	}
}

// runningIDs returns the broker ids (index+1) of the nodes with a live process.
func (c *LocalCluster) runningIDs() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int32
	for _, n := range c.nodes {
		if n.p != nil {
			ids = append(ids, int32(n.index+1))
		}
	}
	return ids
}

// tailFile returns the last n lines of path, or a note why it cannot.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)\n", err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "(empty)\n"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
