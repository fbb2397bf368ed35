package integration

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestPythonConsumerGroup runs two kafka-python (2.0.2, Debian) members in
// one group; that client uses old group API versions (JoinGroup v2,
// SyncGroup v1, OffsetCommit v2, OffsetFetch v1). Both members must take
// part, every record must be read, and the committed offsets must end at
// the end of every partition.
func TestPythonConsumerGroup(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Fatalf("kafka-python not importable by %s (apt-get install python3-kafka): %v", python, err)
	}
	script, err := filepath.Abs(filepath.Join("python", "group_consumer.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range clusters() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			const n, parts = 300, 4
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cl := newClient(t, c)
			adm := kadm.NewClient(cl)
			topic, group := uniqueName("py-groups"), uniqueName("pyg")
			createTopic(ctx, t, adm, topic, parts, int16(min(3, c.Nodes())), nil)
			produce(ctx, t, cl, makeRecords(topic, 0, n, time.Now().Add(-time.Minute)))
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, python, script, c.Bootstrap(), topic, group, strconv.Itoa(parts))
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kafka-python group: %v\n%s", err, stderr.String())
			}
			lines := 0
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) > 0 && (f[0] == "MEMBER" || f[0] == "UNION" || f[0] == "PARTITION") {
					lines++
				}
				switch {
				case len(f) == 3 && f[0] == "MEMBER" && f[2] == "0":
					t.Errorf("member %s consumed nothing: the group did not share the partitions", f[1])
				case len(f) == 2 && f[0] == "UNION" && f[1] != strconv.Itoa(n):
					t.Errorf("the group consumed %s distinct records, want %d", f[1], n)
				case len(f) == 4 && f[0] == "PARTITION" && f[2] != f[3]:
					t.Errorf("partition %s: committed %s, end %s", f[1], f[2], f[3])
				}
			}
			if lines != 3+parts {
				t.Errorf("kafka-python printed %d result lines, want %d:\n%s", lines, 3+parts, out)
			}
			t.Logf("kafka-python: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
		})
	}
}
