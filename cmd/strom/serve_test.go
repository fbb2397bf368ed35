package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/spf13/pflag"

	"github.com/stromhq/strom/broker"
	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// freePort returns a 127.0.0.1 port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildStrom compiles the binary into a temp dir.
func buildStrom(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strom")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running `strom serve`.
type proc struct {
	cmd        *exec.Cmd
	done       chan error
	readyLines atomic.Int32 // lines containing the ready marker
	stderrDone chan struct{}
}

// startServe starts the binary and waits (bounded) for the ready line.
func startServe(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), stderrDone: make(chan struct{})}
	ready := make(chan string, 1)
	lines := make(chan string, 1024)
	go func() {
		defer close(p.stderrDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "strom ready listen=") {
				p.readyLines.Add(1)
				select {
				case ready <- line:
				default:
				}
			}
			select {
			case lines <- line:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		close(lines)
	}()
	go func() {
		<-p.stderrDone // Wait closes the pipe: read it to the end first
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case <-ready:
		return p
	case err := <-p.done:
		var sb strings.Builder
		for l := range lines {
			sb.WriteString(l + "\n")
		}
		t.Fatalf("strom serve exited before ready: %v\n%s", err, sb.String())
	case <-time.After(60 * time.Second):
		t.Fatal("strom serve did not log the ready line within 60s")
	}
	return nil
}

// stop sends SIGTERM and requires exit status 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("strom serve after SIGTERM: %v (want exit 0)", err)
		}
		if n := p.readyLines.Load(); n != 1 {
			t.Fatalf("%d log lines contain the ready marker, want exactly 1", n)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("strom serve did not exit within 60s of SIGTERM")
	}
}

// rawIdempotentBatch builds one uncompressed batch of an idempotent producer.
func rawIdempotentBatch(pid int64, epoch int16, seq int32, value string) []byte {
	now := time.Now().UnixMilli()
	h := storage.BatchHeader{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, BaseTimestamp: now, MaxTimestamp: now, PartitionLeaderEpoch: -1}
	return storage.BuildBatch(h, []storage.Record{{Value: []byte(value)}})
}

// produceRaw sends one batch to topic/0 with acks=all and returns the base
// offset.
func produceRaw(ctx context.Context, cl *kgo.Client, topic string, batch []byte) (int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = append([]byte(nil), batch...)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return 0, fmt.Errorf("produce error code %d", p.ErrorCode)
	}
	return p.BaseOffset, nil
}

func TestServeProcessRestart(t *testing.T) {
	bin := buildStrom(t)
	dataDir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"--data-dir", dataDir, "--listen", addr, "--raft-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--log-level", "info"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := startServe(t, bin, args...)
	// Versions pinned to Kafka 4.0 (Produce v12) so raw requests name topics.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"), kgo.RetryTimeout(20*time.Second), kgo.MaxVersions(kversion.V4_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	retention := "123456"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "raw"); err != nil {
		t.Fatal(err)
	}
	const n = 100
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pidResp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || pidResp.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %d", err, pidResp.ErrorCode)
	}
	batch := rawIdempotentBatch(pidResp.ProducerID, pidResp.ProducerEpoch, 0, "raw-0")
	rawOff, err := produceRaw(ctx, cl, "raw", batch)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	p.stop(t)

	// The ready line must appear at any log level.
	p = startServe(t, bin, append(args, "--log-level", "warn")...)
	defer p.stop(t)
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(20*time.Second), kgo.MaxVersions(kversion.V4_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm = kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, "orders", "raw")
	if err != nil {
		t.Fatal(err)
	}
	if len(td["orders"].Partitions) != 2 || len(td["raw"].Partitions) != 1 {
		t.Fatalf("topics after restart: %+v", td)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	got, err := rc.On("orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range got.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() == retention {
			found = true
		}
	}
	if !found {
		t.Fatalf("retention.ms override lost after restart")
	}
	// The retried batch is a duplicate: same offset, nothing appended.
	again, err := produceRaw(ctx, cl, "raw", batch)
	if err != nil {
		t.Fatal(err)
	}
	if again != rawOff {
		t.Fatalf("retried idempotent batch got offset %d, want the original %d", again, rawOff)
	}
	ends, err := adm.ListEndOffsets(ctx, "raw", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("raw", 0); o.Offset != rawOff+1 {
		t.Fatalf("raw end offset %d, want %d (duplicate appended?)", o.Offset, rawOff+1)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == "orders" {
			total += o.Offset
		}
	})
	if total != n {
		t.Fatalf("orders holds %d records after restart, want %d", total, n)
	}
	// Every record reads back.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", len(seen), n)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
}

func TestServeFlagSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "strom.conf")
	if err := os.WriteFile(file, []byte("# comment\ndata-dir = /from/file\nnode-id=7\nfsync=never\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STROM_NODE_ID", "9")
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--fsync", "interval"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigSources(cmd.Flags(), file); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"data-dir": "/from/file", "node-id": "9", "fsync": "interval", "listen": "127.0.0.1:9092"} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	bad := filepath.Join(dir, "bad.conf")
	_ = os.WriteFile(bad, []byte("no-such-flag=1\n"), 0o644)
	if err := applyConfigSources(newServeCmd().Flags(), bad); err == nil {
		t.Error("unknown config file key accepted")
	}
	if _, err := readConfigFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestServeAuthorizerFlags(t *testing.T) {
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--authorizer", "--super-users", "User:admin; User:broker", "--allow-everyone-if-no-acl-found"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"authorizer": "true", "super-users": "User:admin;User:broker", "allow-everyone-if-no-acl-found": "true"} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	def := newServeCmd()
	for name, want := range map[string]string{"authorizer": "false", "super-users": "", "allow-everyone-if-no-acl-found": "false"} {
		if got := def.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("default %s = %q, want %q", name, got, want)
		}
	}
}

func TestReadyLineAtAnyLogLevel(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string
	}{
		{slog.LevelWarn, []string{"strom ready listen=1.2.3.4:5", "warned"}},
		{slog.LevelInfo, []string{"other info", "strom ready listen=1.2.3.4:5", "warned"}},
		{slog.LevelError, []string{"strom ready listen=1.2.3.4:5"}},
	} {
		var buf strings.Builder
		log := slog.New(readyAlways(&buf, tc.level)).With("k", "v")
		log.Debug("debugged")
		log.Info("other info")
		log.Info("strom ready listen=1.2.3.4:5")
		log.Warn("warned")
		out := buf.String()
		if n := strings.Count(out, "\n"); n != len(tc.want) {
			t.Fatalf("level %v: %d lines, want %d:\n%s", tc.level, n, len(tc.want), out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Fatalf("level %v: missing %q in\n%s", tc.level, w, out)
			}
		}
	}
}

// TestServeClusterFlags: --controller-quorum-voters and
// --broker-session-timeout from the command line or the environment, the
// derived raft listener, and the validation errors.
func TestServeClusterFlags(t *testing.T) {
	const voters = "1@127.0.0.1:9093,2@127.0.0.1:19093,3@127.0.0.1:29093"
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    string // substring; "" = valid
		voters     string
		raft       string
		session    time.Duration
		brokerOnly bool
		parseFail  bool // rejected while parsing the flag itself
	}{
		{name: "single node default", voters: "", raft: "127.0.0.1:9093", session: 9 * time.Second},
		{name: "three voters", args: []string{"--node-id", "2", "--controller-quorum-voters", voters},
			voters: voters, raft: "127.0.0.1:19093", session: 9 * time.Second},
		{name: "explicit raft listen wins", args: []string{"--node-id", "2", "--controller-quorum-voters", voters, "--raft-listen", "0.0.0.0:19093"},
			voters: voters, raft: "0.0.0.0:19093", session: 9 * time.Second},
		{name: "from the environment", args: []string{"--node-id", "3"}, env: map[string]string{"STROM_CONTROLLER_QUORUM_VOTERS": voters, "STROM_BROKER_SESSION_TIMEOUT": "3s"},
			voters: voters, raft: "127.0.0.1:29093", session: 3 * time.Second},
		{name: "session timeout", args: []string{"--broker-session-timeout", "1500ms"}, raft: "127.0.0.1:9093", session: 1500 * time.Millisecond},
		{name: "own id not listed", args: []string{"--node-id", "4", "--controller-quorum-voters", voters}, wantErr: "node id 4 is not among the controller quorum voters"},
		{name: "duplicate id", args: []string{"--controller-quorum-voters", "1@h:1,1@h:2"}, wantErr: "node id 1 listed twice", parseFail: true},
		{name: "duplicate address", args: []string{"--controller-quorum-voters", "1@h:1,2@h:1"}, wantErr: "address h:1 listed twice", parseFail: true},
		{name: "no id", args: []string{"--controller-quorum-voters", "127.0.0.1:9093"}, wantErr: "is not ID@HOST:PORT", parseFail: true},
		{name: "bad port", args: []string{"--controller-quorum-voters", "1@h:x"}, wantErr: "port \"x\"", parseFail: true},
		{name: "bad voters in env", env: map[string]string{"STROM_CONTROLLER_QUORUM_VOTERS": "1@nohost"}, wantErr: "STROM_CONTROLLER_QUORUM_VOTERS"},
		{name: "zero session timeout", args: []string{"--broker-session-timeout", "0s"}, wantErr: "session timeout"},
		{name: "broker-only node", args: []string{"--node-id", "4", "--process-roles", "broker", "--controller-quorum-voters", voters, "--raft-listen", "127.0.0.1:39093"},
			voters: voters, raft: "127.0.0.1:39093", session: 9 * time.Second, brokerOnly: true},
		{name: "both roles spelled out", args: []string{"--node-id", "1", "--process-roles", "controller,broker", "--controller-quorum-voters", voters},
			voters: voters, raft: "127.0.0.1:9093", session: 9 * time.Second},
		{name: "broker-only without raft listen", args: []string{"--node-id", "4", "--process-roles", "broker", "--controller-quorum-voters", voters}, wantErr: "needs --raft-listen"},
		{name: "broker-only listed as voter", args: []string{"--node-id", "2", "--process-roles", "broker", "--controller-quorum-voters", voters, "--raft-listen", "127.0.0.1:39093"}, wantErr: "is listed among the controller quorum voters"},
		{name: "broker-only on a voter's raft address", args: []string{"--node-id", "4", "--process-roles", "broker", "--controller-quorum-voters", voters, "--raft-listen", "127.0.0.1:9093"}, wantErr: "is a voter's"},
		{name: "broker-only without voters", args: []string{"--process-roles", "broker", "--raft-listen", "127.0.0.1:39093"}, wantErr: "needs the controller quorum voters"},
		{name: "controller-only", args: []string{"--process-roles", "controller"}, wantErr: "controller-only node is not supported", parseFail: true},
		{name: "unknown role", args: []string{"--process-roles", "broker,observer"}, wantErr: "role \"observer\"", parseFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, parseErr, err := loadServeConfig(t, tc.args, tc.env)
			if tc.parseFail {
				if parseErr == nil || !strings.Contains(parseErr.Error(), tc.wantErr) {
					t.Fatalf("parse: %v, want %q", parseErr, tc.wantErr)
				}
				return
			}
			if parseErr != nil {
				t.Fatal(parseErr)
			}
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if got := raft.FormatVoters(cfg.Voters); got != tc.voters || cfg.RaftListen != tc.raft || cfg.BrokerSessionTimeout != tc.session || cfg.BrokerOnly != tc.brokerOnly {
				t.Fatalf("voters %q raft %q session %v broker-only %v; want %q %q %v %v", got, cfg.RaftListen, cfg.BrokerSessionTimeout, cfg.BrokerOnly,
					tc.voters, tc.raft, tc.session, tc.brokerOnly)
			}
		})
	}
}

// TestServeSIGTERMWhileWaitingForPeers: a node of a three-voter cluster whose
// peers never come waits for a quorum; SIGTERM must end it then, not only
// once it is ready.
func TestServeSIGTERMWhileWaitingForPeers(t *testing.T) {
	bin := buildStrom(t)
	raftPort := freePort(t)
	voters := fmt.Sprintf("1@127.0.0.1:%d,2@127.0.0.1:%d,3@127.0.0.1:%d", raftPort, freePort(t), freePort(t))
	cmd := exec.Command(bin, "serve", "--node-id", "1", "--data-dir", t.TempDir(),
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--raft-listen", fmt.Sprintf("127.0.0.1:%d", raftPort),
		"--controller-quorum-voters", voters)
	var out syncBuffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	// Wait until it is up and waiting: its raft port accepts connections.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", raftPort), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("raft port never opened: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("strom serve exited 0 after SIGTERM during start-up, want an error\n%s", out.String())
		}
		if !strings.Contains(out.String(), "start cancelled") {
			t.Fatalf("exit %v without saying the start was cancelled:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("strom serve still running 30s after SIGTERM during start-up\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeLeaderBalanceFlags: the automatic leader balancing flags
// (auto.leader.rebalance.enable, leader.imbalance.check.interval.seconds,
// leader.imbalance.per.broker.percentage) from the command line or the
// environment, with Kafka's defaults, and their validation.
func TestServeLeaderBalanceFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantErr  string
		enabled  bool
		interval time.Duration
		percent  int
	}{
		{name: "defaults", enabled: true, interval: 300 * time.Second, percent: 10},
		{name: "interval", args: []string{"--leader-imbalance-check-interval", "30s"}, enabled: true, interval: 30 * time.Second, percent: 10},
		{name: "disabled", args: []string{"--auto-leader-rebalance=false"}, interval: 300 * time.Second, percent: 10},
		{name: "from the environment", env: map[string]string{"STROM_LEADER_IMBALANCE_CHECK_INTERVAL": "1m", "STROM_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE": "25"},
			enabled: true, interval: time.Minute, percent: 25},
		{name: "zero interval", args: []string{"--leader-imbalance-check-interval", "0s"}, wantErr: "leader imbalance check interval"},
		{name: "percentage above 100", args: []string{"--leader-imbalance-per-broker-percentage", "150"}, wantErr: "leader imbalance per broker percentage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, parseErr, err := loadServeConfig(t, tc.args, tc.env)
			if parseErr != nil {
				t.Fatal(parseErr)
			}
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if cfg.AutoLeaderRebalance != tc.enabled || cfg.LeaderImbalanceCheckInterval != tc.interval || cfg.LeaderImbalancePerBrokerPercentage != tc.percent {
				t.Fatalf("enabled %v interval %v percent %d; want %v %v %d", cfg.AutoLeaderRebalance, cfg.LeaderImbalanceCheckInterval,
					cfg.LeaderImbalancePerBrokerPercentage, tc.enabled, tc.interval, tc.percent)
			}
		})
	}
}

func TestServeRackFlags(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		env            map[string]string
		wantErr        string
		rack, selector string
	}{
		{name: "defaults"},
		{name: "rack and selector", args: []string{"--broker-rack", "use1-az2", "--replica-selector-class", broker.RackAwareSelector},
			rack: "use1-az2", selector: broker.RackAwareSelector},
		{name: "from the environment", env: map[string]string{"STROM_BROKER_RACK": "b"}, rack: "b"},
		{name: "unknown selector", args: []string{"--replica-selector-class", "com.example.Closest"}, wantErr: "replica selector class"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, parseErr, err := loadServeConfig(t, tc.args, tc.env)
			if parseErr != nil {
				t.Fatal(parseErr)
			}
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if cfg.Rack != tc.rack || cfg.ReplicaSelectorClass != tc.selector {
				t.Fatalf("rack %q selector %q; want %q %q", cfg.Rack, cfg.ReplicaSelectorClass, tc.rack, tc.selector)
			}
		})
	}
}

// loadServeConfig runs `strom serve`'s configuration steps on args with env
// set: the flags (a failure is parseErr), then the config file and
// environment and the derived settings (a failure is err).
func loadServeConfig(t *testing.T, args []string, env map[string]string) (cfg broker.Config, parseErr, err error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg = broker.DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addServeFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return cfg, err, nil
	}
	err = applyConfigSources(fs, "")
	if err == nil {
		err = finishServeConfig(fs, &cfg)
	}
	return cfg, nil, err
}

// failedAsWanted checks err against want, a substring ("" = no error
// expected), and reports whether the case ended with the expected error.
func failedAsWanted(t *testing.T, err error, want string) bool {
	t.Helper()
	if want != "" {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want %q", err, want)
		}
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}
