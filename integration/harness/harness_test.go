package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestToolClass(t *testing.T) {
	tests := []struct {
		tool    Tool
		version string
		want    string
		wantErr bool
	}{
		{ToolDumpLog, "4.3.1", "org.apache.kafka.tools.DumpLogSegments", false},
		{ToolDumpLog, "3.9.2", "kafka.tools.DumpLogSegments", false},
		{ToolConsoleProducer, "4.0.0", "org.apache.kafka.tools.ConsoleProducer", false},
		{ToolConsoleProducer, "3.9.2", "kafka.tools.ConsoleProducer", false},
		{ToolTopics, "3.9.2", "org.apache.kafka.tools.TopicCommand", false},
		{ToolStorage, "4.3.1", "kafka.tools.StorageTool", false},
		{Tool("org.example.Main"), "4.3.1", "org.example.Main", false},
		{Tool("kafka-nonsense"), "4.3.1", "", true},
	}
	for _, tt := range tests {
		got, err := tt.tool.Class(tt.version)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s.Class(%s) = %q, %v; want %q (error %v)", tt.tool, tt.version, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadOption) {
			t.Errorf("%s.Class: error %v is not ErrBadOption", tt.tool, err)
		}
	}
}

func TestKafkaMajor(t *testing.T) {
	for v, want := range map[string]int{"4.3.1": 4, "3.9.2": 3, "10.0.0": 10, "": 0, "x": 0} {
		if got := kafkaMajor(v); got != want {
			t.Errorf("kafkaMajor(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestKafkaProperties(t *testing.T) {
	cfg, err := buildConfig([]Option{Nodes(3), BrokerConfig("num.partitions", "7"), BrokerConfig("x.y", "z")})
	if err != nil {
		t.Fatal(err)
	}
	got := kafkaProperties(cfg, 1, "127.0.0.1", 9092, 9093, "1@a:1,2@b:2,3@c:3", "/d")
	for _, want := range []string{
		"node.id=2\n",
		"controller.quorum.voters=1@a:1,2@b:2,3@c:3\n",
		"listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n",
		"advertised.listeners=PLAINTEXT://127.0.0.1:9092\n",
		"log.dirs=/d\n",
		"offsets.topic.replication.factor=3\n",
		"transaction.state.log.min.isr=2\n",
		"num.partitions=7\n", // caller's override wins
		"x.y=z\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("server.properties lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\nnum.partitions=") != 1 {
		t.Errorf("num.partitions set twice:\n%s", got)
	}

	one, _ := buildConfig(nil)
	if got := kafkaProperties(one, 0, "127.0.0.1", 1, 2, "1@a:2", "/d"); !strings.Contains(got, "offsets.topic.replication.factor=1\n") ||
		!strings.Contains(got, "transaction.state.log.min.isr=1\n") {
		t.Errorf("single node must use replication factor 1 for internal topics:\n%s", got)
	}
}

// TestKafkaPropertiesListeners checks that extra listeners get their ports, advertised addresses and
// security protocols next to PLAINTEXT and CONTROLLER, and that a BrokerConfig override still wins.
func TestKafkaPropertiesListeners(t *testing.T) {
	cfg, err := buildConfig([]Option{Listener("SASL", "SASL_PLAINTEXT"), Listener("TLS", "SSL"),
		BrokerConfig("listener.name.tls.ssl.client.auth", "required")})
	if err != nil {
		t.Fatal(err)
	}
	got := kafkaProperties(cfg, 0, "127.0.0.1", 9092, 9093, "1@a:9093", "/d", 9094, 9095)
	for _, want := range []string{
		"listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SASL://127.0.0.1:9094,TLS://127.0.0.1:9095\n",
		"advertised.listeners=PLAINTEXT://127.0.0.1:9092,SASL://127.0.0.1:9094,TLS://127.0.0.1:9095\n",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT,TLS:SSL\n",
		"inter.broker.listener.name=PLAINTEXT\n",
		"listener.name.tls.ssl.client.auth=required\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("server.properties lacks %q:\n%s", want, got)
		}
	}
}

func TestBuildConfigRejects(t *testing.T) {
	for _, opts := range [][]Option{{Nodes(0)}, {Nodes(10)}, {StartTimeout(0)}, {ReadyPoll(0)},
		{Listener("PLAINTEXT", "SSL")}, {Listener("sasl", "SASL_PLAINTEXT")}, {Listener("A", "SSL"), Listener("A", "SSL")},
		{Listener("A", "TLS")}} {
		if _, err := buildConfig(opts); !errors.Is(err, ErrBadOption) {
			t.Errorf("buildConfig: err %v, want ErrBadOption", err)
		}
	}
}

func TestNewClusterID(t *testing.T) {
	a, err := newClusterID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newClusterID()
	if len(a) != 22 || a == b || strings.ContainsAny(a, "+/=") {
		t.Errorf("cluster ids %q, %q: want distinct 22-char URL-safe base64", a, b)
	}
	// A leading '-' makes kafka-storage read the id as an option; 2000 draws hit it with p ~ 1-(63/64)^2000.
	for range 2000 {
		if id, err := newClusterID(); err != nil || id[0] == '-' {
			t.Fatalf("cluster id %q, %v: want no leading '-'", id, err)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("ports %v: want 8 distinct positive ports", ports)
		}
		seen[p] = true
	}
}

func TestTailFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("1\n2\n3\n4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := tailFile(p, 2); got != "3\n4\n" {
		t.Errorf("tail 2 = %q", got)
	}
	if got := tailFile(p, 10); got != "1\n2\n3\n4\n" {
		t.Errorf("tail 10 = %q", got)
	}
	if got := tailFile(filepath.Join(t.TempDir(), "missing"), 2); !strings.Contains(got, "cannot read") {
		t.Errorf("tail of a missing file = %q", got)
	}
}

// TestProcKillAndStop checks the process lifecycle on plain shell processes: kill reaps, stop escalates
// to SIGKILL when SIGTERM is ignored, and both are no-ops on an exited process.
func TestProcKillAndStop(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "out.log")

	p, err := startProc([]string{"sleep", "60"}, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-p.done:
	default:
		t.Fatal("kill returned before the process was reaped")
	}
	if err := p.kill(); err != nil {
		t.Errorf("second kill: %v", err)
	}

	p, err = startProc([]string{"sh", "-c", `trap "" TERM; echo started; sleep 60`}, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitLogLine("started", 10*time.Millisecond)(ctx, &node{logPath: log}, p); err != nil {
		t.Fatalf("wait for 'started': %v", err)
	}
	if err := p.stop(100 * time.Millisecond); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := p.stop(time.Second); err != nil {
		t.Errorf("stop after exit: %v", err)
	}
}

// TestWaitLogLine: a restarted process's marker is looked for only in its own output, and a process
// that exits without printing it fails the wait with ErrExited.
func TestWaitLogLine(t *testing.T) {
	log := filepath.Join(t.TempDir(), "out.log")
	if err := os.WriteFile(log, []byte("old run: strom ready listen=x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := startProc([]string{"sh", "-c", "echo booting"}, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = waitLogLine(StromReadyLine, 10*time.Millisecond)(ctx, &node{logPath: log}, p)
	if !errors.Is(err, ErrExited) {
		t.Errorf("wait on a process that exited: %v, want ErrExited", err)
	}

	p, err = startProc([]string{"sh", "-c", "echo 'strom ready listen=127.0.0.1:1'; sleep 60"}, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	if err := waitLogLine(StromReadyLine, 10*time.Millisecond)(ctx, &node{logPath: log}, p); err != nil {
		t.Errorf("wait for the ready line: %v", err)
	}
}

// TestVersionsFileListsPinnedVersions: provisioning prefetches the versions in integration/kafka/VERSIONS;
// a version the harness defaults to but provisioning does not fetch would be downloaded mid-test.
func TestVersionsFileListsPinnedVersions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sourceDir(), "..", "kafka", "VERSIONS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := strings.Fields(string(b))
	for _, v := range []string{DefaultKafkaVersion, Kafka39Version} {
		if !slices.Contains(listed, v) {
			t.Errorf("integration/kafka/VERSIONS %v lacks %s", listed, v)
		}
	}
}

// TestRetryPortClash: a start that fails with a bind error in a node log is retried on fresh folders;
// other failures are not retried.
func TestRetryPortClash(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	clash := func() (*LocalCluster, error) {
		calls++
		if err := os.MkdirAll(filepath.Join(dir, "node-0"), 0o755); err != nil {
			return nil, err
		}
		if calls < 2 {
			_ = os.WriteFile(filepath.Join(dir, "node-0", "kafka.log"),
				[]byte("java.net.BindException: Address already in use\n"), 0o644)
			return nil, ErrExited
		}
		if _, err := os.Stat(filepath.Join(dir, "node-0", "kafka.log")); err == nil {
			return nil, errors.New("retry did not start from a fresh node folder")
		}
		return &LocalCluster{}, nil
	}
	if _, err := retryPortClash(dir, clash); err != nil || calls != 2 {
		t.Errorf("port clash: err %v after %d calls, want success on the 2nd", err, calls)
	}

	calls = 0
	other := func() (*LocalCluster, error) { calls++; return nil, ErrNotReady }
	if _, err := retryPortClash(t.TempDir(), other); !errors.Is(err, ErrNotReady) || calls != 1 {
		t.Errorf("other failure: err %v after %d calls, want ErrNotReady after 1", err, calls)
	}
}
