package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/harness"
)

// TestJavaConsumerGroups runs two members of Apache Kafka's Java consumer
// (4.3.1) in one group, with group.protocol=consumer (KIP-848: the broker
// assigns) and with group.protocol=classic, against Kafka 4.x and Strom.
// Each member commits synchronously after every poll and reports only the
// records of polls whose commit succeeded; together they must report every
// record exactly once, and both must take part.
func TestJavaConsumerGroups(t *testing.T) {
	java, err := harness.Java()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	libs, err := harness.KafkaLibs(harness.DefaultKafkaVersion)
	if err != nil {
		t.Fatalf("kafka %s jars: %v", harness.DefaultKafkaVersion, err)
	}
	src, err := filepath.Abs(filepath.Join("java848", "GroupConsumer.java"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range clusters() {
		if tg.name == "kafka-"+harness.Kafka39Version {
			continue // KIP-848 needs a Kafka 4 broker; 3.9 is covered by the classic tests elsewhere
		}
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel() // the targets share nothing but the pool; topic and group names are unique
			c := tg.start(t)
			for _, protocol := range []string{"consumer", "classic"} {
				t.Run(protocol, func(t *testing.T) {
					javaGroupScenario(t, c, java, libs, src, protocol)
				})
			}
		})
	}
}

func javaGroupScenario(t *testing.T, c harness.Cluster, java, libs, src, protocol string) {
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic, group := uniqueName("java-groups"), uniqueName("jg")
	createTopic(ctx, t, adm, topic, 4, int16(min(3, c.Nodes())), nil)

	stop := filepath.Join(t.TempDir(), "stop")
	var mu sync.Mutex
	counts := map[string]int{}
	perMember := [2]int{}
	change := make(chan struct{}, 1)
	var wg sync.WaitGroup
	var cmds []*exec.Cmd
	for i := range 2 {
		cmd := exec.CommandContext(ctx, java, "-Xmx256m", "-cp", filepath.Join(libs, "*"), src, c.Bootstrap(), topic, group, protocol, stop)
		cmd.Stderr = &tailWriter{t: t, prefix: "java stderr: "}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start java member: %v", err)
		}
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if v, ok := strings.CutPrefix(line, "V "); ok {
					mu.Lock()
					counts[v]++
					perMember[i]++
					mu.Unlock()
					select {
					case change <- struct{}{}:
					default:
					}
				} else if strings.HasPrefix(line, "COMMIT-FAILED") {
					t.Logf("member %d: %s", i, line)
				}
			}
		}()
	}
	defer func() {
		for _, cmd := range cmds {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill() // only if the test failed before the members stopped
			}
		}
	}()
	// Produce only once both members hold partitions, so both take part.
	for !groupHasMembers(ctx, adm, group, protocol, 2) {
		select {
		case <-ctx.Done():
			t.Fatalf("the two java members never formed a stable %s group", protocol)
		case <-time.After(200 * time.Millisecond):
		}
	}
	produce(ctx, t, cl, makeRecords(topic, 0, n, time.Now().Add(-time.Minute)))
	for {
		mu.Lock()
		got := len(counts)
		mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-change:
		case <-ctx.Done():
			t.Fatalf("java members consumed %d of %d records", got, n)
		}
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("java member %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for v, k := range counts {
		if k != 1 {
			t.Errorf("record %s reported %d times", v, k)
		}
	}
	if perMember[0] == 0 || perMember[1] == 0 {
		t.Errorf("records per member %v: the group did not share the partitions", perMember)
	}
}

// groupHasMembers reports whether group is stable with n members that all
// hold partitions.
func groupHasMembers(ctx context.Context, adm *kadm.Client, group, protocol string, n int) bool {
	if protocol == "consumer" {
		dg, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false
		}
		g := dg[group]
		ok := g.Err == nil && g.State == "Stable" && len(g.Members) == n
		for _, m := range g.Members {
			ok = ok && len(m.Assignment) > 0
		}
		return ok
	}
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return false
	}
	g := dg[group]
	ok := g.State == "Stable" && len(g.Members) == n
	for _, m := range g.Members {
		ca, isConsumer := m.Assigned.AsConsumer()
		ok = ok && isConsumer && len(ca.Topics) > 0 && len(ca.Topics[0].Partitions) > 0
	}
	return ok
}

// tailWriter logs a process's stderr lines to the test log.
type tailWriter struct {
	t      *testing.T
	prefix string
}

func (w *tailWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			w.t.Log(w.prefix + l)
		}
	}
	return len(p), nil
}
