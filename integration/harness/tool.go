package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tool names one of Kafka's command-line tools by its script name; KafkaTool maps it to the main class
// of the Kafka version at hand. A Tool containing a dot is taken as a main class name as is.
type Tool string

// Kafka's tools, by the name of the script that runs them in a Kafka distribution.
const (
	ToolTopics          Tool = "kafka-topics"
	ToolConfigs         Tool = "kafka-configs"
	ToolDumpLog         Tool = "kafka-dump-log"
	ToolConsoleProducer Tool = "kafka-console-producer"
	ToolConsoleConsumer Tool = "kafka-console-consumer"
	ToolGetOffsets      Tool = "kafka-get-offsets"
	ToolProducerPerf    Tool = "kafka-producer-perf-test"
	ToolConsumerPerf    Tool = "kafka-consumer-perf-test"
	ToolConsumerGroups  Tool = "kafka-consumer-groups"
	ToolStorage         Tool = "kafka-storage"
)

// toolClasses maps a tool to its main class in Kafka 4.x and 3.9 (several moved from Scala `kafka.*` to
// Java `org.apache.kafka.tools.*` in 4.0).
var toolClasses = map[Tool][2]string{ // [4.x, 3.x]
	ToolTopics:          {"org.apache.kafka.tools.TopicCommand", "org.apache.kafka.tools.TopicCommand"},
	ToolConfigs:         {"kafka.admin.ConfigCommand", "kafka.admin.ConfigCommand"},
	ToolDumpLog:         {"org.apache.kafka.tools.DumpLogSegments", "kafka.tools.DumpLogSegments"},
	ToolConsoleProducer: {"org.apache.kafka.tools.ConsoleProducer", "kafka.tools.ConsoleProducer"},
	ToolConsoleConsumer: {"org.apache.kafka.tools.consumer.ConsoleConsumer", "org.apache.kafka.tools.consumer.ConsoleConsumer"},
	ToolGetOffsets:      {"org.apache.kafka.tools.GetOffsetShell", "org.apache.kafka.tools.GetOffsetShell"},
	ToolProducerPerf:    {"org.apache.kafka.tools.ProducerPerformance", "org.apache.kafka.tools.ProducerPerformance"},
	ToolConsumerPerf:    {"org.apache.kafka.tools.ConsumerPerformance", "org.apache.kafka.tools.ConsumerPerformance"},
	ToolConsumerGroups:  {"org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"},
	ToolStorage:         {"kafka.tools.StorageTool", "kafka.tools.StorageTool"},
}

// Class returns the main class of tool in Kafka version.
func (t Tool) Class(version string) (string, error) {
	if strings.Contains(string(t), ".") {
		return string(t), nil
	}
	cls, ok := toolClasses[t]
	if !ok {
		return "", fmt.Errorf("%w: unknown Kafka tool %q", ErrBadOption, string(t))
	}
	if kafkaMajor(version) >= 4 {
		return cls[0], nil
	}
	return cls[1], nil
}

// ToolResult is what one run of a Kafka tool printed.
type ToolResult struct {
	Stdout, Stderr string
}

// toolTimeout bounds every tool run; a console consumer without --max-messages or --timeout-ms would
// otherwise run forever.
const toolTimeout = 3 * time.Minute

// KafkaTool runs one of Kafka version's command-line tools with the cached jars (fetched on first use),
// feeding it stdin (may be nil). A non-zero exit is an error that carries both outputs.
func KafkaTool(ctx context.Context, version string, tool Tool, stdin io.Reader, args ...string) (ToolResult, error) {
	cls, err := tool.Class(version)
	if err != nil {
		return ToolResult{}, err
	}
	libs, err := KafkaLibs(version)
	if err != nil {
		return ToolResult{}, err
	}
	java, err := Java()
	if err != nil {
		return ToolResult{}, err
	}
	logFlag, err := logFlags(libs, version, true)
	if err != nil {
		return ToolResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	argv := []string{"-Xmx256m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"}
	argv = append(argv, logFlag...)
	argv = append(argv, "-cp", filepath.Join(libs, "*"), cls)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, java, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Stdin = stdin
	cmd.SysProcAttr = childAttr()
	err = cmd.Run()
	res := ToolResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		return res, fmt.Errorf("%s (%s, Kafka %s) %s: %w\nstdout:\n%s\nstderr:\n%s", tool, cls, version,
			strings.Join(args, " "), err, res.Stdout, res.Stderr)
	}
	return res, nil
}

// RunKafkaTool runs a Kafka tool (see KafkaTool) and returns its stdout; a failure fails the test.
func RunKafkaTool(t testing.TB, version string, tool Tool, args ...string) string {
	t.Helper()
	start := time.Now()
	res, err := KafkaTool(context.Background(), version, tool, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (Kafka %s): %.1fs", tool, version, time.Since(start).Seconds())
	return res.Stdout
}

// RunKafkaToolInput is RunKafkaTool with stdin, e.g. the lines a console producer sends.
func RunKafkaToolInput(t testing.TB, version string, tool Tool, stdin string, args ...string) string {
	t.Helper()
	start := time.Now()
	res, err := KafkaTool(context.Background(), version, tool, strings.NewReader(stdin), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (Kafka %s): %.1fs", tool, version, time.Since(start).Seconds())
	return res.Stdout
}
