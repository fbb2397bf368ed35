package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stromhq/strom/integration/harness"
)

// This file brings segmentio/kafka-go, kafka-python and the Java consumer to the membership
// proof of groupmembers_test.go (three members, late join, SIGTERM leave, SIGKILL expiry).

func init() {
	helperMains["kafkago-group-member"] = kafkaGoGroupMember
}

// printAssign prints the "ASSIGN p,p,.." line of the membership proof for parts ("ASSIGN -" when empty).
func printAssign(parts []int) {
	slices.Sort(parts)
	strs := []string{"-"}
	if len(parts) > 0 {
		strs = strs[:0]
		for _, p := range parts {
			strs = append(strs, fmt.Sprint(p))
		}
	}
	fmt.Printf("ASSIGN %s\n", strings.Join(strs, ","))
}

// kafkaGoGroupMember is one segmentio/kafka-go (v0.4.51) group member process for the membership proof:
// args are bootstrap, topic and group. It uses kafka-go's ConsumerGroup directly (the group Reader does
// not expose its assignment): one partition reader per assigned partition per generation, each record's
// offset committed with Generation.CommitOffsets (synchronous; refused once the generation ended) before
// its REC line. SIGTERM closes the group, leaving it.
func kafkaGoGroupMember(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kafkago-group-member BOOTSTRAP TOPIC GROUP")
		return 2
	}
	brokers, topic := strings.Split(args[0], ","), args[1]
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                args[2],
		Brokers:           brokers,
		Topics:            []string{topic},
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		StartOffset:       kafka.FirstOffset,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "new consumer group:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex // serializes the commits and REC lines of the partition goroutines
	for ctx.Err() == nil {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "next generation:", err)
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		var ps []int
		for _, a := range gen.Assignments[topic] {
			ps = append(ps, a.ID)
		}
		printAssign(ps)
		for _, a := range gen.Assignments[topic] {
			gen.Start(func(gctx context.Context) {
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: a.ID, MaxWait: 200 * time.Millisecond})
				defer r.Close()
				if err := r.SetOffset(a.Offset); err != nil {
					fmt.Fprintln(os.Stderr, "set offset:", err)
					return
				}
				for {
					m, err := r.ReadMessage(gctx)
					if err != nil {
						return // the generation ended
					}
					mu.Lock()
					err = gen.CommitOffsets(map[string]map[int]int64{topic: {m.Partition: m.Offset + 1}})
					if err == nil {
						fmt.Printf("REC %d %d\n", m.Partition, m.Offset)
					}
					mu.Unlock()
					if err != nil {
						fmt.Fprintln(os.Stderr, "commit:", err)
						return // the next owner reads it again from the committed offset
					}
				}
			})
		}
	}
	if err := cg.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	return 0
}

// helperMember returns the memberCommand running this test binary as helper program name.
func helperMember(t *testing.T, name string, extra ...string) memberCommand {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, self, append([]string{bs, topic, group}, extra...)...)
		cmd.Env = append(os.Environ(), "STROM_TEST_HELPER="+name)
		return cmd
	}
}

// TestGroupMembersKafkaGo runs the membership proof with three segmentio/kafka-go ConsumerGroups, each in
// its own process, committing each record synchronously within its generation: exactly once.
func TestGroupMembersKafkaGo(t *testing.T) {
	runGroupMembershipTargets(t, helperMember(t, "kafkago-group-member"), true, true)
}

// TestGroupMembersKafkaPython runs the membership proof with three kafka-python (2.0.2, Debian) consumers
// (old group API versions: JoinGroup v2, SyncGroup v1, OffsetCommit v2), committing each record
// synchronously: exactly once.
func TestGroupMembersKafkaPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Fatalf("kafka-python not importable by %s (apt-get install python3-kafka): %v", python, err)
	}
	script, err := filepath.Abs(filepath.Join("python", "kp_group_member.py"))
	if err != nil {
		t.Fatal(err)
	}
	runGroupMembershipTargets(t, func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		return exec.CommandContext(ctx, python, "-u", script, bs, topic, group)
	}, true, true)
}

// javaMember returns the memberCommand running java848/GroupMember.java with protocol.
func javaMember(t *testing.T, protocol string) memberCommand {
	java, err := harness.Java()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	libs, err := harness.KafkaLibs(harness.DefaultKafkaVersion)
	if err != nil {
		t.Fatalf("kafka %s jars: %v", harness.DefaultKafkaVersion, err)
	}
	src, err := filepath.Abs(filepath.Join("java848", "GroupMember.java"))
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		return exec.CommandContext(ctx, java, "-Xmx192m", "-XX:TieredStopAtLevel=1", "-cp", filepath.Join(libs, "*"), src, bs, topic, group, protocol)
	}
}

// TestGroupMembersJavaClassic runs the membership proof with three Apache Kafka 4.3.1 Java consumers on
// the classic group protocol, committing each record synchronously: exactly once.
func TestGroupMembersJavaClassic(t *testing.T) {
	runGroupMembershipTargets(t, javaMember(t, "classic"), true, true)
}

// TestGroupMembersJavaKIP848 runs the membership proof with three Java consumers on the KIP-848 consumer
// protocol. B leaves with SIGTERM instead of being killed: the KIP-848 session timeout is the broker's
// group.consumer.session.timeout.ms (45 s by default, and its minimum), too long for this test.
func TestGroupMembersJavaKIP848(t *testing.T) {
	runGroupMembershipTargets(t, javaMember(t, "consumer"), true, false)
}
