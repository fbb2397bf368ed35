package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/gaps"
	"github.com/stromhq/strom/integration/harness"
)

// groupTargets lists the clusters the multi-client group and transaction proofs run against: the
// current Apache Kafka and Strom (Kafka 3.9 adds a JVM start and nothing these clients exercise).
func groupTargets() []target {
	var out []target
	for _, tg := range clusters() {
		if tg.name == "strom" || tg.name == "kafka-"+harness.DefaultKafkaVersion {
			out = append(out, tg)
		}
	}
	return out
}

// memberCommand builds the command of one group member process. The process consumes topic in group
// from the earliest offset with a 6 s session timeout and prints to stdout (or stderr, for kcat's own
// rebalance lines) "ASSIGN p,p,.." (or "ASSIGN -") whenever its assignment changes and "REC p o" for each
// record, after that record's offset is committed when the client commits synchronously. SIGTERM makes
// it close (leave the group); SIGKILL leaves the coordinator to expire it.
type memberCommand func(ctx context.Context, bootstrap, topic, group string) *exec.Cmd

// member is one running member process; its output is parsed as it comes.
type member struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is read

	mu     sync.Mutex // guards the fields below
	assign []int32    // latest assignment reported
	recs   [][2]int64 // (partition, offset) per REC line, in order
	log    []string   // every line, for failure messages
}

// kcatAssigned matches kcat's "% Group g rebalanced (memberid m): assigned: t [0], t [3]" line.
var kcatAssigned = regexp.MustCompile(`\[(\d+)\]`)

func (m *member) parse(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		m.mu.Lock()
		if len(m.log) < 400 {
			m.log = append(m.log, line)
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "ASSIGN":
			m.assign = nil
			if f[1] != "-" {
				for _, s := range strings.Split(f[1], ",") {
					p, _ := strconv.Atoi(s)
					m.assign = append(m.assign, int32(p))
				}
			}
		case len(f) == 3 && f[0] == "REC":
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			o, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				m.recs = append(m.recs, [2]int64{p, o})
			}
		case strings.Contains(line, "rebalanced") && strings.Contains(line, "assigned:"):
			m.assign = nil
			for _, g := range kcatAssigned.FindAllStringSubmatch(line[strings.Index(line, "assigned:"):], -1) {
				p, _ := strconv.Atoi(g[1])
				m.assign = append(m.assign, int32(p))
			}
		case strings.Contains(line, "rebalanced") && strings.Contains(line, "revoked:"):
			m.assign = nil
		}
		m.mu.Unlock()
	}
}

func (m *member) snapshot() (assign []int32, recs [][2]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assign), slices.Clone(m.recs)
}

func (m *member) output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.log, "\n")
}

// startMember starts one member; it is killed when t ends if still running.
func startMember(ctx context.Context, t testing.TB, name string, mk memberCommand, bootstrap, topic, group string) *member {
	t.Helper()
	cmd := mk(ctx, bootstrap, topic, group)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start member %s: %v", name, err)
	}
	m := &member{name: name, cmd: cmd, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.parse(stdout) }()
	go func() { defer wg.Done(); m.parse(stderr) }()
	go func() {
		wg.Wait()
		_ = cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-m.done
	})
	return m
}

// groupPhase is how long one step of the membership scenario may take: a join, or an expiry after the
// 6 s session timeout plus a rebalance.
const groupPhase = 25 * time.Second

// waitAssigned waits until the live members' latest assignments are disjoint, each non-empty, and
// together cover partitions 0..parts-1.
func waitAssigned(t testing.TB, live []*member, parts int, step string) {
	t.Helper()
	deadline := time.Now().Add(groupPhase)
	for {
		seen := map[int32]int{}
		ok := true
		for _, m := range live {
			a, _ := m.snapshot()
			if len(a) == 0 {
				ok = false
			}
			for _, p := range a {
				seen[p]++
			}
		}
		for p := range int32(parts) {
			if seen[p] != 1 {
				ok = false
			}
		}
		if ok && len(seen) == parts {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, m := range live {
				a, _ := m.snapshot()
				fmt.Fprintf(&b, "\n  %s assigned %v; output:\n%s", m.name, a, m.output())
			}
			t.Fatalf("%s: the live members never shared the %d partitions:%s", step, parts, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitConsumed waits until the members together report want distinct records.
func waitConsumed(t testing.TB, all []*member, want int, step string) {
	t.Helper()
	deadline := time.Now().Add(groupPhase)
	for {
		distinct := map[[2]int64]bool{}
		for _, m := range all {
			_, recs := m.snapshot()
			for _, r := range recs {
				distinct[r] = true
			}
		}
		if len(distinct) >= want {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, m := range all {
				a, recs := m.snapshot()
				fmt.Fprintf(&b, "\n  %s assigned %v, %d records; output:\n%s", m.name, a, len(recs), m.output())
			}
			t.Fatalf("%s: the group consumed %d distinct records, want %d:%s", step, len(distinct), want, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runGroupMembership is the membership proof for one client family: members A and B join a group on a
// 6-partition topic and share it; C joins late; A leaves cleanly (SIGTERM); B is killed (SIGKILL) and
// expires after the session timeout (or, without killB, leaves cleanly too); C ends with every partition. Records are produced only when the
// assignment is settled and each batch is consumed before the next change, so a client that commits each
// record synchronously before printing it must show every record exactly once (exactlyOnce); a client
// that commits asynchronously must show every record at least once. Finally the committed offsets must
// reach the end of every partition.
func runGroupMembership(t testing.TB, c harness.Cluster, mk memberCommand, exactlyOnce, killB bool) {
	const parts, batch = 6, 60
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic, group := uniqueName("members"), uniqueName("mg")
	createTopic(ctx, t, adm, topic, parts, 1, nil)
	start := time.Now()
	produced := 0
	step := func(name string, live, all []*member) {
		waitAssigned(t, live, parts, name)
		produce(ctx, t, cl, makeRecords(topic, produced, batch, time.Now()))
		produced += batch
		waitConsumed(t, all, produced, name)
		t.Logf("%s: settled and consumed %d records at %v", name, produced, time.Since(start).Round(time.Millisecond))
	}

	a := startMember(ctx, t, "A", mk, c.Bootstrap(), topic, group)
	b := startMember(ctx, t, "B", mk, c.Bootstrap(), topic, group)
	all := []*member{a, b}
	step("A and B join", []*member{a, b}, all)

	cm := startMember(ctx, t, "C", mk, c.Bootstrap(), topic, group)
	all = append(all, cm)
	step("C joins late", []*member{a, b, cm}, all)

	time.Sleep(500 * time.Millisecond) // lets an auto-committing client commit what it printed
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(groupPhase):
		t.Fatalf("member A did not exit after SIGTERM; output:\n%s", a.output())
	}
	step("A leaves", []*member{b, cm}, all)

	time.Sleep(500 * time.Millisecond)
	if killB {
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.done
		step("B is killed", []*member{cm}, all)
	} else {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(groupPhase):
			t.Fatalf("member B did not exit after SIGTERM; output:\n%s", b.output())
		}
		step("B leaves", []*member{cm}, all)
	}

	time.Sleep(500 * time.Millisecond)
	_ = cm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cm.done:
	case <-time.After(groupPhase):
		t.Fatalf("member C did not exit after SIGTERM; output:\n%s", cm.output())
	}

	count := map[[2]int64]int{}
	readers := map[[2]int64]string{}
	per := map[string]int{}
	for _, m := range all {
		_, recs := m.snapshot()
		per[m.name] = len(recs)
		for _, r := range recs {
			count[r]++
			readers[r] += m.name
		}
	}
	for _, m := range all {
		for _, l := range strings.Split(m.output(), "\n") {
			if strings.HasPrefix(l, "COMMITFAIL") {
				t.Logf("%s: %s", m.name, l)
			}
		}
	}
	dups := 0
	dupBy := map[string]int{} // which members read the repeated records, e.g. "AC"
	for r, n := range count {
		if n > 1 {
			dups += n - 1
			dupBy[readers[r]]++
			if exactlyOnce {
				t.Errorf("record %d/%d read %d times (by %s)", r[0], r[1], n, readers[r])
			}
		}
	}
	if dups > 0 {
		t.Logf("repeated records by readers: %v", dupBy)
		if exactlyOnce {
			for _, m := range all {
				t.Logf("%s output:\n%s", m.name, m.output())
			}
		}
	}
	if len(count) != produced {
		t.Errorf("the group read %d distinct records, want %d", len(count), produced)
	}
	for _, name := range []string{"A", "B", "C"} {
		if per[name] == 0 {
			t.Errorf("member %s read nothing", name)
		}
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		o, ok := offs.Lookup(topic, e.Partition)
		if !ok || o.Err != nil || o.At != e.Offset {
			t.Errorf("partition %d: committed %+v, end %d", e.Partition, o, e.Offset)
		}
	})
	t.Logf("records per member %v, duplicates %d, total %v", per, dups, time.Since(start).Round(time.Millisecond))
}

// runGroupMembershipTargets runs the membership proof for one client on every group target, under the
// strict gap list. The targets run side by side: each proof spends most of its time waiting out session
// timeouts and rebalances, and they share nothing but the pool (topic and group names are unique).
func runGroupMembershipTargets(t *testing.T, mk memberCommand, exactlyOnce, killB bool) {
	for _, tg := range groupTargets() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			c := tg.start(t)
			gaps.Run(t, func(t testing.TB) { runGroupMembership(t, c, mk, exactlyOnce, killB) })
		})
	}
}

// TestGroupMembersConfluentPython runs the membership proof with confluent-kafka-python (Debian's 1.7.0
// on librdkafka 2.0.2), committing each record synchronously: exactly once. The member assigns its
// partitions at the committed offsets it looks up itself, around librdkafka bug #4636 (see
// python/ck_group_member.py), which made a member re-read a partition it got back from an earlier
// generation: twice in CI, on Strom, with every commit acknowledged.
func TestGroupMembersConfluentPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatalf("confluent-kafka-python not importable by %s (apt-get install python3-confluent-kafka): %v", python, err)
	}
	script, err := filepath.Abs(filepath.Join("python", "ck_group_member.py"))
	if err != nil {
		t.Fatal(err)
	}
	runGroupMembershipTargets(t, func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		return exec.CommandContext(ctx, python, "-u", script, bs, topic, group)
	}, true, true)
}

// TestGroupMembersKcat runs the membership proof with three `kcat -G` balanced consumers (kcat 1.7.1 on
// librdkafka 2.0.2). kcat cannot commit synchronously: it auto-commits every 200 ms and on close, so the
// proof is at least once with no loss (a member killed between a read and its commit would repeat it).
func TestGroupMembersKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not installed (apt-get install kcat): %v", err)
	}
	runGroupMembershipTargets(t, func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		return exec.CommandContext(ctx, kcat, "-b", bs, "-G", group, "-u", "-f", `REC %p %o\n`,
			"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
			"-X", "auto.commit.interval.ms=200", topic)
	}, false, true)
}

// TestGroupMembersKafkaJS runs the membership proof with three kafkajs 2.2.4 consumers, one node process
// each, committing each record with an awaited commitOffsets before printing it: exactly once.
func TestGroupMembersKafkaJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not installed: %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("clients", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(node, "-e", "require('kafkajs')").Run(); err != nil {
		cmd := exec.Command(node, "-e", "require('kafkajs')")
		cmd.Dir = dir
		if err := cmd.Run(); err != nil {
			t.Fatalf("kafkajs not installed (run `npm ci` in %s): %v", dir, err)
		}
	}
	runGroupMembershipTargets(t, func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "group_member.js"), bs, topic, group)
		cmd.Dir = dir
		return cmd
	}, true, true)
}
