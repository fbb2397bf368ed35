package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/broker"
)

// runStrom executes the root command with args in-process and returns stdout, stderr and the error.
func runStrom(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "produce", "--rate", "fast"}, `--rate "fast"`},
		{[]string{"bench", "produce", "--acks", "2"}, `--acks "2"`},
		{[]string{"bench", "consume", "--brokers", "nohost"}, `--brokers "nohost"`},
		{[]string{"bench", "e2e", "--record-size", "3"}, "e2e needs at least 8 bytes"},
		{[]string{"bench", "produce", "--compression", "brotli"}, `--compression "brotli"`},
		{[]string{"bench", "produce", "--duration", "0"}, "set --duration or --records"},
		{[]string{"bench", "produce", "--partitions", "0"}, "--partitions 0"},
		{[]string{"bench", "produce", "--replication-factor", "-1"}, "--replication-factor -1"},
		{[]string{"bench", "produce", "--topic-config", "novalue"}, "novalue must be formatted as key=value"},
		{[]string{"bench", "produce", "--producers", "0"}, "--producers 0"},
		{[]string{"bench", "produce", "--linger", "-1ms"}, "--linger -1ms"},
		{[]string{"bench", "e2e", "--passes", "2"}, "--passes 2: only consume"},
		{[]string{"bench", "produce", "--duration", "soon"}, `invalid argument "soon"`},
		{[]string{"bench", "produce", "extra"}, `unknown command "extra"`},
		{[]string{"bench", "produce", "--client", "fast"}, `--client "fast"`},
		{[]string{"bench", "e2e", "--client", "lean"}, "e2e needs --client franz-go"},
		{[]string{"bench", "produce", "--sasl-mechanism", "GSSAPI"}, `SASL mechanism "GSSAPI"`},
		{[]string{"bench", "produce", "--tls-ca", "/nonexistent/ca.pem"}, "CA file"},
		{[]string{"bench", "produce", "--client-config", "/nonexistent/client.properties"}, "client.properties"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := runStrom(tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestBenchCommands runs `strom bench produce`, `consume` and `e2e` against an in-process Strom and
// checks the JSON results and the progress lines.
func TestBenchCommands(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.RaftListen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	defer b.Close()

	common := []string{"--brokers", b.Addr(), "--topic", "cmdbench", "--partitions", "3", "--record-size", "100", "--json"}
	steps := []struct {
		args    []string
		records float64
		latency []string // JSON objects that must be present
	}{
		// --rate bounds the produce to >= 1.5 s, so at least one progress line is printed.
		{[]string{"bench", "produce", "--records", "1500", "--rate", "1000", "--duration", "60s",
			"--replication-factor", "1", "--topic-config", "retention.ms=123456789,max.message.bytes=2000000"}, 1500, []string{"produce_latency"}},
		{[]string{"bench", "consume", "--consumers", "2"}, 1500, nil},
		{[]string{"bench", "e2e", "--records", "300", "--rate", "600", "--duration", "60s", "--linger", "0"}, 300, []string{"produce_latency", "e2e_latency"}},
	}
	for _, s := range steps {
		t.Run(s.args[1], func(t *testing.T) {
			out, errOut, err := runStrom(append(s.args, common...)...)
			if err != nil {
				t.Fatalf("%v: %v\nstderr:\n%s", s.args, err, errOut)
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
			}
			if res["records"] != s.records || res["errors"] != 0.0 || res["partitions"] != 3.0 {
				t.Fatalf("result %v: want %v records, 3 partitions, no errors", res, s.records)
			}
			for _, k := range s.latency {
				if _, ok := res[k].(map[string]any); !ok {
					t.Errorf("result lacks %s: %v", k, res)
				}
			}
			if s.args[1] == "produce" && !strings.Contains(errOut, "produce    1s:") {
				t.Errorf("no progress line on stderr: %q", errOut)
			}
			if s.args[1] == "produce" { // the topic was created with --topic-config
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(context.Background(), "cmdbench")
				if err != nil {
					t.Fatal(err)
				}
				rc, err := rcs.On("cmdbench", nil)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, c := range rc.Configs {
					got[c.Key] = c.MaybeValue()
				}
				if got["retention.ms"] != "123456789" || got["max.message.bytes"] != "2000000" {
					t.Errorf("topic configs retention.ms=%q max.message.bytes=%q, want the --topic-config values",
						got["retention.ms"], got["max.message.bytes"])
				}
			}
		})
	}
}
