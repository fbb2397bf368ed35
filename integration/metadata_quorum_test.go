package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/harness"
)

// toolMetadataQuorum is Kafka's kafka-metadata-quorum.sh.
const toolMetadataQuorum harness.Tool = "org.apache.kafka.tools.MetadataQuorumCommand"

// quorumStatus is `describe --status` parsed: its keys in order and their values.
type quorumStatus struct {
	keys   []string
	values map[string]string
}

func parseQuorumStatus(out string) quorumStatus {
	s := quorumStatus{values: map[string]string{}}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		s.keys = append(s.keys, k)
		s.values[k] = strings.TrimSpace(v)
	}
	return s
}

// quorumRow is one row of `describe --replication`.
type quorumRow struct {
	nodeID, leo, lag  int64
	dirID, status     string
	lastFetch, caught int64
}

// parseQuorumReplication parses `describe --replication`: its header and rows.
func parseQuorumReplication(t *testing.T, out string) ([]string, []quorumRow) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("describe --replication printed %q", out)
	}
	header := strings.Fields(lines[0])
	var rows []quorumRow
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 7 {
			t.Fatalf("describe --replication row %q", l)
		}
		num := func(s string) int64 {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("describe --replication row %q: %v", l, err)
			}
			return n
		}
		rows = append(rows, quorumRow{nodeID: num(f[0]), dirID: f[1], leo: num(f[2]), lag: num(f[3]),
			lastFetch: num(f[4]), caught: num(f[5]), status: f[6]})
	}
	return header, rows
}

// describeQuorum runs kafka-metadata-quorum.sh describe against bootstrap (--bootstrap-server, or
// --bootstrap-controller when controller is set) until ok accepts its output, and returns it.
func describeQuorum(ctx context.Context, t *testing.T, version, bootstrap string, controller bool, what string, ok func(string) bool) string {
	t.Helper()
	flag := "--bootstrap-server"
	if controller {
		flag = "--bootstrap-controller"
	}
	var last string
	for attempt := 0; ; attempt++ {
		res, err := harness.KafkaTool(ctx, version, toolMetadataQuorum, nil, flag, bootstrap, "describe", "--"+what)
		if err == nil && ok(res.Stdout) {
			return res.Stdout
		}
		if err != nil {
			last = err.Error()
		} else {
			last = res.Stdout
		}
		if attempt == 20 || ctx.Err() != nil {
			t.Fatalf("describe --%s never gave the expected output; last:\n%s", what, last)
		}
		time.Sleep(time.Second)
	}
}

// statusKeys and replicationHeader are what Kafka 4.3.1's tool prints; the Kafka run of
// TestMetadataQuorumTool checks them against the real thing, the Strom run against Strom.
var (
	statusKeys = []string{"ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
		"MaxFollowerLagTimeMs", "CurrentVoters", "CurrentObservers"}
	replicationHeader = []string{"NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
		"LastCaughtUpTimestamp", "Status"}
)

// TestMetadataQuorumTool runs Kafka's kafka-metadata-quorum.sh. Against Kafka 4.3.1 (one combined node)
// it pins the output shape of describe --status and --replication. Against Strom (three voters and a
// broker-only node) the same shape, with the leader Strom's controller, voters 1-3, observer 4, lag 0;
// the same through --bootstrap-controller; then remove-controller demotes voter 2 (named by the
// directory id the tool printed) to an observer and add-controller, reading node 2's identity from the
// meta.properties in its raft directory, makes it a voter again; add-controller also promotes the
// broker-only node 4.
func TestMetadataQuorumTool(t *testing.T) {
	v := harness.DefaultKafkaVersion
	t.Run("kafka-"+v, func(t *testing.T) {
		t.Parallel()
		c := pool.Kafka(t, "single-"+v)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out := describeQuorum(ctx, t, v, c.Bootstrap(), false, "status", func(string) bool { return true })
		st := parseQuorumStatus(out)
		if !slices.Equal(st.keys, statusKeys) || st.values["LeaderId"] != "1" || !strings.Contains(st.values["CurrentVoters"], `"id": 1`) {
			t.Fatalf("Kafka's describe --status:\n%s", out)
		}
		t.Logf("Kafka %s:\n%s", v, out)
		out = describeQuorum(ctx, t, v, c.Bootstrap(), false, "replication", func(string) bool { return true })
		header, rows := parseQuorumReplication(t, out)
		if !slices.Equal(header, replicationHeader) || len(rows) != 1 || rows[0].status != "Leader" || rows[0].lag != 0 {
			t.Fatalf("Kafka's describe --replication:\n%s", out)
		}
		t.Logf("Kafka %s:\n%s", v, out)
	})
	t.Run("strom", func(t *testing.T) {
		t.Parallel()
		c := harness.StartStrom(t, harness.Nodes(4), harness.Voters(3))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		adm := kadm.NewClient(newClient(t, c))
		meta, err := adm.BrokerMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		settled := func(voters, observers []int64) func(string) bool {
			return func(out string) bool {
				_, rows := parseQuorumReplication(t, out)
				var vs, obs []int64
				for _, r := range rows {
					if r.lag != 0 || r.lastFetch <= 0 || r.caught <= 0 {
						return false
					}
					if r.status == "Observer" {
						obs = append(obs, r.nodeID)
					} else {
						vs = append(vs, r.nodeID)
					}
				}
				slices.Sort(vs)
				return slices.Equal(vs, voters) && slices.Equal(obs, observers)
			}
		}
		for _, controller := range []bool{false, true} {
			out := describeQuorum(ctx, t, v, c.Bootstrap(), controller, "status", func(out string) bool {
				st := parseQuorumStatus(out)
				return st.values["MaxFollowerLag"] == "0" && strings.Contains(st.values["CurrentObservers"], `"id": 4`)
			})
			st := parseQuorumStatus(out)
			if !slices.Equal(st.keys, statusKeys) || st.values["LeaderId"] != strconv.Itoa(int(meta.Controller)) ||
				st.values["ClusterId"] != meta.Cluster {
				t.Fatalf("describe --status (controller id %d, cluster %s):\n%s", meta.Controller, meta.Cluster, out)
			}
			t.Logf("Strom (bootstrap controller %v):\n%s", controller, out)
			for id := 1; id <= 3; id++ {
				if !strings.Contains(st.values["CurrentVoters"], fmt.Sprintf(`"id": %d, "directoryId"`, id)) {
					t.Fatalf("describe --status lacks voter %d:\n%s", id, out)
				}
			}
			out = describeQuorum(ctx, t, v, c.Bootstrap(), controller, "replication", settled([]int64{1, 2, 3}, []int64{4}))
			header, rows := parseQuorumReplication(t, out)
			if !slices.Equal(header, replicationHeader) || rows[0].status != "Leader" || rows[0].nodeID != int64(meta.Controller) {
				t.Fatalf("describe --replication:\n%s", out)
			}
			t.Logf("Strom (bootstrap controller %v):\n%s", controller, out)
		}

		// Round trip: remove voter 2, add it back.
		out := describeQuorum(ctx, t, v, c.Bootstrap(), false, "replication", func(string) bool { return true })
		_, rows := parseQuorumReplication(t, out)
		dir2 := ""
		for _, r := range rows {
			if r.nodeID == 2 {
				dir2 = r.dirID
			}
		}
		if _, err := harness.KafkaTool(ctx, v, toolMetadataQuorum, nil, "--bootstrap-server", c.Bootstrap(),
			"remove-controller", "--controller-id", "2", "--controller-directory-id", "AAAAAAAAAAAAAAAAAAAAAA"); err == nil ||
			!strings.Contains(err.Error(), "VoterNotFoundException") {
			t.Fatalf("remove-controller with a wrong directory id: %v", err)
		}
		harness.RunKafkaTool(t, v, toolMetadataQuorum, "--bootstrap-server", c.Bootstrap(),
			"remove-controller", "--controller-id", "2", "--controller-directory-id", dir2)
		describeQuorum(ctx, t, v, c.Bootstrap(), false, "replication", settled([]int64{1, 3}, []int64{2, 4}))

		// add-controller reads the node's identity from the meta.properties in its metadata log dir.
		addController := func(i int) {
			t.Helper()
			props := filepath.Join(t.TempDir(), fmt.Sprintf("controller-%d.properties", i+1))
			host, port, _ := strings.Cut(strings.Split(c.Bootstrap(), ",")[i], ":")
			if err := os.WriteFile(props, []byte(strings.Join([]string{
				fmt.Sprintf("node.id=%d", i+1), "process.roles=broker,controller",
				"metadata.log.dir=" + filepath.Join(c.DataDir(i), "__raft"),
				"controller.listener.names=PLAINTEXT", "listeners=PLAINTEXT://" + host + ":" + port, ""}, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			harness.RunKafkaTool(t, v, toolMetadataQuorum, "--bootstrap-server", c.Bootstrap(), "--command-config", props, "add-controller")
		}
		addController(1)
		out = describeQuorum(ctx, t, v, c.Bootstrap(), false, "replication", settled([]int64{1, 2, 3}, []int64{4}))
		t.Logf("after remove-controller and add-controller of node 2:\n%s", out)
		// The broker-only node (--process-roles broker) becomes a voter the same way.
		addController(3)
		out = describeQuorum(ctx, t, v, c.Bootstrap(), false, "replication", settled([]int64{1, 2, 3, 4}, nil))
		t.Logf("after add-controller of broker-only node 4:\n%s", out)
	})
}
