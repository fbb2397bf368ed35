package clients

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// kcatDriver runs the scenario with the kcat binary (librdkafka), one process per call: -P to produce
// (stdin, one message per line: kcat -P FILE would send the whole file as one message), -C -J to consume,
// -Q to look up offsets, -L -J for metadata. kcat has no admin API, so create-topic and alter-config are
// NA; the executor creates the topic with franz-go instead.
type kcatDriver struct {
	bin       string
	bootstrap string
}

func newKcatDriver(_ context.Context, cfg *config) (driver, error) {
	if _, err := exec.LookPath(cfg.kcat); err != nil {
		return nil, fmt.Errorf("%w: kcat not found (apt-get install -y kcat): %v", ErrUnavailable, err)
	}
	return &kcatDriver{bin: cfg.kcat, bootstrap: cfg.bootstrap}, nil
}

func (d *kcatDriver) Close() error { return nil }

func (d *kcatDriver) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return runCmd(ctx, bytes.NewReader(stdin), nil, d.bin, append([]string{"-b", d.bootstrap}, args...)...)
}

func (d *kcatDriver) CreateTopic(context.Context, string, int32) error {
	return unsupported("kcat has no admin API")
}

func (d *kcatDriver) PartitionCount(ctx context.Context, topic string) (int, error) {
	out, err := d.run(ctx, nil, "-L", "-J", "-t", topic)
	if err != nil {
		return 0, err
	}
	var md struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Error      string `json:"error"`
			Partitions []struct {
				Partition int32 `json:"partition"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		return 0, fmt.Errorf("kcat -L output: %w", err)
	}
	for _, t := range md.Topics {
		if t.Topic == topic {
			if t.Error != "" {
				return 0, errors.New(t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, errors.New("topic missing from metadata")
}

// Produce runs one kcat -P per partition and header set (kcat's -p and -H apply to the whole invocation).
// kcat exits non-zero when a message fails delivery.
func (d *kcatDriver) Produce(ctx context.Context, topic, codec string, idempotent bool, recs []record) error {
	type group struct {
		partition int32
		headers   string
	}
	var order []group
	lines := make(map[group]*bytes.Buffer)
	heads := make(map[group][]header)
	for _, r := range recs {
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, h.Key+"="+h.Value)
		}
		g := group{r.Partition, strings.Join(hs, "\x00")}
		if lines[g] == nil {
			order = append(order, g)
			lines[g] = new(bytes.Buffer)
			heads[g] = r.Headers
		}
		fmt.Fprintf(lines[g], "%s\t%s\n", r.Key, r.Value)
	}
	for _, g := range order {
		args := []string{"-P", "-t", topic, "-p", strconv.Itoa(int(g.partition)), "-K", "\t",
			"-X", "acks=all", "-X", "compression.codec=" + codec}
		if idempotent {
			args = append(args, "-X", "enable.idempotence=true")
		}
		for _, h := range heads[g] {
			args = append(args, "-H", h.Key+"="+h.Value)
		}
		if _, err := d.run(ctx, lines[g].Bytes(), args...); err != nil {
			return err
		}
	}
	return nil
}

// query runs kcat -Q for one partition and timestamp (-1 = end offset); kcat prints
// "TOPIC [PARTITION] offset N".
func (d *kcatDriver) query(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	out, err := d.run(ctx, nil, "-Q", "-t", fmt.Sprintf("%s:%d:%d", topic, partition, ts))
	if err != nil {
		return 0, err
	}
	line := strings.TrimSpace(string(out))
	i := strings.LastIndex(line, " offset ")
	if i < 0 {
		return 0, fmt.Errorf("kcat -Q output %q", line)
	}
	return strconv.ParseInt(line[i+len(" offset "):], 10, 64)
}

func (d *kcatDriver) EndOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	return d.query(ctx, topic, partition, -1)
}

func (d *kcatDriver) OffsetForTime(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	return d.query(ctx, topic, partition, ts)
}

// ReadPartition consumes with -J: one JSON object per message, headers as a flat [k, v, k, v] list.
func (d *kcatDriver) ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error) {
	if end <= 0 {
		return nil, nil
	}
	out, err := d.run(ctx, nil, "-C", "-t", topic, "-p", strconv.Itoa(int(partition)), "-o", "beginning",
		"-c", strconv.FormatInt(end, 10), "-e", "-J")
	if err != nil {
		return nil, err
	}
	var recs []consumed
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			Headers   []string `json:"headers"`
			Key       string   `json:"key"`
			Payload   string   `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return recs, fmt.Errorf("kcat -C -J line %q: %w", shorten(sc.Text()), err)
		}
		c := consumed{Offset: m.Offset, record: record{Partition: m.Partition, Key: m.Key, Value: m.Payload}}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			c.Headers = append(c.Headers, header{Key: m.Headers[i], Value: m.Headers[i+1]})
		}
		recs = append(recs, c)
	}
	return recs, sc.Err()
}

func (d *kcatDriver) SetTopicConfig(context.Context, string, string, string) error {
	return unsupported("kcat has no admin API")
}

func (d *kcatDriver) TopicConfig(context.Context, string, string) (string, error) {
	return "", unsupported("kcat has no admin API")
}
